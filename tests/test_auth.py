from __future__ import annotations

import hashlib
import sqlite3

from reynard import passwords
from tests.conftest import PASSWORD


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client, username="alice", email=None, password=PASSWORD, **extra):
    body = {"username": username, "email": email or f"{username}@example.com", "password": password}
    body.update(extra)
    return await client.post("/api/auth/register", json=body)


async def login(client, username="alice", password=PASSWORD):
    return await client.post("/api/auth/login", json={"username": username, "password": password})


USER_KEYS = {
    "id",
    "username",
    "email",
    "full_name",
    "is_active",
    "is_admin",
    "created_at",
    "updated_at",
    "last_login_at",
}


async def test_register_returns_201_and_the_user_without_any_hash(client):
    resp = await register(client, full_name="Alice A.")
    assert resp.status == 201
    user = await resp.json()
    assert set(user) == USER_KEYS
    assert user["username"] == "alice" and user["full_name"] == "Alice A."
    assert user["is_active"] is True and user["is_admin"] is False
    assert user["created_at"].endswith("Z") and user["last_login_at"] is None


async def test_register_validates_every_field(client):
    resp = await client.post(
        "/api/auth/register",
        json={"username": "a b", "email": "nope", "password": "short", "role": "admin"},
    )
    assert resp.status == 422
    body = await resp.json()
    assert body["code"] == "validation_error"
    assert {e["field"] for e in body["errors"]} == {"username", "email", "password", "role"}
    resp = await client.post("/api/auth/register", json={})
    assert {e["field"] for e in (await resp.json())["errors"]} == {"username", "email", "password"}
    resp = await register(client, username="x" * 33)
    assert resp.status == 422
    resp = await register(client, password="p" * 1025)
    assert resp.status == 422


async def test_username_and_email_are_unique_ignoring_case(client):
    assert (await register(client, "Alice", "Alice@Example.com")).status == 201
    resp = await register(client, "ALICE", "other@example.com")
    assert resp.status == 409
    assert (await resp.json())["code"] == "username_taken"
    resp = await register(client, "bob", "alice@EXAMPLE.COM")
    assert resp.status == 409
    assert (await resp.json())["code"] == "email_taken"


async def test_login_returns_a_bearer_token_that_works_for_me(client):
    await register(client)
    resp = await login(client)
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "expires_at",
        "session_id",
        "user",
    }
    assert body["token_type"] == "bearer" and body["expires_in"] == 43200
    assert len(body["access_token"]) >= 43
    assert body["user"]["last_login_at"] is not None
    resp = await client.get("/api/auth/me", headers=bearer(body["access_token"]))
    assert resp.status == 200
    me = await resp.json()
    assert me["username"] == "alice" and set(me) == USER_KEYS


async def test_login_by_email_or_username_ignores_case(client):
    await register(client, "Alice", "Alice@Example.com")
    for name in ("alice", "ALICE", "alice@example.com", "ALICE@EXAMPLE.COM"):
        resp = await login(client, name)
        assert resp.status == 200, name


async def test_login_accepts_a_form_body(client):
    await register(client)
    resp = await client.post(
        "/api/auth/login",
        data={"username": "alice", "password": PASSWORD, "grant_type": "password"},
    )
    assert resp.status == 200
    assert (await resp.json())["token_type"] == "bearer"


