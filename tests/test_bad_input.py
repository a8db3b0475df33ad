"""Hostile and broken requests: each gets its exact status and error code, nothing breaks."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

import pytest

J = {"Content-Type": "application/json"}


@dataclass
class Case:
    name: str
    method: str
    path: str
    status: int | tuple[int, ...]
    code: str | None
    body: bytes | None = None
    headers: dict | None = None
    auth: str | None = "user"  # "user", "admin", None, or a raw Authorization header value


def js(value) -> bytes:
    return json.dumps(value).encode()


REG = "/api/auth/register"
GOOD = {"username": "mallory", "email": "m@example.com", "password": "long enough pw"}
CASES = [
    # --- broken JSON, every way
    Case("truncated json", "POST", REG, 400, "invalid_json", b'{"username": "a', J, None),
    Case("empty body", "POST", REG, 400, "invalid_json", b"", J, None),
    Case("whitespace body", "POST", REG, 400, "invalid_json", b" \n ", J, None),
    Case("non-utf8 body", "POST", REG, 400, "invalid_json", b'{"username": "\xff\xfe"}', J, None),
    Case(
        "latin-1 charset claim",
        "POST",
        REG,
        400,
        "invalid_json",
        '{"username": "é"}'.encode("latin-1"),
        {"Content-Type": "application/json; charset=latin-1"},
        None,
    ),
    Case("nesting 40 deep", "POST", REG, 400, "invalid_json", b"[" * 40 + b"]" * 40, J, None),
    Case("NaN", "POST", REG, 400, "invalid_json", b'{"username": NaN}', J, None),
    Case("Infinity", "POST", REG, 400, "invalid_json", b'{"username": Infinity}', J, None),
    Case("huge float", "POST", REG, 400, "invalid_json", b'{"username": 1e400}', J, None),
    Case(
        "int beyond 64-bit",
        "PUT",
        "/api/cache/k",
        400,
        "invalid_json",
        b'{"value": 18446744073709551616}',
        J,
    ),
    Case("lone surrogate", "POST", REG, 400, "invalid_json", b'{"username": "\\udc00x"}', J, None),
    Case("trailing garbage", "POST", REG, 400, "invalid_json", js(GOOD) + b"}", J, None),
    Case("single quotes", "POST", REG, 400, "invalid_json", b"{'username': 'a'}", J, None),
    Case(
        "deep value in cache",
        "PUT",
        "/api/cache/deep",
        400,
        "invalid_json",
        b'{"value": ' + b"[" * 33 + b"]" * 33 + b"}",
        J,
    ),
    # --- wrong shapes and types
    Case("body is an array", "POST", REG, 422, "validation_error", js([GOOD]), J, None),
    Case("body is a string", "POST", REG, 422, "validation_error", js("x"), J, None),
    Case(
        "username is a number",
        "POST",
        REG,
        422,
        "validation_error",
        js({**GOOD, "username": 12345}),
        J,
        None,
    ),
    Case(
        "password is a list",
        "POST",
        REG,
        422,
        "validation_error",
        js({**GOOD, "password": ["a"] * 10}),
        J,
        None,
    ),
    Case(
        "email is an object",
        "POST",
        REG,
        422,
        "validation_error",
        js({**GOOD, "email": {"a": 1}}),
        J,
        None,
    ),
    Case(
        "null byte in username",
        "POST",
        REG,
        422,
        "validation_error",
        js({**GOOD, "username": "ab\u0000cd"}),
        J,
        None,
    ),
    Case(
        "username too long",
        "POST",
        REG,
        422,
        "validation_error",
        js({**GOOD, "username": "a" * 33}),
        J,
        None,
    ),
    Case(
        "password too long",
        "POST",
        REG,
        422,
        "validation_error",
        js({**GOOD, "password": "p" * 1025}),
        J,
        None,
    ),
    Case("missing fields", "POST", REG, 422, "validation_error", js({"username": "abc"}), J, None),
    Case(
        "unknown field (is_admin)",
        "POST",
        REG,
        422,
        "validation_error",
        js({**GOOD, "is_admin": True}),
        J,
        None,
    ),
    Case(
        "sql in username",
        "POST",
        REG,
        422,
        "validation_error",
        js({**GOOD, "username": "a'; DROP TABLE users;--"}),
        J,
        None,
    ),
    Case(
        "patch me to admin",
        "PATCH",
        "/api/auth/me",
        422,
        "validation_error",
        js({"is_admin": True}),
        J,
    ),
    Case(
        "ttl negative",
        "PUT",
        "/api/cache/k",
        422,
        "validation_error",
        js({"value": 1, "ttl": -5}),
        J,
    ),
    Case(
        "ttl a string",
        "PUT",
        "/api/cache/k",
        422,
        "validation_error",
        js({"value": 1, "ttl": "10"}),
        J,
    ),
    Case(
        "nx and xx",
        "PUT",
        "/api/cache/k",
        422,
        "validation_error",
        js({"value": 1, "nx": True, "xx": True}),
        J,
    ),
    Case(
        "incr by a float", "POST", "/api/cache/n/incr", 422, "validation_error", js({"by": 1.5}), J
    ),
    Case("cache put without value", "PUT", "/api/cache/k", 422, "validation_error", js({}), J),
    Case(
        "task with unknown name",
        "POST",
        "/api/tasks",
        422,
        "validation_error",
        js({"name": "rm -rf /"}),
        J,
        "admin",
    ),
    # --- sizes and content types
    Case(
        "body over 64 KiB",
        "POST",
        REG,
        413,
        "payload_too_large",
        js({**GOOD, "full_name": "x" * 70000}),
        J,
        None,
    ),
    Case(
        "cache value over 64 KiB",
        "PUT",
        "/api/cache/big",
        413,
        "payload_too_large",
        js({"value": "v" * 66000}),
        J,
    ),
    Case(
        "text/plain body",
        "POST",
        REG,
        415,
        "unsupported_media_type",
        js(GOOD),
        {"Content-Type": "text/plain"},
        None,
    ),
    Case(
        "xml body",
        "PUT",
        "/api/cache/k",
        415,
        "unsupported_media_type",
        b"<v>1</v>",
        {"Content-Type": "application/xml"},
    ),
    Case(
        "multipart login",
        "POST",
        "/api/auth/login",
        415,
        "unsupported_media_type",
        b"--x\r\n\r\n--x--",
        {"Content-Type": "multipart/form-data; boundary=x"},
        None,
    ),
    # --- keys, ids and paths
    Case("key with %00", "GET", "/api/cache/a%00b", 422, "validation_error"),
    Case(
        "key with newline", "PUT", "/api/cache/a%0Ab", 422, "validation_error", js({"value": 1}), J
    ),
    Case("key of 513 chars", "GET", "/api/cache/" + "k" * 513, 422, "validation_error"),
    Case(
        "traversal key is just a missing key",
        "GET",
        "/api/cache/..%2F..%2Fetc%2Fpasswd",
        404,
        "not_found",
    ),
    Case("negative user id", "GET", "/api/users/-1", 404, "not_found", auth="admin"),
    Case(
        "enormous user id",
        "GET",
        "/api/users/99999999999999999999999",
        404,
        "not_found",
        auth="admin",
    ),
    Case("text user id", "GET", "/api/users/abc", 404, "not_found", auth="admin"),
    Case("user id zero", "DELETE", "/api/users/0", 404, "not_found", auth="admin"),
    Case(
        "enormous task id", "GET", "/api/tasks/18446744073709551616", 404, "not_found", auth="admin"
    ),
    Case("session id text", "DELETE", "/api/auth/sessions/1%20OR%201=1", 404, "not_found"),
    Case("limit zero", "GET", "/api/users?limit=0", 422, "validation_error", auth="admin"),
    Case("limit 101", "GET", "/api/cache?limit=101", 422, "validation_error"),
    Case("limit text", "GET", "/api/tasks?limit=ten", 422, "validation_error", auth="admin"),
    Case(
        "bad task status filter",
        "GET",
        "/api/tasks?status=everything",
        422,
        "validation_error",
        auth="admin",
    ),
    # --- tokens
    Case("no token", "GET", "/api/auth/me", 401, "not_authenticated", auth=None),
    Case("empty bearer", "GET", "/api/auth/me", 401, None, auth="Bearer "),
    Case("basic auth", "GET", "/api/auth/me", 401, None, auth="Basic YWxhZGRpbjpvcGVu"),
    Case("random token", "GET", "/api/auth/me", 401, "invalid_token", auth="Bearer " + "A" * 43),
    Case(
        "foreign jwt",
        "GET",
        "/api/auth/me",
        401,
        "invalid_token",
        auth="Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwiYWRtaW4iOnRydWV9.",
    ),
    Case("sql in token", "GET", "/api/auth/me", 401, "invalid_token", auth="Bearer ' OR '1'='1"),
    Case(
        "very long token", "GET", "/api/auth/me", 401, "invalid_token", auth="Bearer " + "x" * 4000
    ),
    Case("non-admin on admin route", "GET", "/api/users", 403, "forbidden"),
    Case(
        "non-admin enqueues a task",
        "POST",
        "/api/tasks",
        403,
        "forbidden",
        js({"name": "cache.purge"}),
        J,
    ),
    # --- methods and routes
    Case("delete on login", "DELETE", "/api/auth/login", 405, "method_not_allowed", auth=None),
    Case("unknown route", "GET", "/api/nope/../../etc/passwd", 404, "not_found", auth=None),
]


@pytest.fixture
async def tokens(make_user):
    user, _ = await make_user("victim")
    admin, _ = await make_user("boss", admin=True)
    return {"user": user, "admin": admin}


async def test_hostile_requests_get_exact_errors_and_break_nothing(client, tokens, db_path):
    assert len(CASES) >= 40
    wrong = []
    for case in CASES:
        headers = dict(case.headers or {})
        if case.auth in tokens:
            headers["Authorization"] = f"Bearer {tokens[case.auth]}"
        elif case.auth:
            headers["Authorization"] = case.auth
        resp = await client.request(case.method, case.path, data=case.body, headers=headers)
        text = await resp.text()
        statuses = case.status if isinstance(case.status, tuple) else (case.status,)
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        code_ok = (
            body is not None
            and isinstance(body.get("detail"), str)
            and (case.code is None or body.get("code") == case.code)
        )
        if resp.status not in statuses or not code_ok or "Traceback" in text:
            wrong.append(
                f"{case.name}: {case.method} {case.path[:60]} -> {resp.status} "
                f"{text[:160]!r} (wanted {case.status} {case.code})"
            )
        if resp.status == 401:
            assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), case.name
    assert not wrong, "\n".join(wrong)

    assert (await client.get("/api/health/live")).status == 200
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['user']}"})
    assert me.status == 200
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    names = {r[0] for r in conn.execute("SELECT username FROM users")}
    assert names == {"victim", "boss"}  # nothing half-registered
    assert (
        conn.execute("SELECT count(*) FROM cache_entries WHERE namespace LIKE 'u:%'").fetchone()[0]
        == 0
    )


async def test_sql_metacharacters_are_data_not_code(client, tokens):
    auth = {"Authorization": f"Bearer {tokens['user']}"}
    key = "'; DROP TABLE cache_entries; --"
    from urllib.parse import quote

    resp = await client.put(f"/api/cache/{quote(key, safe='')}", json={"value": "x"}, headers=auth)
    assert resp.status == 200, await resp.text()
    resp = await client.get(f"/api/cache/{quote(key, safe='')}", headers=auth)
    assert (await resp.json())["key"] == key
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    resp = await client.get("/api/users", params={"q": "%' OR 1=1 --"}, headers=admin)
    assert resp.status == 200 and (await resp.json())["items"] == []
    resp = await client.get("/api/users", params={"q": "%"}, headers=admin)
    assert (await resp.json())["items"] == []  # % is a literal character, not a wildcard


async def test_a_header_over_8_kib_is_refused_and_the_server_carries_on(client):
    resp = await client.get("/api/health/live", headers={"X-Big": "h" * 9000})
    assert resp.status in (400, 431)
    assert (await client.get("/api/health/live")).status == 200
