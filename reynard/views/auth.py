"""/api/auth: register, login, me, password, logout, refresh and the caller's sessions."""

from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web

from .. import keys
from ..accounts import Accounts, Login, user_json
from ..clock import iso
from ..routing import Route, add_routes
from ..validation import Field, query_int, validate
from . import users as users_views
from .common import dumps, int_param, json_response, no_content, read_json, read_json_or_form
from .guards import require_user, user_row_key

USERNAME = r"[A-Za-z0-9_.-]{3,32}"
EMAIL = r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+"
EMAIL_FIELD = Field(str, min_len=3, max_len=254, pattern=EMAIL)
FULL_NAME_FIELD = Field(str, nullable=True, max_len=200)
PASSWORD_FIELD = Field(str, required=True, min_len=8, max_len=1024)

REGISTER = {
    "username": Field(str, required=True, pattern=USERNAME),
    "email": Field(str, required=True, min_len=3, max_len=254, pattern=EMAIL),
    "password": PASSWORD_FIELD,
    "full_name": FULL_NAME_FIELD,
}
LOGIN = {
    "username": Field(str, required=True, min_len=1, max_len=254),
    "password": Field(str, required=True, min_len=1, max_len=1024),
}
# OAuth2 password-flow forms also send these; they are accepted and ignored.
LOGIN_FORM = {**LOGIN, **{k: Field(str) for k in ("grant_type", "scope", "client_id")}}
ME = {"email": EMAIL_FIELD, "full_name": FULL_NAME_FIELD}
PASSWORD = {
    "current_password": Field(str, required=True, max_len=1024),
    "new_password": PASSWORD_FIELD,
}


def accounts(request: web.Request) -> Accounts:
    return request.app[keys.services]["accounts"]


def _now(request: web.Request) -> float:
    return request.app[keys.clock].now()


def _login_json(login: Login, ttl: int) -> dict:
    return {
        "access_token": login.token,
        "token_type": "bearer",
        "expires_in": ttl,
        "expires_at": iso(login.expires_at),
        "session_id": login.session_id,
        "user": user_json(login.user),
    }


def _per_ip(request: web.Request) -> None:
    accounts(request).ip_limiter.hit(request.remote, _now(request))


async def register(request: web.Request) -> web.Response:
    _per_ip(request)
    body = validate(await read_json(request), REGISTER)
    row = await accounts(request).register(
        body["username"], body["email"], body["password"], body.get("full_name"), _now(request)
    )
    return json_response(user_json(row), status=201)


async def login(request: web.Request) -> web.Response:
    _per_ip(request)
    raw = await read_json_or_form(request)
    is_form = request.content_type == "application/x-www-form-urlencoded"
    body = validate(raw, LOGIN_FORM if is_form else LOGIN)
    service = accounts(request)
    result = await service.login(
        body["username"],
        body["password"],
        _now(request),
        request.headers.get("User-Agent"),
        request.remote,
    )
    return json_response(_login_json(result, service.settings.session_ttl))


# /me is the hot path: the serialized user per token-check row (see me()); bounded by clearing
# when full.
_ME_BODIES: dict[int, tuple[object, bytes]] = {}
_ME_MAX = 4096


async def me(request: web.Request) -> web.Response:
    await require_user(request)
    row = request[user_row_key]
    # The token check's row is reused while the database is unchanged (reynard/readcache.py),
    # so the same row object means the same body. The entry keeps the row alive, so its id
    # cannot be taken by another object while the entry exists.
    cached = _ME_BODIES.get(id(row))
    if cached is None or cached[0] is not row:
        if len(_ME_BODIES) >= _ME_MAX:
            _ME_BODIES.clear()
        cached = _ME_BODIES[id(row)] = (row, dumps(user_json(row)).encode("utf-8"))
    return web.Response(body=cached[1], content_type="application/json", charset="utf-8")


async def update_me(request: web.Request) -> web.Response:
    principal = await require_user(request)
    body = validate(await read_json(request), ME)
    row = await accounts(request).update(principal.user_id, body, _now(request))
    return json_response(user_json(row))


async def change_password(request: web.Request) -> web.Response:
    principal = await require_user(request)
    body = validate(await read_json(request), PASSWORD)
    await accounts(request).change_password(
        principal.user_id,
        principal.session_id,
        body["current_password"],
        body["new_password"],
        _now(request),
    )
    return no_content()


