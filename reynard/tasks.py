"""Durable background tasks: the handler registry and the service (enqueue, read, cancel, retry).

No aiohttp here: the HTTP views, the worker and the periodic schedule all call this module.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from .clock import Clock
from .db import Pool
from .errors import conflict, field_error, not_found
from .queries import q
from .settings import Settings

STATUSES = ("pending", "running", "succeeded", "failed", "dead", "cancelled")
NO_CURSOR = 2**63 - 1


@dataclass
class TaskContext:
    """What a handler gets besides its payload."""

    pool: Pool
    settings: Settings
    clock: Clock
    services: dict[str, Any]
    task_id: int
    name: str
    attempt: int


Handler = Callable[[TaskContext, Any], Awaitable[Any] | Any]
_HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    """Register ``async def h(ctx, payload)`` or sync ``def h(ctx, payload)`` under ``name``."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return register


def get_handler(name: str) -> Handler | None:
    return _HANDLERS.get(name)


def handler_names() -> list[str]:
    return sorted(_HANDLERS)


def to_json(row: sqlite3.Row) -> dict[str, Any]:
    """The contract's task shape (times stay epoch seconds; the view formats them)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "payload": json.loads(row["payload"]),
        "status": row["status"],
        "priority": row["priority"],
        "attempts": row["attempts"],
        "max_attempts": row["max_attempts"],
        "run_at": row["run_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "last_error": row["last_error"],
        "result": None if row["result"] is None else json.loads(row["result"]),
        "created_at": row["created_at"],
    }


class TaskService:
    """Enqueue and manage tasks; the worker listens through ``on_due``."""

    def __init__(self, pool: Pool, clock: Clock) -> None:
        self.pool = pool
        self.clock = clock
        # Called with no argument when a task becomes due now (the worker's wake-up).
        self.on_due: list[Callable[[], None]] = []

    def _due_now(self, run_at: float, now: float) -> None:
        if run_at <= now:
            for notify in self.on_due:
                notify()

    async def enqueue(
        self,
        name: str,
        payload: Any = None,
        *,
        now: float,
        run_at: float | None = None,
        priority: int = 0,
        max_attempts: int = 3,
        idempotency_key: str | None = None,
    ) -> tuple[sqlite3.Row, bool]:
        """Insert a task; returns (task, created). A known idempotency key returns its task."""
        if name not in _HANDLERS:
            raise field_error("name", f"no task handler is named {name!r}")
        params = {
            "name": name,
            "payload": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
            "priority": priority,
            "max_attempts": max_attempts,
            "run_at": now if run_at is None else run_at,
            "idempotency_key": idempotency_key,
            "now": now,
        }

        def insert(conn: sqlite3.Connection) -> tuple[sqlite3.Row, bool]:
            rows = q.tasks.insert.run(conn, params)
            if rows:
                return rows[0], True
            return q.tasks.get_by_key.run(conn, {"idempotency_key": idempotency_key}), False

        row, created = await self.pool.write_fn(insert)
        if created:
            self._due_now(row["run_at"], now)
        return row, created

    async def get(self, task_id: int) -> sqlite3.Row:
        row = await self.pool.fetch(q.tasks.get, {"id": task_id})
        if row is None:
            raise not_found("task")
        return row

    async def list(
        self, *, status: str | None, name: str | None, limit: int, after: int | None
    ) -> tuple[list[sqlite3.Row], int | None]:
        """Newest first; returns (rows, id to continue after or None)."""
        params = {"status": status, "name": name, "limit": limit + 1, "after": after or NO_CURSOR}
        if status and name:
            query = q.tasks.list_by_status_name
        elif status:
            query = q.tasks.list_by_status
        elif name:
            query = q.tasks.list_by_name
        else:
            query = q.tasks.list_all
        rows = await self.pool.fetch(query, params)
        if len(rows) > limit:
            return rows[:limit], rows[limit - 1]["id"]
        return rows, None

    async def _transition(
        self, query: Any, task_id: int, now: float, code: str, rule: str
    ) -> sqlite3.Row:
        """One guarded status change; 409 ``code`` naming the current status when refused."""
        row = await self.pool.write(query, {"id": task_id, "now": now})
        if row is None:
            current = await self.get(task_id)
            raise conflict(code, f"{rule}; this one is {current['status']}")
        return row

    async def cancel(self, task_id: int, now: float) -> sqlite3.Row:
        """Pending only; anything else is 409 not_pending."""
        return await self._transition(
            q.tasks.cancel, task_id, now, "not_pending", "only a pending task can be cancelled"
        )

    async def retry(self, task_id: int, now: float) -> sqlite3.Row:
        """Failed or dead only: due now with a fresh attempt budget (attempts back to 0)."""
        rule = "only a failed or dead task can be retried"
        row = await self._transition(q.tasks.retry, task_id, now, "not_retryable", rule)
        self._due_now(row["run_at"], now)
        return row

    async def oldest_due_wait(self, now: float) -> float:
        """Seconds the longest-waiting due task has waited (0 when none is due)."""
        oldest = await self.pool.fetch(q.tasks.oldest_due, {"now": now})
        return 0.0 if oldest is None else max(0.0, now - oldest)
