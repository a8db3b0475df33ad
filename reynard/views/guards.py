"""Who is calling: the bearer token check, done once per request and cached on it."""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from aiohttp import web

from .. import keys
from ..errors import ApiError, forbidden


class Principal(NamedTuple):
    """Who is calling (a tuple: cheap to make on every request)."""

    user_id: int
    session_id: int
    username: str
    is_admin: bool


principal_key: web.RequestKey[Principal] = web.RequestKey("principal")
# The user row read by the same query (for /me, without a second read).
user_row_key: web.RequestKey[sqlite3.Row] = web.RequestKey("user_row")


def _unauthenticated(code: str, detail: str) -> ApiError:
    return ApiError(401, code, detail, headers={"WWW-Authenticate": "Bearer"})


def bearer_token(request: web.Request) -> str:
    """The token from ``Authorization: Bearer <token>``; 401 when missing or malformed."""
    header = request.headers.get("Authorization")
    if not header:
        raise _unauthenticated("not_authenticated", "send Authorization: Bearer <token>")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthenticated("invalid_token", "the Authorization header must be Bearer <token>")
    return token


async def require_user(request: web.Request) -> Principal:
    """The signed-in caller, or 401 (not_authenticated / invalid_token)."""
    principal = request.get(principal_key)
    if principal is not None:
        return principal
    token = bearer_token(request)
    app = request.app
    row = await app[keys.services]["accounts"].sessions.authenticate(token, app[keys.clock].now())
    if row is None:
        raise _unauthenticated("invalid_token", "the token is invalid or has expired")
    principal = Principal(row["id"], row["session_id"], row["username"], bool(row["is_admin"]))
    request[principal_key] = principal
    request[user_row_key] = row
    return principal


async def require_admin(request: web.Request) -> Principal:
    """The signed-in caller if an admin; 401 without a valid token, 403 otherwise."""
    principal = await require_user(request)
    if not principal.is_admin:
        raise forbidden("this needs an admin")
    return principal