async def logout(request: web.Request) -> web.Response:
    principal = await require_user(request)
    await accounts(request).sessions.revoke(principal.user_id, principal.session_id, _now(request))
    return no_content()


async def logout_all(request: web.Request) -> web.Response:
    principal = await require_user(request)
    await accounts(request).sessions.revoke_all(principal.user_id, _now(request))
    return no_content()


async def refresh(request: web.Request) -> web.Response:
    _per_ip(request)
    principal = await require_user(request)
    service = accounts(request)
    result = await service.refresh(
        principal.user_id,
        principal.session_id,
        _now(request),
        request.headers.get("User-Agent"),
        request.remote,
    )
    return json_response(_login_json(result, service.settings.session_ttl))


async def list_sessions(request: web.Request) -> web.Response:
    principal = await require_user(request)
    limit = query_int(request.query, "limit", 50, 1, 100)
    after = users_views.cursor(request)
    rows = await accounts(request).sessions.live(principal.user_id, _now(request), limit, after)
    items = [
        {
            "id": row["id"],
            "created_at": iso(row["created_at"]),
            "last_seen_at": iso(row["last_seen_at"]),
            "expires_at": iso(row["expires_at"]),
            "user_agent": row["user_agent"],
            "ip": row["ip"],
            "current": row["id"] == principal.session_id,
        }
        for row in rows
    ]
    nxt = str(rows[-1]["id"]) if len(rows) == limit else None
    return json_response({"items": items, "next": nxt})


async def delete_session(request: web.Request) -> web.Response:
    principal = await require_user(request)
    session_id = int_param(request, "session_id")
    await accounts(request).sessions.revoke(principal.user_id, session_id, _now(request))
    return no_content()


async def users(request: web.Request) -> web.Response:
    return await users_views.list_users(request)


def _schema(fields: dict[str, Field]) -> dict:
    types = {str: "string", bool: "boolean", int: "integer"}
    props = {}
    for name, spec in fields.items():
        prop: dict = {"type": [types[spec.kind], "null"] if spec.nullable else types[spec.kind]}
        if spec.min_len is not None:
            prop["minLength"] = spec.min_len
        if spec.max_len is not None:
            prop["maxLength"] = spec.max_len
        props[name] = prop
    schema = {"type": "object", "properties": props, "additionalProperties": False}
    needed = [n for n, s in fields.items() if s.required]
    if needed:
        schema["required"] = needed
    return schema


async def _service(app: web.Application) -> AsyncIterator[None]:
    service = Accounts(app[keys.pool], app[keys.settings])
    await service.start()
    app[keys.services]["accounts"] = service
    try:
        yield
    finally:
        service.close()


def setup(app: web.Application) -> None:
    add_routes(
        app,
        [
            Route(
                "POST",
                "/api/auth/register",
                register,
                "Create an account",
                body=_schema(REGISTER),
                status=201,
            ),
            Route(
                "POST",
                "/api/auth/login",
                login,
                "Sign in (JSON or form); returns a bearer token",
                body=_schema(LOGIN),
            ),
            Route("GET", "/api/auth/me", me, "The signed-in user", auth="user"),
            Route(
                "PATCH",
                "/api/auth/me",
                update_me,
                "Change own email or full name",
                auth="user",
                body=_schema(ME),
            ),
            Route(
                "POST",
                "/api/auth/password",
                change_password,
                "Change password; other sessions end",
                auth="user",
                body=_schema(PASSWORD),
                status=204,
            ),
            Route("POST", "/api/auth/logout", logout, "End this session", auth="user", status=204),
            Route(
                "POST",
                "/api/auth/logout-all",
                logout_all,
                "End all own sessions",
                auth="user",
                status=204,
            ),
            Route(
                "POST",
                "/api/auth/refresh",
                refresh,
                "New token and session; the old one ends",
                auth="user",
            ),
            Route("GET", "/api/auth/sessions", list_sessions, "Own live sessions", auth="user"),
            Route(
                "DELETE",
                "/api/auth/sessions/{session_id}",
                delete_session,
                "End one own session",
                auth="user",
                status=204,
            ),
            Route("GET", "/api/auth/users", users, "All users (same as /api/users)", auth="admin"),
        ],
    )
    app.cleanup_ctx.append(_service)
