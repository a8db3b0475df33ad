"""The one middleware: request id, CORS, timing, the request log, metrics observers, and the
one place where every failure becomes the contract's JSON error shape."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time

from aiohttp import web
from aiohttp.web_response import StreamResponse

from . import keys
from .errors import ApiError, sqlite_unavailable
from .requestlog import RequestLog
from .views.common import json_response

log = logging.getLogger("reynard.http")
_RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Request ids: a random per-process prefix and a counter — unique, and cheap to make.
_RID_PREFIX = os.urandom(4).hex()
_RID_COUNTER = itertools.count(1)
_PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Request-ID",
    "Access-Control-Max-Age": "600",
}
_HTTP_CODES = {
    400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 408: "request_timeout",
    413: "payload_too_large", 414: "uri_too_long", 415: "unsupported_media_type",
    429: "rate_limited", 431: "headers_too_large",
}  # fmt: skip
_HTTP_DETAILS = {404: "no route matches this path", 405: "this method is not allowed here"}


def _error_response(error: ApiError, request_id: str) -> web.Response:
    headers = {"X-Request-ID": request_id, **error.headers}
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return json_response(error.body(), status=error.status, headers=headers)


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    code = _HTTP_CODES.get(exc.status, "http_error")
    detail = _HTTP_DETAILS.get(exc.status) or exc.reason.lower()
    headers = {}
    if exc.status == 405 and "Allow" in exc.headers:
        headers["Allow"] = exc.headers["Allow"]
    return ApiError(exc.status, code, detail, headers=headers)


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical.rstrip("/") or "/"


async def _dispatch(request: web.Request, handler, rid: str) -> StreamResponse:
    """Run the handler; turn whatever it raises into a JSON error response."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _error_response(exc, rid)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_response(_from_http_exception(exc), rid)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        mapped = sqlite_unavailable(exc)
        if mapped is not None:
            log.warning("database unavailable rid=%s: %s", rid, exc)
            return _error_response(mapped, rid)
        log.exception("unhandled error rid=%s", rid)
        return _error_response(
            ApiError(500, "internal_error",
                     f"something went wrong on our side; quote request id {rid}"), rid)  # fmt: skip


def make_middleware(cors_origins: tuple[str, ...], observers: list, request_log: RequestLog):
    """The one middleware, with what it needs bound once rather than looked up per request."""
    allowed_origins = frozenset(cors_origins)

    @web.middleware
    async def handle(request: web.Request, handler) -> StreamResponse:
        started = time.perf_counter()
        rid = request.headers.get("X-Request-ID")
        if rid is None or not _RID.match(rid):
            rid = f"{_RID_PREFIX}-{next(_RID_COUNTER):x}"
        request[keys.request_id] = rid
        origin = request.headers.get("Origin")
        allowed = origin is not None and origin.rstrip("/") in allowed_origins
        status = 500
        try:
            if (
                allowed
                and request.method == "OPTIONS"
                and "Access-Control-Request-Method" in request.headers
            ):
                response: StreamResponse = web.Response(status=204, headers=_PREFLIGHT)
            else:
                response = await _dispatch(request, handler, rid)
            status = response.status
            headers = response.headers
            headers["X-Request-ID"] = rid
            if allowed:
                headers["Access-Control-Allow-Origin"] = origin
                headers["Access-Control-Expose-Headers"] = "Retry-After, X-Request-ID"
                headers["Vary"] = "Origin"
            return response
        finally:
            elapsed = time.perf_counter() - started
            method = request.method
            if observers:
                route = _route_name(request)
                for observer in observers:
                    observer(route, method, status, elapsed)
            if request_log.enabled:
                request_log.add(method, request.path, status, elapsed * 1000, rid)

    return handle


def hide_server_header() -> None:
    """aiohttp always adds ``Server: Python/x aiohttp/y``; drop it after its headers are set."""
    if getattr(StreamResponse._prepare_headers, "_reynard", False):
        return
    original = StreamResponse._prepare_headers

    async def _prepare_headers(self: StreamResponse) -> None:
        await original(self)
        self._headers.popall("Server", None)

    _prepare_headers._reynard = True  # type: ignore[attr-defined]
    StreamResponse._prepare_headers = _prepare_headers  # type: ignore[method-assign]
