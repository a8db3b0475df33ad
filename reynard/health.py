"""Readiness checks in the health+json shape: a real query, a real write, the migration table."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from typing import Any, Awaitable, Callable

from .clock import iso
from .db import Pool
from .migrate import Migration
from .queries import q

CHECK_TIMEOUT = 2.0
DISK_WARN_BYTES = 256 * 1024 * 1024
DISK_FAIL_BYTES = 16 * 1024 * 1024
_RANK = {"pass": 0, "warn": 1, "fail": 2}

Check = Callable[[], Awaitable[list[dict[str, Any]]]]


def worst(statuses: list[str]) -> str:
    return max(statuses, key=_RANK.__getitem__, default="pass")


def entry(
    status: str, value: Any = None, unit: str | None = None, output: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {"status": status, "time": iso(time.time())}
    if value is not None:
        item["observedValue"] = value
    if unit is not None:
        item["observedUnit"] = unit
    if output:
        item["output"] = output
    return item


class Health:
    """Runs every check concurrently, each bounded by CHECK_TIMEOUT."""

    def __init__(
        self, pool: Pool, migrations: list[Migration], db_inode: int | None, extra: dict[str, Check]
    ) -> None:
        self.pool = pool
        self.migrations = migrations
        self.db_inode = db_inode
        self.extra = extra

    def _file_problem(self) -> str | None:
        try:
            st = os.stat(self.pool.path)
        except OSError as exc:
            return f"database file is gone: {exc.strerror}"
        if self.db_inode is not None and st.st_ino != self.db_inode:
            return "database file was replaced while the server ran"
        return None

    async def _read(self) -> list[dict[str, Any]]:
        started = time.perf_counter()
        rows = await self.pool.read(lambda conn: q.health.migrations.run(conn))
        ms = round((time.perf_counter() - started) * 1000, 3)
        return [entry("pass" if rows else "fail", ms, "ms")]

    async def _write(self) -> list[dict[str, Any]]:
        problem = self._file_problem()
        if problem:
            return [entry("fail", output=problem)]
        started = time.perf_counter()
        await self.pool.write(q.health.probe_write, {"value": "1", "now": time.time()})
        ms = round((time.perf_counter() - started) * 1000, 3)
        return [entry("pass", ms, "ms")]

    async def _migrations(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(q.health.migrations)
        applied = {row["version"]: row["checksum"] for row in rows}
        expected = {m.version: m.checksum for m in self.migrations}
        if applied != expected:
            return [
                entry(
                    "fail",
                    len(applied),
                    "migrations",
                    output=f"database has {sorted(applied)}, code expects {sorted(expected)}",
                )
            ]
        return [entry("pass", len(applied), "migrations")]

    async def _disk(self) -> list[dict[str, Any]]:
        folder = os.path.dirname(os.path.abspath(self.pool.path))  # noqa: ASYNC240 - no I/O
        free = shutil.disk_usage(folder).free
        status = "fail" if free < DISK_FAIL_BYTES else "warn" if free < DISK_WARN_BYTES else "pass"
        return [entry(status, free, "bytes")]

    async def checks(self) -> dict[str, list[dict[str, Any]]]:
        named: dict[str, Check] = {
            "sqlite:read": self._read,
            "sqlite:write": self._write,
            "migrations": self._migrations,
            "disk:free": self._disk,
            **self.extra,
        }
        results = await asyncio.gather(*(self._bounded(fn) for fn in named.values()))
        out = dict(zip(named, results, strict=True))
        out.setdefault("tasks:worker", [entry("warn", output="no task worker is registered")])
        return out

    @staticmethod
    async def _bounded(fn: Check) -> list[dict[str, Any]]:
        try:
            return await asyncio.wait_for(fn(), CHECK_TIMEOUT)
        except TimeoutError:
            return [entry("fail", output=f"no answer within {CHECK_TIMEOUT:g}s")]
        except Exception as exc:  # a failing check is a result, not an error
            return [entry("fail", output=f"{type(exc).__name__}: {exc}")]

    @staticmethod
    def overall(checks: dict[str, list[dict[str, Any]]]) -> str:
        return worst([item["status"] for items in checks.values() for item in items])

    @staticmethod
    def services(checks: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
        def of(*names: str) -> str:
            return worst([i["status"] for n in names for i in checks.get(n, [])])

        return {
            "database": {"status": of("sqlite:read", "sqlite:write", "migrations", "disk:free")},
            "cache": {"status": of("sqlite:read", "sqlite:write")},
            "background": {"status": of("tasks:worker")},
        }
