"""/api/cache: each signed-in user's own Redis-like keyspace (HTTP only; rules in reynard.cache).

Keys arrive percent-encoded in the path, so a key holding '/' is sent as %2F.
"""

from __future__ import annotations

import base64
import binascii
from json.encoder import encode_basestring
from typing import AsyncIterator

from aiohttp import web

from .. import keys
from ..cache import MAX_TTL, Cache, Entry, check_key, user_namespace
from ..clock import iso
from ..errors import field_error, not_found, validation
from ..routing import Route, add_routes
from ..validation import INT64_MAX, INT64_MIN, Field, query_int, validate
from .common import json_response, no_content, read_json
from .guards import require_user

_TTL = {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_TTL}
PUT_FIELDS = {
    "value": Field(None, required=True, nullable=True),
    "ttl": Field(int, nullable=True, lo=1, hi=MAX_TTL),
    "nx": Field(bool),
    "xx": Field(bool),
    "keepttl": Field(bool),
}
PUT_BODY = {
    "type": "object",
    "required": ["value"],
    "additionalProperties": False,
    "properties": {
        "value": {"description": "any JSON value, at most 64 KiB as compact JSON"},
        "ttl": {**_TTL, "description": "seconds until the key expires; null or absent = never"},
        "nx": {"type": "boolean", "description": "only set when the key is absent"},
        "xx": {"type": "boolean", "description": "only set when the key is present"},
        "keepttl": {"type": "boolean", "description": "keep a present key's expiry"},
    },
}
INCR_FIELDS = {"by": Field(int)}
INCR_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"by": {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}},
}
EXPIRE_FIELDS = {"ttl": Field(int, required=True, nullable=True, lo=1, hi=MAX_TTL)}
EXPIRE_BODY = {
    "type": "object",
    "required": ["ttl"],
    "additionalProperties": False,
    "properties": {"ttl": {**_TTL, "description": "seconds from now; null = keep forever"}},
}


def _cache(request: web.Request) -> Cache:
    return request.app[keys.services]["cache"]


def _entry_response(entry: Entry) -> web.Response:
    # The hot path of GET and PUT. The stored value is already compact JSON, so it is spliced in
    # rather than parsed and dumped again; the key goes through json's own string escaper.
    ttl = "null" if entry.ttl is None else str(entry.ttl)
    expires_at = "null" if entry.expires_at is None else f'"{iso(entry.expires_at)}"'
    text = (
        f'{{"key":{encode_basestring(entry.key)},"value":{entry.raw},'
        f'"ttl":{ttl},"expires_at":{expires_at}}}'
    )
    return web.Response(text=text, content_type="application/json", charset="utf-8")


def _expiry(entry: Entry) -> dict:
    return {"key": entry.key, "ttl": entry.ttl, "expires_at": iso(entry.expires_at)}


def _cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).rstrip(b"=").decode("ascii")


def _after(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")
        return check_key(key, "after")
    except (binascii.Error, ValueError):
        raise field_error("after", "is not a cursor from this list") from None


async def get_entry(request: web.Request) -> web.Response:
    principal = await require_user(request)
    key = check_key(request.match_info["key"])
    entry = await _cache(request).get(user_namespace(principal.user_id), key)
    if entry is None:
        raise not_found("key")
    return _entry_response(entry)


async def put_entry(request: web.Request) -> web.Response:
    principal = await require_user(request)
    body = validate(await read_json(request), PUT_FIELDS)
    value = body.pop("value")
    entry = await _cache(request).set(
        user_namespace(principal.user_id), request.match_info["key"], value, **body
    )
    return _entry_response(entry)


async def delete_entry(request: web.Request) -> web.Response:
    principal = await require_user(request)
    if not await _cache(request).delete(
        user_namespace(principal.user_id), request.match_info["key"]
    ):
        raise not_found("key")
    return no_content()


async def incr(request: web.Request) -> web.Response:
    principal = await require_user(request)
    # No body at all (whatever its Content-Type says) means by = 1.
    body = validate(await read_json(request) if request.body_exists else {}, INCR_FIELDS)
    key = request.match_info["key"]
    value = await _cache(request).incr(user_namespace(principal.user_id), key, body.get("by", 1))
    return json_response({"key": key, "value": value})


async def expire(request: web.Request) -> web.Response:
    principal = await require_user(request)
    body = validate(await read_json(request), EXPIRE_FIELDS)
    entry = await _cache(request).expire(
        user_namespace(principal.user_id), request.match_info["key"], body["ttl"]
    )
    return json_response(_expiry(entry))


async def list_keys(request: web.Request) -> web.Response:
    principal = await require_user(request)
    query = request.query
    limit = query_int(query, "limit", 50, 1, 100)
    entries, last = await _cache(request).list(
        user_namespace(principal.user_id),
        query.get("prefix", ""),
        after=_after(query.get("after")),
        limit=limit,
    )
    return json_response(
        {"items": [_expiry(e) for e in entries], "next": None if last is None else _cursor(last)}
    )


async def delete_prefix(request: web.Request) -> web.Response:
    principal = await require_user(request)
    prefix = request.query.get("prefix")
    if prefix is None:
        # Deleting everything by leaving out a parameter is too easy an accident.
        raise validation(
            [{"field": "prefix", "message": "is required; send prefix= to delete every key"}]
        )
    deleted = await _cache(request).delete_prefix(user_namespace(principal.user_id), prefix)
    return json_response({"deleted": deleted})


async def _service(app: web.Application) -> AsyncIterator[None]:
    app[keys.services]["cache"] = Cache(app[keys.pool], app[keys.clock])
    yield


def setup(app: web.Application) -> None:
    add_routes(
        app,
        [
            Route("GET", "/api/cache", list_keys, "List own keys by prefix", auth="user"),
            Route(
                "DELETE",
                "/api/cache",
                delete_prefix,
                "Delete own keys by prefix (prefix= deletes all)",
                auth="user",
            ),
            Route("GET", "/api/cache/{key}", get_entry, "Read a key", auth="user"),
            Route(
                "PUT",
                "/api/cache/{key}",
                put_entry,
                "Set a key (ttl, nx, xx, keepttl)",
                auth="user",
                body=PUT_BODY,
            ),
            Route(
                "DELETE", "/api/cache/{key}", delete_entry, "Delete a key", auth="user", status=204
            ),
            Route(
                "POST",
                "/api/cache/{key}/incr",
                incr,
                "Add to an integer atomically",
                auth="user",
                body=INCR_BODY,
            ),
            Route(
                "POST",
                "/api/cache/{key}/expire",
                expire,
                "Set or remove a key's TTL",
                auth="user",
                body=EXPIRE_BODY,
            ),
        ],
    )
    app.cleanup_ctx.append(_service)
