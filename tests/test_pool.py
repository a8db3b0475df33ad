"""The pool: group commit, isolation of failures, readers, the guarded fast read path."""

from __future__ import annotations

import asyncio
import re
import sqlite3

import pytest

from reynard.db import Pool
from reynard.migrate import open_and_migrate
from reynard.queries import Query, all_queries, q

INSERT = Query(
    "t.insert",
    "returning",
    "INSERT INTO system_metrics (name, value, recorded_at) VALUES (:name, :v, 0) RETURNING id",
)
COUNT = Query("t.count", "value", "SELECT count(*) FROM system_metrics WHERE name = :name")
SLOW = Query(
    "t.slow",
    "value",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)"
    " SELECT count(*) FROM n",
)


@pytest.fixture
async def pool(tmp_path):
    path = str(tmp_path / "pool.db")
    open_and_migrate(path)
    pool = Pool(path, readers=2)
    await pool.open()
    yield pool
    await pool.close()


async def test_two_hundred_concurrent_writers_and_readers_never_see_database_locked(pool):
    async def writer(i: int) -> int:
        rows = await pool.write(INSERT, {"name": "w", "v": i})
        return rows[0]["id"]

    async def reader() -> int:
        return await pool.read(lambda conn: COUNT.run(conn, {"name": "w"}))

    results = await asyncio.gather(*[writer(i) for i in range(200)], *[reader() for _ in range(50)])
    ids = results[:200]
    assert len(set(ids)) == 200
    assert await pool.fetch(COUNT, {"name": "w"}) == 200
    # Group commit really batched: far fewer transactions than writes.
    assert pool.stats.batches < 200


async def test_a_failing_job_is_undone_without_undoing_its_batch_neighbours(pool):
    def failing(conn: sqlite3.Connection) -> None:
        INSERT.run(conn, {"name": "bad", "v": 1})
        raise ValueError("boom")

    results = await asyncio.gather(
        pool.write(INSERT, {"name": "good", "v": 1}),
        pool.write_fn(failing),
        pool.write(INSERT, {"name": "good", "v": 2}),
        return_exceptions=True,
    )
    assert isinstance(results[1], ValueError)
    assert await pool.fetch(COUNT, {"name": "good"}) == 2
    assert await pool.fetch(COUNT, {"name": "bad"}) == 0


async def test_a_failing_transaction_leaves_no_row_behind(pool):
    with pytest.raises(RuntimeError):
        async with pool.transaction() as tx:
            await tx.run(INSERT, {"name": "tx", "v": 1})
            raise RuntimeError("abort")
    assert await pool.fetch(COUNT, {"name": "tx"}) == 0
    async with pool.transaction() as tx:
        await tx.run(INSERT, {"name": "tx", "v": 2})
    assert await pool.fetch(COUNT, {"name": "tx"}) == 1


async def test_a_constraint_violation_in_one_statement_keeps_nothing_of_the_job(pool):
    def two_inserts(conn: sqlite3.Connection) -> None:
        INSERT.run(conn, {"name": "pair", "v": 1})
        INSERT.run(conn, {"name": None, "v": 2})  # NOT NULL fails

    with pytest.raises(sqlite3.IntegrityError):
        await pool.write_fn(two_inserts)
    assert await pool.fetch(COUNT, {"name": "pair"}) == 0


async def test_slow_queries_leave_the_event_loop_and_still_answer(pool):
    assert await pool.fetch(SLOW) == 300000
    assert pool.stats.fast_fallbacks == 1
    assert await pool.fetch(COUNT, {"name": "none"}) == 0
    assert pool.stats.fast_reads == 1


async def test_readers_are_read_only(pool):
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await pool.read(lambda conn: INSERT.run(conn, {"name": "r", "v": 1}))


async def test_close_finishes_queued_writes(tmp_path):
    path = str(tmp_path / "c.db")
    open_and_migrate(path)
    pool = Pool(path, readers=1)
    await pool.open()
    futures = [asyncio.ensure_future(pool.write(INSERT, {"name": "q", "v": i})) for i in range(20)]
    await asyncio.sleep(0)
    await pool.close()
    assert all(f.done() and not f.exception() for f in futures)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM system_metrics WHERE name='q'").fetchone()[0] == 20


def test_every_named_query_explains(tmp_path):
    """A typo in any sql/queries/*.sql file fails here, not in production."""
    path = str(tmp_path / "e.db")
    open_and_migrate(path)
    conn = sqlite3.connect(path)
    queries = all_queries(q)
    assert queries, "no named queries loaded"
    for query in queries:
        names = {p[1:] for p in re.findall(r":[A-Za-z_][A-Za-z0-9_]*", query.sql)}
        conn.execute(f"EXPLAIN {query.sql}", dict.fromkeys(names))


async def test_writes_run_on_the_loop_connection_when_synchronous_is_normal(pool):
    await asyncio.gather(*[pool.write(INSERT, {"name": "loop", "v": i}) for i in range(50)])
    assert pool.stats.loop_batches == pool.stats.batches > 0
    assert pool.stats.loop_fallbacks == 0


async def test_a_write_too_slow_for_the_loop_moves_to_the_thread_and_applies_once(pool):
    def slow(conn: sqlite3.Connection) -> int:
        INSERT.run(conn, {"name": "slow", "v": 1})
        return SLOW.run(conn)  # far past the loop's step budget

    neighbour = asyncio.ensure_future(pool.write(INSERT, {"name": "neighbour", "v": 1}))
    assert await pool.write_fn(slow) == 300000
    await neighbour
    assert pool.stats.loop_fallbacks >= 1
    assert await pool.fetch(COUNT, {"name": "slow"}) == 1
    assert await pool.fetch(COUNT, {"name": "neighbour"}) == 1


async def test_with_synchronous_full_every_batch_stays_off_the_loop(tmp_path):
    path = str(tmp_path / "full.db")
    open_and_migrate(path)
    pool = Pool(path, readers=1, synchronous="FULL")
    await pool.open()
    try:
        await pool.write(INSERT, {"name": "f", "v": 1})
        assert pool.stats.batches == 1 and pool.stats.loop_batches == 0
    finally:
        await pool.close()


async def test_the_wal_is_checkpointed_off_the_loop(pool, monkeypatch):
    import reynard.db

    monkeypatch.setattr(reynard.db, "WAL_CHECKPOINT_BYTES", 64 * 1024)
    big = Query(
        "t.big",
        "exec",
        "INSERT INTO system_metrics (name, value, labels, recorded_at)"
        " VALUES ('big', 0, :labels, 0)",
    )
    for _ in range(70):  # the WAL size is looked at every 64 loop batches
        await pool.write(big, {"labels": "x" * 20000})
    if pool._checkpointing is not None:
        await pool._checkpointing
    assert pool.stats.checkpoints >= 1


async def test_close_closes_every_connection_even_if_the_writer_task_failed(tmp_path):
    import threading

    path = str(tmp_path / "x.db")
    open_and_migrate(path)
    before = threading.active_count()
    pool = Pool(path, readers=2)
    await pool.open()
    assert threading.active_count() == before + 3  # writer + 2 readers
    pool._writer_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pool.close()
    for _ in range(100):  # aiosqlite's threads end once their connection is closed
        if threading.active_count() == before:
            break
        await asyncio.sleep(0.01)
    assert threading.active_count() == before
