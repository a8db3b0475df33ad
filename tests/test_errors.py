"""Every failure leaves as the contract's JSON error shape, with the right status."""

from __future__ import annotations

import sqlite3

import pytest
from aiohttp import web

from reynard.app import create_app
from reynard.errors import ApiError
from reynard.routing import Route, add_routes
from reynard.validation import Field, validate
from reynard.views.common import json_response, read_json

SCHEMA = {"name": Field(str, required=True, min_len=1, max_len=10), "n": Field(int, lo=0, hi=5)}


async def echo(request: web.Request) -> web.Response:
    return json_response(validate(await read_json(request), SCHEMA))


async def crash(request: web.Request) -> web.Response:
    raise KeyError("secret internals")


async def locked(request: web.Request) -> web.Response:
    raise sqlite3.OperationalError("database is locked")


async def teapot(request: web.Request) -> web.Response:
    raise ApiError(409, "some_conflict", "a conflict")


@pytest.fixture
async def api(aiohttp_client, settings, clock):
    app = create_app(settings, clock=clock)
    add_routes(
        app,
        [
            Route("POST", "/t/echo", echo, "echo"),
            Route("GET", "/t/crash", crash, "x"),
            Route("GET", "/t/locked", locked, "x"),
            Route("GET", "/t/conflict", teapot, "x"),
        ],
    )
    return await aiohttp_client(app)


async def _error(resp, status: int, code: str) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert body["code"] == code and isinstance(body["detail"], str) and body["detail"]
    assert "Server" not in resp.headers
    return body


async def test_unknown_route_is_json_404(api):
    await _error(await api.get("/api/nothing-here"), 404, "not_found")


async def test_wrong_method_is_json_405_with_allow(api):
    resp = await api.delete("/api/health/live")
    await _error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"{",
        b'{"name": "a",}',
        b"\xff\xfe{}",
        b'{"name": NaN}',
        b'{"n": Infinity}',
        b'{"n": -Infinity}',
        b'{"n": 9223372036854775808}',
        b'{"n": -9223372036854775809}',
        b"[" * 33 + b"]" * 33,
        b"[" * 60000,
        b'{"name": "\\ud800"}',
        b"nul\x00l",
    ],
    ids=lambda raw: repr(raw[:24]),
)
async def test_every_kind_of_broken_json_is_400_invalid_json(api, raw):
    resp = await api.post("/t/echo", data=raw, headers={"Content-Type": "application/json"})
    await _error(resp, 400, "invalid_json")


async def test_nesting_of_exactly_32_levels_is_accepted_by_the_parser(api):
    raw = b'{"name": "a", "n": 1, "x": ' + b"[" * 31 + b"]" * 31 + b"}"
    resp = await api.post("/t/echo", data=raw, headers={"Content-Type": "application/json"})
    body = await _error(resp, 422, "validation_error")  # parsed; "x" is an unknown field
    assert body["errors"] == [{"field": "x", "message": "is not a known field"}]


async def test_body_over_64_kib_is_413(api):
    resp = await api.post(
        "/t/echo", data=b'"' + b"a" * 70000 + b'"', headers={"Content-Type": "application/json"}
    )
    await _error(resp, 413, "payload_too_large")


async def test_non_json_content_type_is_415(api):
    resp = await api.post("/t/echo", data=b"name=a", headers={"Content-Type": "text/plain"})
    await _error(resp, 415, "unsupported_media_type")


async def test_validation_lists_every_bad_field(api):
    resp = await api.post("/t/echo", json={"n": "7", "extra": 1})
    body = await _error(resp, 422, "validation_error")
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert fields == {
        "name": "is required",
        "n": "must be an integer",
        "extra": "is not a known field",
    }


async def test_validation_checks_ranges_and_types_not_truthiness(api):
    resp = await api.post("/t/echo", json={"name": "a", "n": True})
    body = await _error(resp, 422, "validation_error")
    assert body["errors"] == [{"field": "n", "message": "must be an integer"}]
    resp = await api.post("/t/echo", json={"name": "a", "n": 6})
    await _error(resp, 422, "validation_error")
    resp = await api.post("/t/echo", json={"name": "a", "n": 5})
    assert resp.status == 200 and await resp.json() == {"name": "a", "n": 5}


async def test_unexpected_exception_is_500_without_internals(api):
    resp = await api.get("/t/crash")
    body = await _error(resp, 500, "internal_error")
    assert "secret" not in await resp.text() and "Traceback" not in await resp.text()
    assert resp.headers["X-Request-ID"] in body["detail"]


async def test_a_locked_database_is_503_with_retry_after(api):
    resp = await api.get("/t/locked")
    await _error(resp, 503, "unavailable")
    assert int(resp.headers["Retry-After"]) >= 1


async def test_api_errors_keep_their_code(api):
    await _error(await api.get("/t/conflict"), 409, "some_conflict")


async def test_trailing_slash_is_optional(api):
    for path in ("/api/health/live", "/api/health/live/"):
        resp = await api.get(path)
        assert resp.status == 200 and await resp.json() == {"status": "pass"}


async def test_cors_preflight_from_an_allowed_origin_is_204_and_others_get_no_cors(api):
    resp = await api.options(
        "/api/health/live",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
    resp = await api.options(
        "/api/health/live",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in resp.headers
    resp = await api.get("/api/health/live", headers={"Origin": "http://evil.example"})
    assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers


async def test_request_id_is_echoed_or_made(api):
    resp = await api.get("/api/health/live", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    resp = await api.get("/api/health/live", headers={"X-Request-ID": "bad id\twith junk"})
    assert resp.headers["X-Request-ID"] != "bad id\twith junk"
