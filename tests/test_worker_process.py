"""The worker inside real `python server.py` processes: SIGKILL mid-task, SIGTERM, two servers."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time

from reynard import jobs
from reynard.clock import Clock
from reynard.db import Pool
from reynard.tasks import TaskService
from tests.support import task_row

ENV = {
    "REYNARD_TEST_HANDLERS": "1",
    "REYNARD_TASK_SCHEDULER": "0",
    "REYNARD_TASK_LEASE": "1",
    "REYNARD_TASK_GRACE": "1",
}


async def enqueue(db, specs: list[tuple[str, object]]) -> list[int]:
    """Enqueue through the real service on the server's DB file, as a second process would."""
    jobs.register_test_handlers()
    pool = Pool(str(db), readers=1)
    await pool.open()
    try:
        service = TaskService(pool, Clock())
        return [
            (await service.enqueue(name, payload, now=time.time()))[0]["id"]
            for name, payload in specs
        ]
    finally:
        await pool.close()


async def until(predicate, within=15.0):
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_a_task_killed_mid_run_runs_again_after_restart(server_factory, tmp_path):
    db = tmp_path / "kill.db"
    server = server_factory(db, env=ENV)
    (tid,) = await enqueue(db, [("test.sleep", {"seconds": 1.5})])
    await until(lambda: task_row(db, tid)["status"] == "running")

    server.signal(signal.SIGKILL)
    server.wait()
    assert task_row(db, tid)["status"] == "running"  # nobody recorded an end

    server_factory(db, env=ENV)
    await until(lambda: task_row(db, tid)["status"] == "succeeded")
    done = task_row(db, tid)
    assert done["attempts"] == 2
    assert '"attempt":2' in done["result"]


async def test_sigterm_finishes_quick_tasks_and_returns_long_ones_to_pending(
    server_factory, tmp_path
):
    db = tmp_path / "term.db"
    server = server_factory(db, env=ENV)
    long_id, quick_id = await enqueue(
        db, [("test.sleep", {"seconds": 60}), ("test.sleep", {"seconds": 0.5})]
    )
    await until(
        lambda: task_row(db, long_id)["status"] == task_row(db, quick_id)["status"] == "running"
    )

    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    assert time.monotonic() - started < 8

    assert task_row(db, quick_id)["status"] == "succeeded"
    back = task_row(db, long_id)
    assert (back["status"], back["attempts"], back["lease_until"]) == ("pending", 0, None)


async def test_two_server_processes_share_one_queue_without_running_a_task_twice(
    server_factory, tmp_path
):
    db = tmp_path / "two.db"
    env = {**ENV, "REYNARD_TASK_WORKERS": "4"}
    server_factory(db, env=env)
    server_factory(db, env=env)
    ids = await enqueue(db, [("test.sleep", {"seconds": 0.02})] * 200)

    def finished() -> bool:
        conn = sqlite3.connect(db)
        try:
            return conn.execute(
                "SELECT count(*) FROM background_tasks WHERE status = 'succeeded'"
            ).fetchone()[0] == len(ids)
        finally:
            conn.close()

    await until(finished, within=30)
    conn = sqlite3.connect(db)
    attempts, workers = conn.execute(
        "SELECT max(attempts), count(DISTINCT worker) FROM background_tasks"
    ).fetchone()
    conn.close()
    assert attempts == 1
    assert workers == 2
