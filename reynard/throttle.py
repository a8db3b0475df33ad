"""Login throttles: failures per username in the database, and requests per client IP in memory."""

from __future__ import annotations

from collections import deque

from .db import Pool
from .errors import rate_limited
from .queries import q


class LoginThrottle:
    """At most ``max_failures`` failed logins per username in a window that starts with the first.

    Counters live in cache_entries (namespace 'sys:login'), so they survive a restart; the key is
    the lower-cased name so ``Bob`` and ``bob`` share one budget, existing user or not.
    """

    def __init__(self, pool: Pool, max_failures: int, window: int) -> None:
        self.pool = pool
        self.max_failures = max_failures
        self.window = window

    async def check(self, key: str, now: float) -> None:
        """429 with Retry-After when the budget for ``key`` is spent."""
        row = await self.pool.fetch(q.throttle.failures, {"key": key, "now": now})
        if row is not None and row["failures"] >= self.max_failures:
            raise rate_limited(
                row["expires_at"] - now, "too many failed logins for this account; try again later"
            )

    async def failed(self, key: str, now: float) -> int:
        """Count one failure; returns the count in the current window."""
        return await self.pool.write(
            q.throttle.record_failure, {"key": key, "now": now, "window": self.window}
        )

    async def succeeded(self, key: str) -> None:
        await self.pool.write(q.throttle.clear, {"key": key})


class IpLimiter:
    """A sliding window of ``per_minute`` requests per client address (0 = no limit)."""

    WINDOW = 60.0
    MAX_TRACKED = 10_000

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}

    def hit(self, ip: str | None, now: float) -> None:
        """Record one request from ``ip``; 429 with Retry-After when over the limit."""
        if self.per_minute <= 0:
            return
        ip = ip or "unknown"
        hits = self._hits.get(ip)
        if hits is None:
            if len(self._hits) >= self.MAX_TRACKED:
                self._prune(now)
            hits = self._hits[ip] = deque()
        while hits and hits[0] <= now - self.WINDOW:
            hits.popleft()
        if len(hits) >= self.per_minute:
            raise rate_limited(hits[0] + self.WINDOW - now)
        hits.append(now)

    def _prune(self, now: float) -> None:
        cutoff = now - self.WINDOW
        for ip in [ip for ip, hits in self._hits.items() if not hits or hits[-1] <= cutoff]:
            del self._hits[ip]
