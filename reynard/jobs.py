"""Built-in task handlers and the periodic schedule.

Each periodic job, when a run ends (success or failure, not a shutdown), enqueues its next run
with the idempotency key ``periodic:<name>:<slot start>``; startup enqueues the current slot the
same way. Two processes, a restart or ``--reload`` therefore agree on one task per slot.
Handlers import the modules they call lazily, so this module imports on its own.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Awaitable, Callable

from .clock import iso
from .connections import online_backup, set_busy_timeout
from .queries import q
from .settings import Settings
from .tasks import TaskContext, TaskService, handler

DAY = 86400
PRUNE_DAYS = 7
PRUNE_BATCH = 500
BACKUPS_KEPT = 7
STARTUP_DELAY = 10.0
CHECKPOINT_PATIENCE_MS = 250

# name -> seconds between runs
PERIODIC: dict[str, Callable[[Settings], float]] = {
    "sessions.cleanup": lambda s: 3600,
    "cache.purge": lambda s: 300,
    "metrics.snapshot": lambda s: s.metrics_interval,
    "metrics.prune": lambda s: DAY,
    "tasks.prune": lambda s: DAY,
    "db.optimize": lambda s: DAY,
    "db.backup": lambda s: DAY,
}


def slot_start(now: float, every: float) -> float:
    return math.floor(now / every) * every


def periodic_key(name: str, slot: float) -> str:
    return f"periodic:{name}:{iso(slot)}"


async def schedule_slot(tasks: TaskService, name: str, slot: float, now: float) -> None:
    await tasks.enqueue(name, None, now=now, run_at=slot, idempotency_key=periodic_key(name, slot))


async def ensure_schedule(tasks: TaskService, settings: Settings, now: float) -> None:
    """Startup: make sure every periodic job has its current slot enqueued (once, ever).

    A slot first enqueued here runs STARTUP_DELAY seconds (or one period, if shorter) after
    the start, so a restarted server answers its first requests before doing maintenance.
    """
    for name, every in PERIODIC.items():
        seconds = every(settings)
        slot = slot_start(now, seconds)
        await tasks.enqueue(
            name,
            None,
            now=now,
            run_at=max(slot, now + min(seconds, STARTUP_DELAY)),
            idempotency_key=periodic_key(name, slot),
        )


async def _schedule_next(ctx: TaskContext) -> None:
    every = PERIODIC[ctx.name](ctx.settings)
    now = ctx.clock.now()
    tasks = ctx.services.get("tasks") or TaskService(ctx.pool, ctx.clock)
    await schedule_slot(tasks, ctx.name, slot_start(now, every) + every, now)


def periodic(name: str) -> Callable[[Callable[..., Awaitable[Any]]], Any]:
    """Register an async handler that schedules its own next slot when a run ends."""

    def register(fn: Callable[[TaskContext, Any], Awaitable[Any]]) -> Any:
        async def run(ctx: TaskContext, payload: Any) -> Any:
            try:
                result = await fn(ctx, payload)
            except asyncio.CancelledError:
                raise  # shutdown: the task goes back to pending and schedules on its real end
            except Exception:
                await _schedule_next(ctx)
                raise
            await _schedule_next(ctx)
            return result

        handler(name)(run)
        return run

    return register


def _days(payload: Any, field: str, default: float) -> float:
    value = (payload or {}).get(field, default) if isinstance(payload, dict | None) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 100_000:
        raise ValueError(f"{field} must be a positive number of days, got {value!r}")
    return float(value)


@periodic("sessions.cleanup")
async def sessions_cleanup(ctx: TaskContext, payload: Any) -> dict[str, int]:
    from .accounts import cleanup_sessions

    return {"deleted": await cleanup_sessions(ctx.pool, ctx.clock.now(), ctx.settings.session_idle)}


@periodic("cache.purge")
async def cache_purge(ctx: TaskContext, payload: Any) -> dict[str, int]:
    from .cache import purge_expired

    return {"deleted": await purge_expired(ctx.pool, ctx.clock.now())}


@periodic("metrics.snapshot")
async def metrics_snapshot(ctx: TaskContext, payload: Any) -> dict[str, int]:
    from .metrics import snapshot

    return {"written": await snapshot(ctx)}


@periodic("metrics.prune")
async def metrics_prune(ctx: TaskContext, payload: Any) -> dict[str, int]:
    from .metrics import prune

    return {"deleted": await prune(ctx, payload)}


@periodic("tasks.prune")
async def tasks_prune(ctx: TaskContext, payload: Any) -> dict[str, int]:
    """Delete tasks that ended (succeeded, dead, cancelled) more than ``days`` (7) ago."""
    before = ctx.clock.now() - _days(payload, "days", PRUNE_DAYS) * DAY
    deleted = 0
    while True:  # short batches, so other writers get their turn in between
        n = await ctx.pool.write(q.tasks.prune_finished, {"before": before, "batch": PRUNE_BATCH})
        deleted += n
        if n < PRUNE_BATCH:
            return {"deleted": deleted}


def _optimize(conn: sqlite3.Connection) -> dict[str, int]:
    conn.execute("PRAGMA optimize")
    # Every pool write waits while this runs: give up quickly (busy = 1) rather than stall
    # them for the whole busy timeout when another process holds the database.
    patience = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    set_busy_timeout(conn, CHECKPOINT_PATIENCE_MS)
    try:
        busy, frames, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        set_busy_timeout(conn, patience)
    return {"busy": busy, "wal_frames": frames, "checkpointed": done}


@periodic("db.optimize")
async def db_optimize(ctx: TaskContext, payload: Any) -> dict[str, int]:
    """``PRAGMA optimize`` and a truncating WAL checkpoint (outside any transaction)."""
    return await ctx.pool.outside_transaction(_optimize)


def backup_to_folder(db: str, now: float, keep: int) -> dict[str, Any]:
    """Online backup into ``backups/`` beside the DB as ``<stem>-<UTC time>.db``; keep ``keep``."""
    source = Path(db).resolve()
    folder = source.parent / "backups"
    folder.mkdir(exist_ok=True)
    stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"{source.stem}-{stamp}.db"
    online_backup(source, target)
    backups = sorted(folder.glob(f"{source.stem}-*Z.db"))
    removed = backups[:-keep]
    for old in removed:
        old.unlink(missing_ok=True)
    return {"path": str(target), "bytes": target.stat().st_size, "removed": len(removed)}


@periodic("db.backup")
async def db_backup(ctx: TaskContext, payload: Any) -> dict[str, Any]:
    keep = (payload or {}).get("keep", BACKUPS_KEPT) if isinstance(payload, dict | None) else None
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= 1000:
        raise ValueError(f"keep must be an integer from 1 to 1000, got {keep!r}")
    return await asyncio.to_thread(backup_to_folder, ctx.pool.path, ctx.clock.now(), keep)


def register_test_handlers() -> None:
    """``test.*`` handlers for real-process tests and benchmarks (REYNARD_TEST_HANDLERS=1)."""

    @handler("test.noop")
    async def noop(ctx: TaskContext, payload: Any) -> None:
        return None

    @handler("test.sleep")
    async def sleep(ctx: TaskContext, payload: Any) -> dict[str, Any]:
        await asyncio.sleep(float(payload.get("seconds", 1)))
        return {"slept": payload.get("seconds", 1), "attempt": ctx.attempt}

    @handler("test.fail")
    def fail(ctx: TaskContext, payload: Any) -> None:
        raise RuntimeError((payload or {}).get("message", "failed on purpose"))
