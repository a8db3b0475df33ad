"""Built-in jobs, the periodic schedule across restarts, and the tasks:worker health check."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from pathlib import Path

from aiohttp import web

from reynard import jobs, keys
from reynard.app import create_app
from reynard.jobs import PERIODIC, periodic_key, slot_start
from reynard.tasks import TaskContext

DAY = 86400


def rows(db_path, sql, params=()):
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def until(predicate, within=10.0):
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def started(settings, clock) -> web.AppRunner:
    """Run the app's startup (pool, services, schedule, worker) without a socket."""
    runner = web.AppRunner(create_app(settings, clock=clock))
    await runner.setup()
    return runner


def periodic_rows(db_path):
    return rows(
        db_path,
        "SELECT name, status, idempotency_key, run_at FROM background_tasks "
        "WHERE idempotency_key LIKE 'periodic:%' ORDER BY name, run_at",
    )


def settled(db_path, now: float) -> bool:
    """Every periodic task due by ``now`` has ended."""
    due = [r["status"] for r in periodic_rows(db_path) if r["run_at"] <= now]
    return bool(due) and all(s in ("succeeded", "dead") for s in due)


async def test_periodic_jobs_run_once_per_slot_across_restarts(settings, clock, db_path):
    settings = dataclasses.replace(settings, task_scheduler=True)
    start = clock.now()
    runner = await started(settings, clock)
    await asyncio.sleep(0.3)
    assert not rows(db_path, "SELECT id FROM background_tasks WHERE status != 'pending'")
    clock.advance(jobs.STARTUP_DELAY)  # the first runs wait a little after a start
    await until(lambda: settled(db_path, clock.now()))
    await runner.cleanup()

    first = periodic_rows(db_path)
    by_name = {name: [r for r in first if r["name"] == name] for name in PERIODIC}
    for name, every in PERIODIC.items():
        slot = slot_start(start, every(settings))
        assert [r["idempotency_key"] for r in by_name[name]] == [
            periodic_key(name, slot),
            periodic_key(name, slot + every(settings)),
        ], name
        assert [r["status"] for r in by_name[name]] == ["succeeded", "pending"], name

    # A restart inside the same slot (as --reload does) adds nothing.
    runner = await started(settings, clock)
    await asyncio.sleep(0.3)
    await runner.cleanup()
    assert periodic_rows(db_path) == first

    # Time passes beyond the next metrics slot: that slot runs once and schedules the one after.
    clock.advance(settings.metrics_interval)
    runner = await started(settings, clock)
    await until(lambda: settled(db_path, clock.now()))
    runner2 = await started(settings, clock)  # a second process on the same file meanwhile
    await asyncio.sleep(0.3)
    await runner2.cleanup()
    await runner.cleanup()
    snapshots = [r for r in periodic_rows(db_path) if r["name"] == "metrics.snapshot"]
    keys_seen = [r["idempotency_key"] for r in snapshots]
    assert len(keys_seen) == len(set(keys_seen)) == 3
    assert [r["status"] for r in snapshots] == ["succeeded", "succeeded", "pending"]
    assert len(rows(db_path, "SELECT id FROM system_metrics GROUP BY recorded_at")) == 2


def ctx_for(app: web.Application, name: str) -> TaskContext:
    return TaskContext(
        app[keys.pool], app[keys.settings], app[keys.clock], app[keys.services], 0, name, 1
    )


async def test_db_backup_writes_timestamped_copies_and_keeps_the_last_n(settings, clock, db_path):
    runner = await started(settings, clock)
    try:
        ctx = ctx_for(runner.app, "db.backup")
        for _ in range(4):
            result = await jobs.db_backup(ctx, {"keep": 2})
            clock.advance(DAY)
    finally:
        await runner.cleanup()
    folder = Path(db_path).parent / "backups"
    names = sorted(p.name for p in folder.iterdir())
    stamps = [time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock.now() - d * DAY)) for d in (2, 1)]
    assert names == [f"test-{stamp}.db" for stamp in stamps]
    assert result["path"].endswith(names[-1]) and result["removed"] == 1
    copy = sqlite3.connect(folder / names[-1])
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] >= 1
    copy.close()


