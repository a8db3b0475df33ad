"""/api/users: admin-only user management."""

from __future__ import annotations

from aiohttp import web

from .. import keys
from ..accounts import Accounts, user_json
from ..errors import field_error
from ..routing import Route, add_routes
from ..validation import Field, query_int, validate
from .common import int_param, json_response, no_content, read_json
from .guards import require_admin

PATCH = {
    "email": Field(
        str, min_len=3, max_len=254, pattern=r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+"
    ),
    "full_name": Field(str, nullable=True, max_len=200),
    "is_active": Field(bool),
    "is_admin": Field(bool),
}


def _accounts(request: web.Request) -> Accounts:
    return request.app[keys.services]["accounts"]


def cursor(request: web.Request) -> int:
    """The ``after`` keyset cursor (an id as text); 0 when absent."""
    raw = request.query.get("after", "")
    if not raw:
        return 0
    if not raw.isdigit() or len(raw) > 19:
        raise field_error("after", "is not a cursor this API returned")
    return int(raw)


async def list_users(request: web.Request) -> web.Response:
    await require_admin(request)
    limit = query_int(request.query, "limit", 50, 1, 100)
    after = cursor(request)
    prefix = request.query.get("q") or None
    if prefix is not None and len(prefix) > 254:
        raise field_error("q", "must be at most 254 characters")
    rows = await _accounts(request).page(limit, after, prefix)
    nxt = str(rows[-1]["id"]) if len(rows) == limit else None
    return json_response({"items": [user_json(row) for row in rows], "next": nxt})


async def get_user(request: web.Request) -> web.Response:
    await require_admin(request)
    return json_response(user_json(await _accounts(request).get(int_param(request, "user_id"))))


async def update_user(request: web.Request) -> web.Response:
    await require_admin(request)
    user_id = int_param(request, "user_id")
    body = validate(await read_json(request), PATCH)
    row = await _accounts(request).update(user_id, body, request.app[keys.clock].now())
    return json_response(user_json(row))


async def delete_user(request: web.Request) -> web.Response:
    await require_admin(request)
    await _accounts(request).delete(int_param(request, "user_id"))
    return no_content()


PATCH_SCHEMA = {
    "type": "object",
    "properties": {
        "email": {"type": "string", "minLength": 3, "maxLength": 254},
        "full_name": {"type": ["string", "null"], "maxLength": 200},
        "is_active": {"type": "boolean"},
        "is_admin": {"type": "boolean"},
    },
    "additionalProperties": False,
}


def setup(app: web.Application) -> None:
    """Routes only; the accounts service is built by reynard.views.auth.setup."""
    add_routes(
        app,
        [
            Route(
                "GET",
                "/api/users",
                list_users,
                "Users by id; q = username/email prefix",
                auth="admin",
            ),
            Route("GET", "/api/users/{user_id}", get_user, "One user", auth="admin"),
            Route(
                "PATCH",
                "/api/users/{user_id}",
                update_user,
                "Change a user; deactivation ends their sessions",
                auth="admin",
                body=PATCH_SCHEMA,
            ),
            Route(
                "DELETE",
                "/api/users/{user_id}",
                delete_user,
                "Delete a user with their sessions and cache",
                auth="admin",
                status=204,
            ),
        ],
    )
