"""Token checks and cache GETs reuse a read only while the database is unchanged."""

from __future__ import annotations

import sqlite3

from reynard import keys
from tests.support import create_admin


def _sql(db_path, statement: str, *params) -> None:
    conn = sqlite3.connect(db_path)  # another connection, as another process would have
    with conn:
        conn.execute(statement, params)
    conn.close()


def _checks(client):
    return client.app[keys.services]["accounts"].sessions.checks


async def test_repeated_token_checks_are_served_from_the_read_cache(client, make_user):
    token, _ = await make_user()
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(5):
        assert (await client.get("/api/auth/me", headers=auth)).status == 200
    assert _checks(client).hits >= 3


async def test_a_session_revoked_by_another_connection_fails_at_once(client, make_user, db_path):
    token, _ = await make_user()
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/auth/me", headers=auth)).status == 200
    assert (await client.get("/api/auth/me", headers=auth)).status == 200  # now cached
    _sql(db_path, "UPDATE sessions SET revoked_at = 1")
    resp = await client.get("/api/auth/me", headers=auth)
    assert resp.status == 401 and (await resp.json())["code"] == "invalid_token"


async def test_a_user_deactivated_by_another_connection_fails_at_once(client, make_user, db_path):
    token, user = await make_user()
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/auth/me", headers=auth)).status == 200
    _sql(db_path, "UPDATE users SET is_active = 0 WHERE id = ?", user["id"])
    assert (await client.get("/api/auth/me", headers=auth)).status == 401


async def test_a_cached_token_still_expires_and_idles_out_on_the_clock(
    client, make_user, clock, settings
):
    token, _ = await make_user()
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/auth/me", headers=auth)).status == 200
    clock.advance(settings.session_idle + 1)  # nothing written: the row is still cached
    assert (await client.get("/api/auth/me", headers=auth)).status == 401


async def test_cache_gets_see_other_connections_writes_and_expiry(
    client, make_user, db_path, clock
):
    token, _ = await make_user()
    auth = {"Authorization": f"Bearer {token}"}
    resp = await client.put("/api/cache/k", json={"value": "one", "ttl": 30}, headers=auth)
    assert resp.status == 200
    for _ in range(3):
        assert (await (await client.get("/api/cache/k", headers=auth)).json())["value"] == "one"
    assert client.app[keys.services]["cache"].reads.hits >= 1
    _sql(db_path, "UPDATE cache_entries SET value = '\"two\"' WHERE key = 'k'")
    assert (await (await client.get("/api/cache/k", headers=auth)).json())["value"] == "two"
    clock.advance(31)
    assert (await client.get("/api/cache/k", headers=auth)).status == 404


def test_another_process_ending_sessions_is_seen_by_a_running_server(server_factory, tmp_path):
    db = tmp_path / "x.db"
    create_admin(db, "root", "first admin password")
    server = server_factory(db)
    status, body, _ = server.request(
        "POST", "/api/auth/login", {"username": "root", "password": "first admin password"}
    )
    token = body["access_token"]
    for _ in range(3):
        assert server.request("GET", "/api/auth/me", token=token)[0] == 200
    # create-admin on an existing name resets the password and ends its sessions.
    create_admin(db, "root", "second admin password")
    assert server.request("GET", "/api/auth/me", token=token)[0] == 401


async def test_a_slow_read_overtaken_by_a_commit_is_not_kept(tmp_path):
    import asyncio

    from reynard.db import Pool
    from reynard.migrate import open_and_migrate
    from reynard.queries import Query
    from reynard.readcache import ReadCache

    path = str(tmp_path / "r.db")
    open_and_migrate(path)
    pool = Pool(path, readers=1)
    await pool.open()
    try:
        count = Query("t.count", "value", "SELECT count(*) FROM system_metrics")
        # Reads the table first (its snapshot starts there), then spends a while counting.
        slow = Query(
            "t.slow",
            "value",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500000)"
            " SELECT (SELECT count(*) FROM system_metrics) + 0 * (SELECT count(*) FROM n)",
        )
        insert = Query(
            "t.ins",
            "exec",
            "INSERT INTO system_metrics (name, value, recorded_at) VALUES ('x', 1, 0)",
        )
        reads = ReadCache(pool)
        assert await reads.fetch("count", count, ()) == 0  # first look: notes the generation
        slow_read = asyncio.ensure_future(reads.fetch("slow", slow, ()))
        await asyncio.sleep(0.1)  # the slow read now holds a snapshot on a reader thread
        await pool.write(insert)
        assert await reads.fetch("count", count, ()) == 1  # re-tags the cache
        assert await slow_read == 0  # true when its snapshot began, stale now
        assert "slow" not in reads._rows
        assert await reads.fetch("slow", slow, ()) == 1
    finally:
        await pool.close()
