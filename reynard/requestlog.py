"""One log line per request, written in batches.

Formatting a ``logging`` record per request costs more CPU than the rest of a small request
(measured ~25 µs of ~60 µs on /api/health/live), so request lines are collected and written
together at most ``FLUSH_SECONDS`` later, in the same format as the other log lines.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TextIO

FLUSH_SECONDS = 0.2
MAX_PENDING = 512
log = logging.getLogger("reynard.http")


class RequestLog:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.enabled = log.isEnabledFor(logging.INFO)
        self.stream = stream
        self._lines: list[str] = []
        self._second = -1
        self._stamp = ""
        self._task: asyncio.Task | None = None

    def add(self, method: str, path: str, status: int, ms: float, request_id: str) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        self._lines.append(
            f"{self._stamp},{int(now % 1 * 1000):03d} INFO reynard.http: {method} "
            f"{path} {status} {ms:.1f}ms rid={request_id}\n"
        )
        if len(self._lines) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        text, self._lines = "".join(self._lines), []
        stream = self.stream or sys.stderr
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # a closed or broken log stream must not fail requests
            pass

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.flush()

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="reynard-request-log")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.flush()
