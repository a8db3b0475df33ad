from __future__ import annotations

import sqlite3

from reynard import keys
from reynard.accounts import cleanup_sessions
from tests.conftest import PASSWORD

TTL, IDLE = 43200, 7200


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def last_seen(db_path) -> list[float]:
    conn = sqlite3.connect(db_path)
    try:
        return [row[0] for row in conn.execute("SELECT last_seen_at FROM sessions ORDER BY id")]
    finally:
        conn.close()


async def me_status(client, token) -> int:
    return (await client.get("/api/auth/me", headers=bearer(token))).status


async def test_token_expires_at_its_absolute_lifetime_even_when_used(client, make_user, clock):
    token, _ = await make_user()
    for _ in range(TTL // 3600 - 1):
        clock.advance(3600)
        assert await me_status(client, token) == 200
    clock.advance(3600)
    assert await me_status(client, token) == 401


async def test_token_expires_after_the_idle_timeout(client, make_user, clock):
    token, _ = await make_user()
    clock.advance(IDLE - 1)
    assert await me_status(client, token) == 200
    clock.advance(IDLE - 1)  # the use above counted as activity
    assert await me_status(client, token) == 200
    clock.advance(IDLE)
    assert await me_status(client, token) == 401


async def test_last_seen_is_written_at_most_once_a_minute(client, make_user, clock, db_path):
    token, _ = await make_user()
    start = last_seen(db_path)[0]
    clock.advance(30)
    assert await me_status(client, token) == 200
    assert last_seen(db_path) == [start]
    clock.advance(30)
    assert await me_status(client, token) == 200
    assert last_seen(db_path) == [start + 60]
    clock.advance(59)
    assert await me_status(client, token) == 200
    assert last_seen(db_path) == [start + 60]


async def test_deactivated_users_token_stops_working_at_once(client, make_user):
    token, user = await make_user("alice")
    admin, _ = await make_user("root", admin=True)
    assert await me_status(client, token) == 200
    resp = await client.patch(
        f"/api/users/{user['id']}", json={"is_active": False}, headers=bearer(admin)
    )
    assert resp.status == 200 and (await resp.json())["is_active"] is False
    assert await me_status(client, token) == 401
    # Reactivation does not bring the ended sessions back.
    await client.patch(f"/api/users/{user['id']}", json={"is_active": True}, headers=bearer(admin))
    assert await me_status(client, token) == 401


async def test_cleanup_deletes_expired_revoked_and_idle_sessions_only(
    client, make_user, clock, db_path
):
    pool = client.app[keys.pool]
    old, _ = await make_user("old")  # will pass its absolute expiry
    clock.advance(TTL - IDLE + 1)
    idle, _ = await make_user("idle")  # will go idle
    clock.advance(IDLE - 100)
    revoked, _ = await make_user("revoked")
    await client.post("/api/auth/logout", headers=bearer(revoked))
    live, _ = await make_user("live")
    clock.advance(101)
    assert await me_status(client, live) == 200
    deleted = await cleanup_sessions(pool, clock.now(), IDLE)
    assert deleted == 3
    conn = sqlite3.connect(db_path)
    left = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
    conn.close()
    assert left == 1
    assert await me_status(client, live) == 200
    assert await cleanup_sessions(pool, clock.now(), IDLE) == 0


async def test_cleanup_works_in_bounded_batches(client, make_user, clock):
    from reynard.sessions import cleanup_sessions as batched

    token, _ = await make_user("many")
    for _ in range(4):
        await client.post("/api/auth/login", json={"username": "many", "password": PASSWORD})
    await client.post("/api/auth/logout-all", headers=bearer(token))
    assert await batched(client.app[keys.pool], clock.now(), IDLE, batch=2) == 5


def test_users_and_sessions_survive_a_server_restart(server_factory, tmp_path):
    db = tmp_path / "persist.db"
    server = server_factory(db=db)
    body = {"username": "mia", "email": "mia@example.com", "password": PASSWORD}
    assert server.request("POST", "/api/auth/register", body)[0] == 201
    status, login, _ = server.request(
        "POST", "/api/auth/login", {"username": "mia", "password": PASSWORD}
    )
    assert status == 200
    token = login["access_token"]
    assert server.stop() == 0
    again = server_factory(db=db)
    status, me, _ = again.request("GET", "/api/auth/me", token=token)
    assert status == 200 and me["username"] == "mia"
    status, _, _ = again.request(
        "POST", "/api/auth/login", {"username": "mia", "password": PASSWORD}
    )
    assert status == 200