async def test_login_without_fields_is_422_and_text_body_is_415(client):
    resp = await client.post("/api/auth/login", json={"username": "alice"})
    assert resp.status == 422
    resp = await client.post(
        "/api/auth/login", data="hello", headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 415


async def test_unknown_user_and_wrong_password_get_identical_answers_and_equal_work(client):
    await register(client)
    before = passwords.computations
    wrong = await login(client, "alice", "not the password")
    wrong_work = passwords.computations - before
    before = passwords.computations
    unknown = await login(client, "nobody", "not the password")
    unknown_work = passwords.computations - before
    assert wrong.status == unknown.status == 401
    assert (
        await wrong.json()
        == await unknown.json()
        == {
            "detail": "wrong username or password",
            "code": "invalid_credentials",
        }
    )
    assert wrong_work == unknown_work == 1


async def test_inactive_user_with_the_right_password_is_403(client, make_user, db_path):
    _, user = await make_user("carol")
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE users SET is_active = 0 WHERE id = ?", (user["id"],))
    conn.close()
    resp = await login(client, "carol")
    assert resp.status == 403
    assert (await resp.json())["code"] == "inactive"


async def test_me_without_or_with_a_bad_token_is_401_with_www_authenticate(client):
    resp = await client.get("/api/auth/me")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert (await resp.json())["code"] == "not_authenticated"
    for header in ("Bearer nope", "Basic abc", "Bearer", "Bearer " + "x" * 5000):
        resp = await client.get("/api/auth/me", headers={"Authorization": header})
        assert resp.status == 401, header
        assert resp.headers["WWW-Authenticate"] == "Bearer"
        assert (await resp.json())["code"] == "invalid_token"


async def test_patch_me_changes_email_and_full_name_and_checks_uniqueness(client, make_user):
    token, _ = await make_user("dave")
    await make_user("erin")
    resp = await client.patch(
        "/api/auth/me",
        json={"email": "Dave@New.example", "full_name": "Dave D"},
        headers=bearer(token),
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["email"] == "Dave@New.example" and body["full_name"] == "Dave D"
    resp = await client.patch("/api/auth/me", json={"full_name": None}, headers=bearer(token))
    assert (await resp.json())["full_name"] is None
    resp = await client.patch(
        "/api/auth/me", json={"email": "ERIN@example.com"}, headers=bearer(token)
    )
    assert resp.status == 409 and (await resp.json())["code"] == "email_taken"
    resp = await client.patch("/api/auth/me", json={"is_admin": True}, headers=bearer(token))
    assert resp.status == 422


async def test_token_works_until_logout_and_not_after(client, make_user):
    token, _ = await make_user()
    assert (await client.get("/api/auth/me", headers=bearer(token))).status == 200
    resp = await client.post("/api/auth/logout", headers=bearer(token))
    assert resp.status == 204
    resp = await client.get("/api/auth/me", headers=bearer(token))
    assert resp.status == 401 and (await resp.json())["code"] == "invalid_token"


async def test_logout_all_ends_every_session(client, make_user):
    first, _ = await make_user("frank")
    second = (await (await login(client, "frank")).json())["access_token"]
    assert (await client.post("/api/auth/logout-all", headers=bearer(first))).status == 204
    for token in (first, second):
        assert (await client.get("/api/auth/me", headers=bearer(token))).status == 401


async def test_refresh_gives_a_new_token_and_ends_the_old_one(client, make_user):
    old, _ = await make_user()
    resp = await client.post("/api/auth/refresh", headers=bearer(old))
    assert resp.status == 200
    body = await resp.json()
    new = body["access_token"]
    assert new != old and body["token_type"] == "bearer"
    assert (await client.get("/api/auth/me", headers=bearer(old))).status == 401
    assert (await client.get("/api/auth/me", headers=bearer(new))).status == 200
    assert (await client.post("/api/auth/refresh", headers=bearer(old))).status == 401


async def test_password_change_ends_other_sessions_but_keeps_this_one(client, make_user):
    current, _ = await make_user("gina")
    other = (await (await login(client, "gina")).json())["access_token"]
    resp = await client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "a whole new secret"},
        headers=bearer(current),
    )
    assert resp.status == 204
    assert (await client.get("/api/auth/me", headers=bearer(current))).status == 200
    assert (await client.get("/api/auth/me", headers=bearer(other))).status == 401
    assert (await login(client, "gina")).status == 401
    assert (await login(client, "gina", "a whole new secret")).status == 200


