"""Counts of what the database holds, read in one consistent transaction; no aiohttp import."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from .db import Pool
from .queries import q

TASK_STATUSES = ("pending", "running", "succeeded", "failed", "dead", "cancelled")


@dataclass(frozen=True)
class Counts:
    users: int
    active_sessions: int
    cache_entries: int
    tasks: dict[str, int]  # every status in TASK_STATUSES, zeros included
    page_count: int
    freelist_count: int
    page_size: int
    db_bytes: int
    wal_bytes: int

    def as_json(self) -> dict[str, Any]:
        """The body of GET /api/stats."""
        return {
            "users": self.users,
            "active_sessions": self.active_sessions,
            "cache_entries": self.cache_entries,
            "tasks": dict(self.tasks),
            "db_bytes": self.db_bytes,
            "wal_bytes": self.wal_bytes,
        }


def _collect(conn: sqlite3.Connection, now: float) -> dict[str, Any]:
    tasks = dict.fromkeys(TASK_STATUSES, 0)
    for row in q.stats.tasks_by_status.run(conn):
        tasks[row["status"]] = row["n"]
    pages = q.stats.pages.run(conn)
    return {
        "users": q.stats.users.run(conn) or 0,
        "active_sessions": q.stats.active_sessions.run(conn, {"now": now}) or 0,
        "cache_entries": q.stats.cache_entries.run(conn, {"now": now}) or 0,
        "tasks": tasks,
        "page_count": pages["page_count"],
        "freelist_count": pages["freelist_count"],
        "page_size": pages["page_size"],
    }


async def counts(pool: Pool, now: float) -> Counts:
    """Users, live sessions and cache entries, tasks by status and file sizes as of ``now``."""
    figures = await pool.read(lambda conn: _collect(conn, now))
    db_bytes, wal_bytes = pool.file_sizes()
    return Counts(**figures, db_bytes=db_bytes, wal_bytes=wal_bytes)