async def test_db_optimize_truncates_the_wal(settings, clock, db_path):
    runner = await started(settings, clock)
    try:
        pool = runner.app[keys.pool]
        for i in range(100):
            await pool.write_fn(
                lambda conn, i=i: conn.execute(
                    "INSERT INTO system_metrics (name, value, recorded_at) VALUES ('x', ?, 0)", (i,)
                )
            )
        wal_before = pool.file_sizes()[1]
        result = await jobs.db_optimize(ctx_for(runner.app, "db.optimize"), None)
        assert result["busy"] == 0 and result["checkpointed"] == result["wal_frames"]
        # Truncated to nothing, then only the next slot's enqueue was written to it.
        assert pool.file_sizes()[1] < 32 * 1024 < wal_before
        assert rows(db_path, "SELECT name FROM background_tasks")[0]["name"] == "db.optimize"
    finally:
        await runner.cleanup()


async def test_tasks_prune_removes_only_finished_tasks_older_than_a_week(settings, clock, db_path):
    runner = await started(settings, clock)
    try:
        app = runner.app
        service = app[keys.services]["tasks"]
        now = clock.now()
        old, _ = await service.enqueue("db.optimize", None, now=now, run_at=now + 3600)
        waiting, _ = await service.enqueue("db.optimize", None, now=now, run_at=now + 30 * DAY)
        await service.cancel(old["id"], now)
        clock.advance(8 * DAY)
        recent, _ = await service.enqueue("db.optimize", None, now=clock.now(), run_at=now + 3600)
        await service.cancel(recent["id"], clock.now())
        result = await jobs.tasks_prune(ctx_for(app, "tasks.prune"), None)
    finally:
        await runner.cleanup()
    assert result == {"deleted": 1}
    left = {r["id"] for r in rows(db_path, "SELECT id FROM background_tasks")}
    assert old["id"] not in left and {waiting["id"], recent["id"]} <= left


async def test_health_warns_when_no_worker_runs_and_a_due_task_waits(client, settings, clock):
    resp = await client.get("/api/health/ready")
    check = (await resp.json())["checks"]["tasks:worker"][0]
    assert check["status"] == "pass" and check["observedUnit"] == "s"

    idle = dataclasses.replace(settings, task_workers=0)
    runner = await started(idle, clock)
    try:
        service = runner.app[keys.services]["tasks"]
        await service.enqueue("tasks.prune", None, now=clock.now(), run_at=clock.now() - 90)
        checks = await runner.app[keys.services]["health"].checks()
    finally:
        await runner.cleanup()
    (item,) = checks["tasks:worker"]
    assert item["status"] == "warn"
    assert item["observedValue"] == 90
    assert "waited 90s" in item["output"] and "no task worker" in item["output"]


async def test_db_optimize_gives_up_quickly_when_another_process_holds_the_wal(
    settings, clock, db_path
):
    runner = await started(settings, clock)
    reader = sqlite3.connect(db_path, isolation_level=None)
    try:
        pool = runner.app[keys.pool]
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM background_tasks").fetchone()  # holds a snapshot
        await pool.write_fn(
            lambda conn: conn.execute(
                "INSERT INTO system_metrics (name, value, recorded_at) VALUES ('x', 1, 0)"
            )
        )
        started_at = time.monotonic()
        result = await jobs.db_optimize(ctx_for(runner.app, "db.optimize"), None)
        assert result["busy"] == 1
        assert time.monotonic() - started_at < 2  # not the 5 s busy timeout
        assert (await pool.fetch(jobs.q.tasks.get, {"id": 1}))["name"] == "db.optimize"
    finally:
        reader.execute("ROLLBACK")
        reader.close()
        await runner.cleanup()