async def test_password_change_with_a_wrong_current_password_is_422(client, make_user):
    token, _ = await make_user()
    resp = await client.post(
        "/api/auth/password",
        json={"current_password": "wrong one", "new_password": "a whole new secret"},
        headers=bearer(token),
    )
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["field"] == "current_password"
    resp = await client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(token),
    )
    assert resp.status == 422


async def test_sessions_lists_own_live_sessions_and_marks_the_current_one(client, make_user):
    token, _ = await make_user("hank")
    await client.post(
        "/api/auth/login",
        json={"username": "hank", "password": PASSWORD},
        headers={"User-Agent": "curl/8"},
    )
    other_user, _ = await make_user("ivy")
    resp = await client.get("/api/auth/sessions", headers=bearer(token))
    assert resp.status == 200
    body = await resp.json()
    assert body["next"] is None and len(body["items"]) == 2
    item = body["items"][0]
    assert set(item) == {
        "id",
        "created_at",
        "last_seen_at",
        "expires_at",
        "user_agent",
        "ip",
        "current",
    }
    assert [i["current"] for i in body["items"]] == [True, False]
    assert body["items"][1]["user_agent"] == "curl/8"
    resp = await client.get("/api/auth/sessions?limit=1", headers=bearer(token))
    page = await resp.json()
    assert len(page["items"]) == 1 and page["next"]
    resp = await client.get(
        f"/api/auth/sessions?limit=1&after={page['next']}", headers=bearer(token)
    )
    assert [i["current"] for i in (await resp.json())["items"]] == [False]
    assert (await client.get("/api/auth/sessions?after=zz", headers=bearer(token))).status == 422


async def test_delete_session_ends_own_session_and_404s_on_others(client, make_user):
    token, _ = await make_user("jill")
    second = await (await login(client, "jill")).json()
    other_token, _ = await make_user("kim")
    others = await (await client.get("/api/auth/sessions", headers=bearer(other_token))).json()
    resp = await client.delete(
        f"/api/auth/sessions/{others['items'][0]['id']}", headers=bearer(token)
    )
    assert resp.status == 404
    assert (await client.get("/api/auth/me", headers=bearer(other_token))).status == 200
    resp = await client.delete(f"/api/auth/sessions/{second['session_id']}", headers=bearer(token))
    assert resp.status == 204
    assert (await client.get("/api/auth/me", headers=bearer(second["access_token"]))).status == 401
    resp = await client.delete(f"/api/auth/sessions/{second['session_id']}", headers=bearer(token))
    assert resp.status == 404
    assert (await client.delete("/api/auth/sessions/abc", headers=bearer(token))).status == 404


async def test_trailing_slash_works_on_auth_routes(client, make_user):
    token, _ = await make_user()
    assert (await client.get("/api/auth/me/", headers=bearer(token))).status == 200


async def test_database_file_holds_neither_the_token_nor_the_password(client, make_user, db_path):
    secret = "unmistakable-pass-phrase-1234"
    token, _ = await make_user("leo", password=secret)
    await client.get("/api/auth/me", headers=bearer(token))
    await client.post(
        "/api/auth/login", json={"username": "leo", "password": "unmistakable-wrong-guess-99"}
    )
    raw = b"".join(
        p.read_bytes() for p in (db_path, db_path.with_name(db_path.name + "-wal")) if p.exists()
    )
    assert hashlib.sha256(token.encode()).digest() in raw  # the search does see session rows
    assert token.encode() not in raw
    assert secret.encode() not in raw
    assert b"unmistakable-wrong-guess-99" not in raw


async def test_openapi_lists_the_auth_routes(client):
    doc = await (await client.get("/api/openapi.json")).json()
    assert "post" in doc["paths"]["/api/auth/login"]
    assert doc["paths"]["/api/auth/me"]["get"]["security"] == [{"bearer": []}]
    assert "/api/users/{user_id}" in doc["paths"]
