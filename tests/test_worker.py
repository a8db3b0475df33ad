"""The worker against a real SQLite file: claim order, leases, retries, shutdown, exclusivity."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
from types import SimpleNamespace

import pytest

from reynard.db import Pool
from reynard.migrate import open_and_migrate
from reynard.tasks import TaskService, handler
from reynard.worker import Worker
from tests.support import task_row

seen: list[tuple[int, str]] = []
gate = SimpleNamespace(event=None)


@handler("testw.record")
async def record(ctx, payload):
    seen.append((ctx.task_id, threading.current_thread().name))
    await asyncio.sleep(0)
    return payload


@handler("testw.sync")
def sync_record(ctx, payload):
    seen.append((ctx.task_id, threading.current_thread().name))
    return {"thread": threading.current_thread().name}


@handler("testw.fail")
async def always_fails(ctx, payload):
    raise RuntimeError(f"boom {ctx.attempt}")


@handler("testw.block")
async def block(ctx, payload):
    await gate.event.wait()
    return "released"


@pytest.fixture
async def queue(settings, clock):
    """A migrated DB, a pool, the service and a worker factory (workers are not started)."""
    open_and_migrate(settings.db)
    pool = Pool(settings.db, readers=1)
    await pool.open()
    seen.clear()
    gate.event = asyncio.Event()
    service = TaskService(pool, clock)
    workers: list[Worker] = []

    def make_worker(pool_=None, **overrides):
        s = dataclasses.replace(settings, **overrides)
        w = Worker(pool_ or pool, s, clock, {"tasks": service}, poll=0.05)
        service.on_due.append(w.wake)
        workers.append(w)
        return w

    yield SimpleNamespace(pool=pool, tasks=service, worker=make_worker, clock=clock)
    gate.event.set()
    for w in workers:
        await w.stop(grace=1)
    await pool.close()


async def run_due(worker: Worker) -> list[int]:
    """Claim and run every due task, one at a time; return the ids in the order run."""
    ran = []
    while rows := await worker.claim(1):
        await worker.execute(rows[0])
        ran.append(rows[0]["id"])
    return ran


async def until(predicate, within=5.0):
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_claims_by_priority_then_run_at_and_never_before_run_at(queue, clock):
    now = clock.now()
    low_old, _ = await queue.tasks.enqueue("testw.record", 1, now=now, run_at=now - 30)
    high_new, _ = await queue.tasks.enqueue("testw.record", 2, now=now, priority=5)
    low_new, _ = await queue.tasks.enqueue("testw.record", 3, now=now, run_at=now - 10)
    high_old, _ = await queue.tasks.enqueue("testw.record", 4, now=now, run_at=now - 5, priority=5)
    later, _ = await queue.tasks.enqueue("testw.record", 5, now=now, run_at=now + 60, priority=9)

    ran = await run_due(queue.worker())

    assert ran == [high_old["id"], high_new["id"], low_old["id"], low_new["id"]]
    clock.advance(60)
    assert await run_due(queue.worker()) == [later["id"]]


async def test_one_claim_takes_several_tasks_in_order(queue, clock):
    now = clock.now()
    ids = [(await queue.tasks.enqueue("testw.record", i, now=now))[0]["id"] for i in range(5)]
    rows = await queue.worker().claim(3)
    assert [r["id"] for r in rows] == ids[:3]
    assert all(r["status"] == "running" and r["attempts"] == 1 for r in rows)


async def test_failures_back_off_exponentially_then_the_task_is_dead(queue, clock, db_path):
    task, _ = await queue.tasks.enqueue("testw.fail", None, now=clock.now(), max_attempts=3)
    worker = queue.worker()

    assert await run_due(worker) == [task["id"]]
    first = task_row(db_path, task["id"])
    assert (first["status"], first["attempts"]) == ("failed", 1)
    assert first["last_error"] == "RuntimeError: boom 1"
    assert clock.now() + 1 <= first["run_at"] <= clock.now() + 2  # 2 s with jitter
    assert await run_due(worker) == []  # not due yet

    clock.advance(2)
    assert await run_due(worker) == [task["id"]]
    second = task_row(db_path, task["id"])
    assert (second["status"], second["attempts"]) == ("failed", 2)
    assert clock.now() + 2 <= second["run_at"] <= clock.now() + 4  # 4 s with jitter

    clock.advance(4)
    assert await run_due(worker) == [task["id"]]
    dead = task_row(db_path, task["id"])
    assert (dead["status"], dead["attempts"]) == ("dead", 3)
    assert dead["last_error"] == "RuntimeError: boom 3"
    assert dead["finished_at"] == clock.now()
    clock.advance(3600)
    assert await run_due(worker) == []


async def test_lapsed_lease_is_claimed_again_and_counts_an_attempt(queue, clock, db_path):
    task, _ = await queue.tasks.enqueue("testw.record", "x", now=clock.now())
    crashed = queue.worker(task_lease=30)
    assert [r["id"] for r in await crashed.claim(1)] == [task["id"]]  # then "dies"

    survivor = queue.worker(task_lease=30)
    assert await survivor.claim(1) == []  # the lease still holds
    clock.advance(31)
    assert await run_due(survivor) == [task["id"]]
    done = task_row(db_path, task["id"])
    assert (done["status"], done["attempts"], done["worker"]) == ("succeeded", 2, survivor.name)


async def test_lapsed_lease_with_no_attempts_left_is_dead_not_rerun(queue, clock, db_path):
    task, _ = await queue.tasks.enqueue("testw.record", None, now=clock.now(), max_attempts=1)
    await queue.worker().claim(1)
    clock.advance(31)
    assert await run_due(queue.worker()) == []
    dead = task_row(db_path, task["id"])
    assert dead["status"] == "dead"
    assert dead["last_error"].startswith("LeaseExpired:")


async def test_a_late_finish_after_losing_the_lease_does_not_overwrite(queue, clock, db_path):
    task, _ = await queue.tasks.enqueue("testw.record", None, now=clock.now())
    slow = queue.worker()
    (claimed,) = await slow.claim(1)
    clock.advance(31)
    fast = queue.worker()
    (again,) = await fast.claim(1)
    await slow.execute(claimed)  # finishes, but its lease is gone
    assert task_row(db_path, task["id"])["status"] == "running"
    await fast.execute(again)
    assert task_row(db_path, task["id"])["worker"] == fast.name


async def test_running_worker_extends_its_leases(queue, clock, db_path):
    task, _ = await queue.tasks.enqueue("testw.block", None, now=clock.now())
    worker = queue.worker(task_lease=1, task_workers=1)  # one slot: no claims while it runs
    worker.start()
    await until(lambda: task["id"] in worker._running)
    clock.advance(100)
    await until(lambda: task_row(db_path, task["id"])["lease_until"] == clock.now() + 1)


async def test_sync_handlers_run_off_the_event_loop(queue, clock, db_path):
    task, _ = await queue.tasks.enqueue("testw.sync", None, now=clock.now())
    await run_due(queue.worker())
    assert seen[0][1] != threading.current_thread().name
    assert task_row(db_path, task["id"])["status"] == "succeeded"


async def test_enqueue_wakes_a_started_worker_at_once(queue, clock, db_path):
    worker = queue.worker()
    worker.poll = 30  # only the wake-up can make it run within the test's timeout
    worker.start()
    await until(lambda: worker.heartbeat is not None)
    await asyncio.sleep(0.05)
    task, _ = await queue.tasks.enqueue("testw.record", None, now=clock.now())
    await until(lambda: task_row(db_path, task["id"])["status"] == "succeeded", within=2)


async def test_stop_lets_quick_tasks_finish_and_returns_the_rest_to_pending(queue, clock, db_path):
    blocked, _ = await queue.tasks.enqueue("testw.block", None, now=clock.now(), priority=1)
    quick, _ = await queue.tasks.enqueue("testw.record", None, now=clock.now())
    worker = queue.worker(task_workers=2)
    worker.start()
    await until(lambda: task_row(db_path, quick["id"])["status"] == "succeeded")
    await until(lambda: task_row(db_path, blocked["id"])["status"] == "running")

    await worker.stop(grace=0.1)

    back = task_row(db_path, blocked["id"])
    assert (back["status"], back["attempts"], back["lease_until"]) == ("pending", 0, None)
    later, _ = await queue.tasks.enqueue("testw.record", None, now=clock.now())
    await asyncio.sleep(0.1)
    assert task_row(db_path, later["id"])["status"] == "pending"  # a stopped worker claims nothing


async def test_two_workers_on_two_pools_never_run_the_same_task(queue, clock, settings, db_path):
    other_pool = Pool(settings.db, readers=1)
    await other_pool.open()
    try:
        ids = set()
        for i in range(150):
            ids.add((await queue.tasks.enqueue("testw.record", i, now=clock.now()))[0]["id"])
        one, two = queue.worker(task_workers=3), queue.worker(other_pool, task_workers=3)
        one.start()
        two.start()
        await until(lambda: len(seen) >= len(ids), within=20)
        await one.stop()
        await two.stop()
    finally:
        await other_pool.close()
    ran = [tid for tid, _ in seen]
    assert sorted(ran) == sorted(ids)  # each exactly once
    conn = sqlite3.connect(db_path)
    by_worker = dict(
        conn.execute("SELECT worker, count(*) FROM background_tasks GROUP BY worker").fetchall()
    )
    attempts = conn.execute("SELECT max(attempts) FROM background_tasks").fetchone()[0]
    conn.close()
    assert set(by_worker) == {one.name, two.name}
    assert attempts == 1
