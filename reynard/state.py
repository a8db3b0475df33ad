"""Facts about this process's run, for /api/system and /api/health."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class State:
    process_started: float = field(default_factory=time.perf_counter)
    started_at: float = field(default_factory=time.time)
    startup_ms: float | None = None
    migrations_applied: int = 0

    def uptime(self) -> float:
        return time.time() - self.started_at
