"""Point-read results reused while the database has not changed at all.

SQLite's ``PRAGMA data_version`` (read on the pool's loop connection, ~4 µs) changes whenever any
other connection — the pool's writers or another process, such as ``server.py create-admin`` —
commits. A result cached at one version is returned only while the version is unchanged, so it is
exactly what the query would return again. Queries cached here must not depend on the clock:
callers check expiry themselves against the current time.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

from .db import Pool
from .queries import Query

MAX_ENTRIES = 10_000
MAX_BYTES = 16 * 1024 * 1024


class ReadCache:
    def __init__(self, pool: Pool, size: Callable[[Any], int] = lambda row: 0) -> None:
        self.pool = pool
        self.size = size
        self.hits = 0
        self.misses = 0
        self._version: int | None = None
        self._generation = -1
        self._rows: dict[Hashable, Any] = {}
        self._bytes = 0

    def _reset(self, version: int | None) -> None:
        self._rows.clear()
        self._bytes = 0
        self._version = version

    async def fetch(self, key: Hashable, query: Query, params: Any) -> Any:
        """``pool.fetch(query, params)``, or the result cached under ``key`` at this version."""
        generation = self.pool.write_generation
        if generation != self._generation:
            # This process has written since the last look: the cache is stale anyway, and
            # under steady writes looking up data_version (~10 us) on every read buys nothing.
            self._generation = generation
            self._reset(None)
            self.misses += 1
            return await self.pool.fetch(query, params)
        version = self.pool.data_version()
        if version is None or version != self._version:
            self._reset(version)
        elif key in self._rows:
            self.hits += 1
            return self._rows[key]
        self.misses += 1
        row = await self.pool.fetch(query, params)
        # The version was read before the query, so the row is at least that new: a commit in
        # between only changes the version, which clears the cache at the next look. If the read
        # awaited (a reader thread) and another request re-tagged the cache meanwhile, the row
        # may be older than that tag: then it is not kept.
        if version is not None and version == self._version:
            cost = self.size(row)
            if len(self._rows) >= MAX_ENTRIES or self._bytes + cost > MAX_BYTES:
                self._reset(version)
            self._rows[key] = row
            self._bytes += cost
        return row
