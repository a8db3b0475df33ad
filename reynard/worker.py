"""The in-process worker: claims due tasks under a lease, runs them, records the outcome.

- Claims are one write job (a few tasks per UPDATE … RETURNING, as many as free slots), so
  two workers, in one process or in two, never hold the same task.
- The lease is extended while tasks run; a task whose lease lapsed (its process died) is
  claimed again by whoever polls next, with the attempt counted (at-least-once).
- Wakes at once when a task is enqueued in this process; otherwise polls with a cheap read.
- ``stop()``: no more claims, running tasks get ``grace`` seconds, the rest are cancelled and
  go back to ``pending`` without the attempt counting.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import random
import socket
import sqlite3
import time
import uuid
from typing import Any

from .clock import Clock
from .db import Pool
from .queries import q
from .settings import Settings
from .tasks import TaskContext, get_handler

log = logging.getLogger("reynard.worker")

POLL_SECONDS = 0.5
BACKOFF_BASE = 2.0
BACKOFF_CAP = 3600.0
ERROR_MAX_CHARS = 2000


class UnknownTask(Exception):
    """A claimed task names a handler this process does not have."""


def backoff(attempt: int) -> float:
    """Seconds before retry ``attempt + 1``: exponential, capped, with 50% jitter."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]


class Worker:
    """Runs up to ``concurrency`` tasks at once from the shared queue."""

    def __init__(
        self,
        pool: Pool,
        settings: Settings,
        clock: Clock,
        services: dict[str, Any],
        *,
        concurrency: int | None = None,
        poll: float = POLL_SECONDS,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.clock = clock
        self.services = services
        self.concurrency = settings.task_workers if concurrency is None else concurrency
        self.lease = float(settings.task_lease)
        self.poll = poll
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.heartbeat: float | None = None  # time.monotonic() of the loop's last turn
        self.completed = 0
        self._running: dict[int, asyncio.Task] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task | None = None
        self._lease_task: asyncio.Task | None = None

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="reynard-task-worker")
        self._lease_task = asyncio.create_task(self._extend_leases(), name="reynard-task-lease")

    def wake(self) -> None:
        self._wake.set()

    def stop_claiming(self) -> None:
        self._stopping = True
        self._wake.set()

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming, let running tasks finish within ``grace``, release the rest."""
        self.stop_claiming()
        if self._loop_task is not None:
            await self._loop_task
        grace = self.settings.task_grace if grace is None else grace
        running = dict(self._running)
        if running:
            log.info("waiting up to %gs for %d running task(s)", grace, len(running))
            _, unfinished = await asyncio.wait(running.values(), timeout=grace)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
            ids = [tid for tid, task in running.items() if task in unfinished]
            if ids:
                await self._release(ids)
        if self._lease_task is not None:
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)

    async def _release(self, ids: list[int]) -> None:
        now = self.clock.now()

        def release(conn: sqlite3.Connection) -> None:
            for tid in ids:
                q.tasks.release.run(conn, {"id": tid, "worker": self.name, "now": now})

        await self.pool.write_fn(release)
        log.info("returned %d unfinished task(s) to pending: %s", len(ids), ids)

    # ---- claiming ------------------------------------------------------------------------
    async def claim(self, n: int) -> list[sqlite3.Row]:
        """Take up to ``n`` tasks: lapsed leases first, then due ones by priority and run_at."""
        now = self.clock.now()
        params = {"now": now, "lease_until": now + self.lease, "worker": self.name, "n": n}

        def take(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            q.tasks.bury_expired.run(conn, params)
            rows = q.tasks.claim_expired.run(conn, params)
            if len(rows) < n:
                rows += q.tasks.claim_due.run(conn, {**params, "n": n - len(rows)})
            return rows

        if not await self.pool.fetch(q.tasks.due_exists, {"now": now}):
            return []
        rows = await self.pool.write_fn(take)
        return sorted(rows, key=lambda r: (-r["priority"], r["run_at"], r["id"]))

    async def _loop(self) -> None:
        while not self._stopping:
            self.heartbeat = time.monotonic()
            self._wake.clear()
            free = self.concurrency - len(self._running)
            if free > 0:
                try:
                    rows = await self.claim(free)
                except (sqlite3.Error, RuntimeError) as exc:
                    log.warning("task claim failed: %s", _error_text(exc))
                    rows = []
                for row in rows:
                    self._spawn(row)
                if rows and len(rows) == free:
                    continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll)
            except TimeoutError:
                pass

    def _spawn(self, row: sqlite3.Row) -> None:
        task = asyncio.create_task(self.execute(row), name=f"reynard-task-{row['id']}")
        self._running[row["id"]] = task

    async def _extend_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            if not self._running:
                continue
            until = self.clock.now() + self.lease
            try:
                await self.pool.write(
                    q.tasks.extend_leases, {"lease_until": until, "worker": self.name}
                )
            except sqlite3.Error as exc:
                log.warning("could not extend task leases: %s", _error_text(exc))

    # ---- running -------------------------------------------------------------------------
    async def execute(self, row: sqlite3.Row) -> None:
        """Run one claimed task and record success, a retry, or death."""
        tid, attempt = row["id"], row["attempts"]
        ctx = TaskContext(
            self.pool, self.settings, self.clock, self.services, tid, row["name"], attempt
        )
        try:
            result = await self._call(ctx, row)
            encoded = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._record_failure(tid, attempt, row["name"], exc)
        else:
            await self._record_success(tid, encoded)
        finally:
            self._running.pop(tid, None)
            self._wake.set()

    async def _call(self, ctx: TaskContext, row: sqlite3.Row) -> Any:
        fn = get_handler(row["name"])
        if fn is None:
            raise UnknownTask(f"no handler named {row['name']!r} in this process")
        payload = json.loads(row["payload"])
        if inspect.iscoroutinefunction(fn):
            return await fn(ctx, payload)
        return await asyncio.to_thread(fn, ctx, payload)

    async def _record_success(self, tid: int, encoded: str) -> None:
        params = {"id": tid, "worker": self.name, "result": encoded, "now": self.clock.now()}
        try:
            recorded = await self.pool.write(q.tasks.succeed, params)
        except sqlite3.Error as exc:  # the lease lapses and the task runs again
            log.warning("could not record task %d's success: %s", tid, _error_text(exc))
            return
        if not recorded:
            log.warning("task %d finished after its lease passed to another worker", tid)
        self.completed += 1

    async def _record_failure(self, tid: int, attempt: int, name: str, exc: Exception) -> None:
        now = self.clock.now()
        params = {
            "id": tid,
            "worker": self.name,
            "error": _error_text(exc),
            "retry_at": now + backoff(attempt),
            "now": now,
        }
        try:
            status = await self.pool.write(q.tasks.fail, params)
        except sqlite3.Error as db_exc:
            log.warning("could not record task %d's failure: %s", tid, _error_text(db_exc))
            return
        log.warning("task %d (%s) attempt %d failed -> %s: %s", tid, name, attempt, status, exc)
