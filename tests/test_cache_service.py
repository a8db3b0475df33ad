"""reynard.cache without HTTP: purge, limits at the byte, prefix ranges, query plans."""

from __future__ import annotations

import itertools
import random
import sqlite3

import pytest

from reynard import keys
from reynard.cache import MAX_VALUE_BYTES, Cache, prefix_range, purge_expired
from reynard.errors import ApiError
from reynard.queries import q


@pytest.fixture
def pool(client):
    return client.app[keys.pool]


@pytest.fixture
def cache(pool, clock):
    return Cache(pool, clock, quota=2)


def count_rows(db_path) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT count(*) FROM cache_entries").fetchone()[0]
    finally:
        conn.close()


async def test_purge_removes_only_expired_rows_in_bounded_batches(pool, cache, clock, db_path):
    for i in range(12):
        await cache.set("sys:test", f"old{i}", i, ttl=1 + i % 3)
    for i in range(5):
        await cache.set("sys:test", f"forever{i}", i)
    for i in range(3):
        await cache.set("sys:other", f"later{i}", i, ttl=100)
    await cache.set("sys:test", "edge", 1, ttl=10)
    clock.advance(10)  # "edge" expires exactly now: expired
    before_rows = count_rows(db_path)
    writes = pool.stats.writes

    assert await purge_expired(pool, clock.now(), batch=5) == 13
    assert pool.stats.writes - writes == 3  # batches of 5, 5 and 3
    assert count_rows(db_path) == before_rows - 13
    for i in range(5):
        assert (await cache.get("sys:test", f"forever{i}")).value == i
    entries, _ = await cache.list("sys:other")
    assert [e.key for e in entries] == ["later0", "later1", "later2"]
    assert await purge_expired(pool, clock.now()) == 0


async def test_purge_of_exactly_one_batch_checks_once_more_and_stops(pool, cache, clock):
    for i in range(4):
        await cache.set("sys:test", f"k{i}", i, ttl=1)
    clock.advance(1)
    writes = pool.stats.writes
    assert await purge_expired(pool, clock.now(), batch=4) == 4
    assert pool.stats.writes - writes == 2


async def test_server_namespaces_have_no_quota_and_no_owner(cache, db_path):
    for i in range(5):
        await cache.set("sys:test", f"k{i}", i)
    assert await cache.incr("sys:test", "n", 5) == 5
    conn = sqlite3.connect(db_path)
    try:
        owners = {r[0] for r in conn.execute("SELECT user_id FROM cache_entries")}
    finally:
        conn.close()
    assert None in owners


async def test_a_value_of_exactly_64_kib_is_stored_and_one_byte_more_is_413(cache):
    exact = "x" * (MAX_VALUE_BYTES - 2)  # JSON adds two quotes
    entry = await cache.set("sys:test", "k", exact)
    assert (await cache.get("sys:test", "k")).value == exact == entry.value
    with pytest.raises(ApiError) as info:
        await cache.set("sys:test", "k", exact + "x")
    assert info.value.status == 413
    with pytest.raises(ApiError) as info:  # counted in UTF-8 bytes, not characters
        await cache.set("sys:test", "k", "é" * (MAX_VALUE_BYTES // 2))
    assert info.value.status == 413


async def test_a_value_that_is_not_json_is_422(cache):
    for value in (float("nan"), {1, 2}, b"bytes"):
        with pytest.raises(ApiError) as info:
            await cache.set("sys:test", "k", value)
        assert info.value.status == 422


EDGE_CHARS = ["a", "b", "é", "\x7e", "\u07ff", "\ud7ff", "\ue000", "\uffff", "\U0010ffff"]


def test_prefix_range_holds_exactly_the_keys_with_the_prefix():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE k (key TEXT PRIMARY KEY) WITHOUT ROWID")
    words = ["".join(p) for n in (1, 2, 3) for p in itertools.product(EDGE_CHARS, repeat=n)]
    conn.executemany("INSERT INTO k VALUES (?)", [(w,) for w in words])
    prefixes = [""] + random.Random(4).sample(words, 200) + ["\U0010ffff", "a\U0010ffff"]
    for prefix in prefixes:
        lo, hi = prefix_range(prefix)
        got = [r[0] for r in conn.execute("SELECT key FROM k WHERE key >= ? AND key < ?", (lo, hi))]
        assert got == sorted(w for w in words if w.startswith(prefix)), repr(prefix)


def test_prefix_range_steps_over_the_surrogates():
    assert prefix_range("a\ud7ff") == ("a\ud7ff", "a\ue000")


def plan(db_path, query, params) -> str:
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute("EXPLAIN QUERY PLAN " + query.sql, params).fetchall()
    finally:
        conn.close()
    return " | ".join(r[-1] for r in rows)


async def test_listing_and_prefix_delete_search_the_primary_key_range(pool, db_path):
    params = {"namespace": "u:1", "lo": "a", "hi": "b", "now": 0.0, "limit": 10}
    for query in (q.cache.list, q.cache.delete_range):
        assert "USING PRIMARY KEY (namespace=? AND key>? AND key<?)" in plan(db_path, query, params)


async def test_quota_count_and_purge_use_their_indexes(pool, db_path):
    count = plan(db_path, q.cache.count_live, {"user_id": 1, "now": 0.0})
    assert "COVERING INDEX cache_entries_user" in count
    purge = plan(db_path, q.cache.purge_batch, {"now": 0.0, "batch": 10})
    assert "COVERING INDEX cache_entries_expires" in purge
    assert "PRIMARY KEY (namespace=? AND key=?)" in purge
