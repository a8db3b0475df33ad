from __future__ import annotations

import sqlite3

import pytest


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def admin(make_user):
    token, _ = await make_user("root", admin=True)
    return token


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/users"),
        ("GET", "/api/users/1"),
        ("PATCH", "/api/users/1"),
        ("DELETE", "/api/users/1"),
        ("GET", "/api/auth/users"),
    ],
)
async def test_admin_routes_are_401_without_a_token_and_403_for_others(
    client, make_user, method, path
):
    token, _ = await make_user()
    resp = await client.request(method, path, json={} if method == "PATCH" else None)
    assert resp.status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
    resp = await client.request(
        method, path, json={} if method == "PATCH" else None, headers=bearer(token)
    )
    assert resp.status == 403 and (await resp.json())["code"] == "forbidden"


async def test_list_pages_by_id_with_a_cursor(client, make_user, admin):
    for name in ("ann", "ben", "cat"):
        await make_user(name)
    resp = await client.get("/api/users?limit=2", headers=bearer(admin))
    first = await resp.json()
    assert [u["username"] for u in first["items"]] == ["root", "ann"]
    assert first["next"]
    resp = await client.get(f"/api/users?limit=2&after={first['next']}", headers=bearer(admin))
    second = await resp.json()
    assert [u["username"] for u in second["items"]] == ["ben", "cat"]
    resp = await client.get(f"/api/users?limit=2&after={second['next']}", headers=bearer(admin))
    assert await resp.json() == {"items": [], "next": None}
    assert "password_hash" not in first["items"][0]
    assert (await client.get("/api/users?limit=0", headers=bearer(admin))).status == 422
    assert (await client.get("/api/users?limit=101", headers=bearer(admin))).status == 422
    assert (await client.get("/api/users?after=x", headers=bearer(admin))).status == 422


async def test_auth_users_is_the_same_list(client, make_user, admin):
    await make_user("ann")
    a = await (await client.get("/api/users", headers=bearer(admin))).json()
    b = await (await client.get("/api/auth/users/", headers=bearer(admin))).json()
    assert a == b and len(a["items"]) == 2


async def test_q_matches_a_username_or_email_prefix_ignoring_case(
    client, make_user, admin, db_path
):
    await make_user("Alpha")
    await make_user("alpine")
    await make_user("beta")
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE users SET email = 'ALbert@x.example' WHERE username = 'beta'")
    conn.close()
    resp = await client.get("/api/users?q=AL", headers=bearer(admin))
    assert [u["username"] for u in (await resp.json())["items"]] == ["Alpha", "alpine", "beta"]
    resp = await client.get("/api/users?q=alph", headers=bearer(admin))
    assert [u["username"] for u in (await resp.json())["items"]] == ["Alpha"]
    resp = await client.get("/api/users?q=%25", headers=bearer(admin))
    assert (await resp.json())["items"] == []


async def test_get_one_user_and_404(client, make_user, admin):
    _, user = await make_user("ann")
    resp = await client.get(f"/api/users/{user['id']}", headers=bearer(admin))
    assert resp.status == 200 and (await resp.json())["username"] == "ann"
    assert (await client.get("/api/users/999", headers=bearer(admin))).status == 404
    assert (await client.get("/api/users/abc", headers=bearer(admin))).status == 404


async def test_patch_changes_fields_and_validates(client, make_user, admin):
    _, user = await make_user("ann")
    await make_user("ben")
    url = f"/api/users/{user['id']}"
    resp = await client.patch(
        url, json={"full_name": "Ann A", "is_admin": True}, headers=bearer(admin)
    )
    body = await resp.json()
    assert resp.status == 200 and body["full_name"] == "Ann A" and body["is_admin"] is True
    resp = await client.patch(url, json={"email": "BEN@example.com"}, headers=bearer(admin))
    assert resp.status == 409 and (await resp.json())["code"] == "email_taken"
    resp = await client.patch(url, json={"is_admin": "yes", "username": "x"}, headers=bearer(admin))
    assert resp.status == 422
    assert {e["field"] for e in (await resp.json())["errors"]} == {"is_admin", "username"}
    assert (await client.patch("/api/users/999", json={}, headers=bearer(admin))).status == 404


async def test_the_last_active_admin_cannot_be_demoted_deactivated_or_deleted(
    client, make_user, admin
):
    me = await (await client.get("/api/auth/me", headers=bearer(admin))).json()
    url = f"/api/users/{me['id']}"
    for change in ({"is_admin": False}, {"is_active": False}):
        resp = await client.patch(url, json=change, headers=bearer(admin))
        assert resp.status == 409 and (await resp.json())["code"] == "last_admin"
    resp = await client.delete(url, headers=bearer(admin))
    assert resp.status == 409 and (await resp.json())["code"] == "last_admin"
    # With a second admin, the first can step down.
    _, other = await make_user("second", admin=True)
    resp = await client.patch(url, json={"is_admin": False}, headers=bearer(admin))
    assert resp.status == 200


async def test_delete_removes_the_user_with_sessions_and_cache_rows(
    client, make_user, admin, db_path, clock
):
    token, user = await make_user("ann")
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "INSERT INTO cache_entries (namespace, key, value, user_id, created_at, updated_at)"
            " VALUES (?, 'k', '1', ?, 0, 0)",
            (f"u:{user['id']}", user["id"]),
        )
    resp = await client.delete(f"/api/users/{user['id']}", headers=bearer(admin))
    assert resp.status == 204
    assert (await client.get("/api/auth/me", headers=bearer(token))).status == 401
    counts = [
        conn.execute(sql, (user["id"],)).fetchone()[0]
        for sql in (
            "SELECT count(*) FROM users WHERE id = ?",
            "SELECT count(*) FROM sessions WHERE user_id = ?",
            "SELECT count(*) FROM cache_entries WHERE user_id = ?",
        )
    ]
    conn.close()
    assert counts == [0, 0, 0]
    assert (await client.delete(f"/api/users/{user['id']}", headers=bearer(admin))).status == 404
    # The name is free again.
    resp = await client.post(
        "/api/auth/register",
        json={"username": "ANN", "email": "ann@example.com", "password": "long enough pw"},
    )
    assert resp.status == 201
