"""/api/cache over HTTP: set options, expiry, incr, listing, limits, isolation, auth."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from reynard import keys
from reynard.cache import MAX_TTL
from reynard.clock import iso

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


@pytest.fixture
async def auth(make_user):
    token, _ = await make_user()
    return {"Authorization": f"Bearer {token}"}


async def put(client, auth, key, body, status=200):
    resp = await client.put(f"/api/cache/{key}", json=body, headers=auth)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def get(client, auth, key, status=200):
    resp = await client.get(f"/api/cache/{key}", headers=auth)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def call(client, method, path, auth, body=None, status=200):
    kwargs = {} if body is None else {"json": body}
    resp = await client.request(method, path, headers=auth, **kwargs)
    assert resp.status == status, await resp.text()
    return await resp.json() if resp.status != 204 else None


# ---- set and get ---------------------------------------------------------------------------
async def test_put_then_get_returns_the_value_without_ttl(client, auth):
    body = await put(client, auth, "greeting", {"value": "hello"})
    assert body == {"key": "greeting", "value": "hello", "ttl": None, "expires_at": None}
    assert await get(client, auth, "greeting") == body


async def test_get_of_a_missing_key_is_404(client, auth):
    body = await get(client, auth, "nothing", status=404)
    assert body["code"] == "not_found"


async def test_ttl_counts_down_in_whole_seconds_and_the_key_expires(client, auth, clock):
    start = clock.now()
    body = await put(client, auth, "k", {"value": 1, "ttl": 10})
    assert body["ttl"] == 10 and body["expires_at"] == iso(start + 10)
    clock.advance(3.5)
    assert (await get(client, auth, "k"))["ttl"] == 7  # 6.5 s left, rounded up
    clock.advance(6.4)
    assert (await get(client, auth, "k"))["ttl"] == 1
    clock.advance(0.1)
    assert (await get(client, auth, "k", status=404))["code"] == "not_found"


async def test_an_expired_key_is_absent_to_every_operation(client, auth, clock):
    await put(client, auth, "old", {"value": 5, "ttl": 1})
    clock.advance(1)
    await get(client, auth, "old", status=404)
    listing = await call(client, "GET", "/api/cache", auth)
    assert listing["items"] == []
    await call(client, "POST", "/api/cache/old/expire", auth, {"ttl": 5}, status=404)
    await put(client, auth, "old", {"value": 1, "xx": True}, status=404)
    await call(client, "DELETE", "/api/cache/old", auth, status=404)

    await put(client, auth, "old", {"value": 5, "ttl": 1})
    clock.advance(2)
    incr = await call(client, "POST", "/api/cache/old/incr", auth, {"by": 3})
    assert incr == {"key": "old", "value": 3}  # counted from 0, not from the stale 5
    assert (await get(client, auth, "old"))["ttl"] is None

    await put(client, auth, "gone", {"value": "x", "ttl": 1})
    clock.advance(1)
    body = await put(client, auth, "gone", {"value": "y", "nx": True})
    assert body["value"] == "y"


async def test_plain_put_replaces_the_value_and_clears_the_ttl(client, auth):
    await put(client, auth, "k", {"value": 1, "ttl": 100})
    body = await put(client, auth, "k", {"value": 2})
    assert body["value"] == 2 and body["ttl"] is None and body["expires_at"] is None


async def test_nx_on_a_live_key_is_409_and_keeps_the_old_value(client, auth):
    await put(client, auth, "k", {"value": "first", "nx": True})
    body = await put(client, auth, "k", {"value": "second", "nx": True}, status=409)
    assert body["code"] == "key_exists"
    assert (await get(client, auth, "k"))["value"] == "first"


async def test_xx_on_a_missing_key_is_404_and_creates_nothing(client, auth):
    body = await put(client, auth, "k", {"value": 1, "xx": True}, status=404)
    assert body["code"] == "not_found"
    await get(client, auth, "k", status=404)
    await put(client, auth, "k", {"value": 1})
    assert (await put(client, auth, "k", {"value": 2, "xx": True}))["value"] == 2


async def test_keepttl_keeps_a_live_keys_expiry(client, auth, clock):
    first = await put(client, auth, "k", {"value": 1, "ttl": 60})
    clock.advance(20)
    body = await put(client, auth, "k", {"value": 2, "keepttl": True})
    assert body["value"] == 2 and body["ttl"] == 40
    assert body["expires_at"] == first["expires_at"]
    fresh = await put(client, auth, "new", {"value": 1, "keepttl": True})
    assert fresh["ttl"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": 1, "nx": True, "xx": True}, "xx"),
        ({"value": 1, "ttl": 5, "keepttl": True}, "keepttl"),
        ({"value": 1, "ttl": 0}, "ttl"),
        ({"value": 1, "ttl": -5}, "ttl"),
        ({"value": 1, "ttl": 1.5}, "ttl"),
        ({"value": 1, "ttl": "10"}, "ttl"),
        ({"value": 1, "ttl": True}, "ttl"),
        ({"value": 1, "ttl": MAX_TTL + 1}, "ttl"),
        ({"value": 1, "nx": "yes"}, "nx"),
        ({"value": 1, "expire": 5}, "expire"),
        ({"ttl": 5}, "value"),
    ],
)
async def test_bad_put_bodies_are_422_naming_the_field(client, auth, body, field):
    error = await put(client, auth, "k", body, status=422)
    assert error["code"] == "validation_error"
    assert field in [e["field"] for e in error["errors"]]
    await get(client, auth, "k", status=404)


async def test_put_accepts_the_longest_ttl_and_a_null_ttl(client, auth):
    assert (await put(client, auth, "k", {"value": 1, "ttl": MAX_TTL}))["ttl"] == MAX_TTL
    assert (await put(client, auth, "k", {"value": 1, "ttl": None}))["ttl"] is None


# ---- values and keys -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        None,
        False,
        True,
        0,
        "",
        [],
        {},
        INT64_MAX,
        INT64_MIN,
        1.0,
        -0.0,
        0.1,
        1.5e300,
        'é 😀 \u2028 "quoted" \\ </script>',
        {"nested": {"list": [1, [2, [3, {"deep": None}]]], "ünï": "cødé"}, "z": 1, "a": 2},
    ],
)
async def test_values_round_trip_exactly(client, auth, value):
    await put(client, auth, "v", {"value": value})
    resp = await client.get("/api/cache/v", headers=auth)
    got = json.loads(await resp.text())["value"]
    # dumps tells 0 from False and 1.0 from 1, and keeps key order.
    assert json.dumps(got) == json.dumps(value)


async def test_a_key_with_a_slash_is_sent_as_percent_2f(client, auth):
    body = await put(client, auth, "a%2Fb", {"value": 1})
    assert body["key"] == "a/b"
    assert (await get(client, auth, "a%2Fb"))["key"] == "a/b"
    assert (await call(client, "POST", "/api/cache/a%2Fb/incr", auth))["value"] == 2
    listing = await call(client, "GET", "/api/cache", auth)
    assert [item["key"] for item in listing["items"]] == ["a/b"]


async def test_unicode_and_reserved_characters_in_keys(client, auth):
    for encoded, key in [("caf%C3%A9", "café"), ("a%20b%3Fc%23d", "a b?c#d"), ("%25", "%")]:
        assert (await put(client, auth, encoded, {"value": key}))["key"] == key
        assert (await get(client, auth, encoded))["value"] == key


@pytest.mark.parametrize("encoded", ["%00", "a%01b", "tab%09", "del%7F", "c1%C2%85"])
async def test_keys_with_control_characters_are_422(client, auth, encoded):
    error = await put(client, auth, encoded, {"value": 1}, status=422)
    assert error["errors"][0]["field"] == "key"
    assert (await get(client, auth, encoded, status=422))["code"] == "validation_error"


async def test_keys_may_hold_512_characters_and_no_more(client, auth):
    await put(client, auth, "é" * 512, {"value": 1})
    error = await put(client, auth, "é" * 513, {"value": 1}, status=422)
    assert error["errors"][0]["field"] == "key"


async def test_a_value_over_64_kib_as_json_is_413(client, auth):
    # 1e5 is re-serialized as 100000.0, so this small body holds a 90 KB value.
    body = '{"value": [' + ",".join(["1e5"] * 10_000) + "]}"
    resp = await client.put(
        "/api/cache/big", data=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert (await resp.json())["code"] == "payload_too_large"
    await get(client, auth, "big", status=404)


async def test_a_body_over_64_kib_is_413(client, auth):
    resp = await client.put("/api/cache/big", json={"value": "x" * 70_000}, headers=auth)
    assert resp.status == 413
    assert (await resp.json())["code"] == "payload_too_large"


async def test_the_largest_value_a_64_kib_body_can_carry_is_stored(client, auth):
    value = "x" * (64 * 1024 - len('{"value":""}'))
    body = json.dumps({"value": value}, separators=(",", ":"))
    assert len(body) == 64 * 1024
    resp = await client.put(
        "/api/cache/k", data=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert resp.status == 200, await resp.text()
    assert (await get(client, auth, "k"))["value"] == value


# ---- incr ----------------------------------------------------------------------------------
async def test_incr_starts_a_missing_key_at_zero_and_adds_by(client, auth):
    assert (await call(client, "POST", "/api/cache/n/incr", auth)) == {"key": "n", "value": 1}
    assert (await call(client, "POST", "/api/cache/n/incr", auth, {"by": 10}))["value"] == 11
    assert (await call(client, "POST", "/api/cache/n/incr", auth, {"by": -20}))["value"] == -9
    assert (await call(client, "POST", "/api/cache/n/incr", auth, {}))["value"] == -8
    assert (await get(client, auth, "n"))["value"] == -8


async def test_incr_keeps_the_keys_ttl(client, auth, clock):
    await put(client, auth, "n", {"value": 1, "ttl": 30})
    clock.advance(10)
    await call(client, "POST", "/api/cache/n/incr", auth)
    assert (await get(client, auth, "n"))["ttl"] == 20


@pytest.mark.parametrize("value", ["5", 1.5, 2.0, 1e5, True, None, [1], {"n": 1}, "x" * 60_000])
async def test_incr_of_a_non_integer_is_409_not_an_integer(client, auth, value):
    await put(client, auth, "n", {"value": value})
    error = await call(client, "POST", "/api/cache/n/incr", auth, status=409)
    assert error["code"] == "not_an_integer"
    assert json.dumps((await get(client, auth, "n"))["value"]) == json.dumps(value)


@pytest.mark.parametrize(("start", "by"), [(INT64_MAX, 1), (INT64_MIN, -1), (1, INT64_MAX)])
async def test_incr_leaving_64_bit_is_409_overflow_and_changes_nothing(client, auth, start, by):
    await put(client, auth, "n", {"value": start})
    error = await call(client, "POST", "/api/cache/n/incr", auth, {"by": by}, status=409)
    assert error["code"] == "overflow"
    assert (await get(client, auth, "n"))["value"] == start


async def test_incr_reaches_the_64_bit_edges_exactly(client, auth):
    await put(client, auth, "n", {"value": INT64_MAX - 1})
    assert (await call(client, "POST", "/api/cache/n/incr", auth))["value"] == INT64_MAX
    await put(client, auth, "m", {"value": 0})
    body = await call(client, "POST", "/api/cache/m/incr", auth, {"by": INT64_MIN})
    assert body["value"] == INT64_MIN


@pytest.mark.parametrize("by", [1.5, "1", True, None])
async def test_incr_by_must_be_an_integer(client, auth, by):
    error = await call(client, "POST", "/api/cache/n/incr", auth, {"by": by}, status=422)
    assert error["errors"][0]["field"] == "by"


async def test_incr_by_outside_64_bit_is_invalid_json(client, auth):
    resp = await client.post(
        "/api/cache/n/incr",
        data=f'{{"by": {INT64_MAX + 1}}}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert resp.status == 400
    assert (await resp.json())["code"] == "invalid_json"


async def test_200_concurrent_incr_give_exactly_200(client, auth):
    statuses = await asyncio.gather(
        *(client.post("/api/cache/hits/incr", headers=auth) for _ in range(200))
    )
    assert [r.status for r in statuses] == [200] * 200
    values = sorted([(await r.json())["value"] for r in statuses])
    assert values == list(range(1, 201))
    assert (await get(client, auth, "hits"))["value"] == 200


# ---- expire --------------------------------------------------------------------------------
async def test_expire_sets_and_removes_a_ttl(client, auth, clock):
    await put(client, auth, "k", {"value": 1})
    body = await call(client, "POST", "/api/cache/k/expire", auth, {"ttl": 30})
    assert body == {"key": "k", "ttl": 30, "expires_at": iso(clock.now() + 30)}
    body = await call(client, "POST", "/api/cache/k/expire", auth, {"ttl": None})
    assert body == {"key": "k", "ttl": None, "expires_at": None}
    clock.advance(31)
    assert (await get(client, auth, "k"))["value"] == 1


async def test_expire_makes_the_key_disappear_when_the_time_comes(client, auth, clock):
    await put(client, auth, "k", {"value": 1})
    await call(client, "POST", "/api/cache/k/expire", auth, {"ttl": 5})
    clock.advance(5)
    await get(client, auth, "k", status=404)


async def test_expire_errors(client, auth):
    await call(client, "POST", "/api/cache/nope/expire", auth, {"ttl": 5}, status=404)
    await put(client, auth, "k", {"value": 1})
    for body in ({}, {"ttl": 0}, {"ttl": "5"}, {"ttl": 5, "x": 1}):
        error = await call(client, "POST", "/api/cache/k/expire", auth, body, status=422)
        assert error["code"] == "validation_error"


# ---- delete, list, delete by prefix --------------------------------------------------------
async def test_delete_removes_a_key_and_a_second_delete_is_404(client, auth):
    await put(client, auth, "k", {"value": 1})
    await call(client, "DELETE", "/api/cache/k", auth, status=204)
    await get(client, auth, "k", status=404)
    await call(client, "DELETE", "/api/cache/k", auth, status=404)


async def test_list_filters_by_prefix_in_key_order(client, auth, clock):
    for key in ["user:2", "user:10", "user:1", "users", "session:1", "user;x"]:
        await put(client, auth, key, {"value": key})
    await put(client, auth, "user:expired", {"value": 1, "ttl": 1})
    await put(client, auth, "user:3", {"value": 1, "ttl": 100})
    clock.advance(1)
    body = await call(client, "GET", "/api/cache?prefix=user:", auth)
    assert body["next"] is None
    assert [i["key"] for i in body["items"]] == ["user:1", "user:10", "user:2", "user:3"]
    assert body["items"][3] == {"key": "user:3", "ttl": 99, "expires_at": iso(clock.now() + 99)}
    everything = await call(client, "GET", "/api/cache/", auth)
    assert len(everything["items"]) == 7


async def test_list_pages_with_an_opaque_cursor(client, auth):
    keys_ = [f"k{i:02d}" for i in range(7)] + ["k/é"]
    for key in keys_:
        await put(client, auth, key.replace("/", "%2F"), {"value": 1})
    seen, after = [], None
    while True:
        path = "/api/cache?prefix=k&limit=3" + (f"&after={after}" if after else "")
        body = await call(client, "GET", path, auth)
        assert len(body["items"]) <= 3
        seen += [i["key"] for i in body["items"]]
        after = body["next"]
        if after is None:
            break
    assert seen == sorted(keys_)


async def test_list_rejects_a_bad_limit_or_cursor(client, auth):
    for query in ("limit=0", "limit=101", "limit=x", "after=%%%", "after=AA", "prefix=%01"):
        error = await call(client, "GET", f"/api/cache?{query}", auth, status=422)
        assert error["code"] == "validation_error"


async def test_delete_by_prefix_needs_the_parameter(client, auth):
    await put(client, auth, "k", {"value": 1})
    error = await call(client, "DELETE", "/api/cache", auth, status=422)
    assert error["errors"][0]["field"] == "prefix"
    await get(client, auth, "k")


async def test_delete_by_prefix_removes_only_matching_keys(client, auth, clock):
    for key in ["a:1", "a:2", "a;", "b"]:
        await put(client, auth, key, {"value": 1})
    await put(client, auth, "a:old", {"value": 1, "ttl": 1})
    clock.advance(1)
    assert await call(client, "DELETE", "/api/cache?prefix=a:", auth) == {"deleted": 2}
    left = await call(client, "GET", "/api/cache", auth)
    assert [i["key"] for i in left["items"]] == ["a;", "b"]
    assert await call(client, "DELETE", "/api/cache?prefix=", auth) == {"deleted": 2}
    assert (await call(client, "GET", "/api/cache", auth))["items"] == []


# ---- quota ---------------------------------------------------------------------------------
async def test_quota_counts_live_keys_and_only_blocks_new_ones(client, auth, clock):
    client.app[keys.services]["cache"].quota = 3
    await put(client, auth, "a", {"value": 1})
    await put(client, auth, "b", {"value": 1})
    await put(client, auth, "c", {"value": 1, "ttl": 5})
    error = await put(client, auth, "d", {"value": 1}, status=409)
    assert error["code"] == "quota_exceeded"
    error = await call(client, "POST", "/api/cache/d/incr", auth, status=409)
    assert error["code"] == "quota_exceeded"
    await put(client, auth, "a", {"value": 2})  # overwriting is not a new key
    await call(client, "POST", "/api/cache/a/incr", auth)
    clock.advance(5)  # c expires and stops counting
    await put(client, auth, "d", {"value": 1})
    await call(client, "DELETE", "/api/cache/a", auth, status=204)
    await call(client, "POST", "/api/cache/e/incr", auth)


async def test_quota_is_per_user(client, auth, make_user):
    client.app[keys.services]["cache"].quota = 1
    await put(client, auth, "a", {"value": 1})
    other, _ = await make_user()
    await put(client, {"Authorization": f"Bearer {other}"}, "a", {"value": 1})


# ---- users and auth ------------------------------------------------------------------------
async def test_users_cannot_see_or_touch_each_others_keys(client, make_user):
    token_a, _ = await make_user()
    token_b, _ = await make_user()
    a, b = {"Authorization": f"Bearer {token_a}"}, {"Authorization": f"Bearer {token_b}"}
    await put(client, a, "shared", {"value": "a's"})
    await get(client, b, "shared", status=404)
    await call(client, "DELETE", "/api/cache/shared", b, status=404)
    await call(client, "POST", "/api/cache/shared/expire", b, {"ttl": 1}, status=404)
    await put(client, b, "shared", {"value": 1, "xx": True}, status=404)
    assert (await call(client, "GET", "/api/cache", b))["items"] == []
    assert await call(client, "DELETE", "/api/cache?prefix=", b) == {"deleted": 0}
    await put(client, b, "shared", {"value": 0})
    await call(client, "POST", "/api/cache/shared/incr", b)
    assert (await get(client, a, "shared"))["value"] == "a's"
    assert (await get(client, b, "shared"))["value"] == 1


ROUTES = [
    ("GET", "/api/cache"),
    ("DELETE", "/api/cache?prefix="),
    ("GET", "/api/cache/k"),
    ("PUT", "/api/cache/k"),
    ("DELETE", "/api/cache/k"),
    ("POST", "/api/cache/k/incr"),
    ("POST", "/api/cache/k/expire"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_cache_route_is_401_without_a_token(client, method, path):
    resp = await client.request(method, path, json={"value": 1, "ttl": 5})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert (await resp.json())["code"] == "not_authenticated"


async def test_a_users_keys_are_stored_under_their_id_and_go_with_them(client, make_user, db_path):
    token, user = await make_user()
    await put(client, {"Authorization": f"Bearer {token}"}, "k", {"value": 1})
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        row = conn.execute("SELECT namespace, user_id, value FROM cache_entries").fetchone()
        assert row == (f"u:{user['id']}", user["id"], "1")
        with conn:
            conn.execute("DELETE FROM users WHERE id = ?", (user["id"],))
        assert conn.execute("SELECT count(*) FROM cache_entries").fetchone()[0] == 0
    finally:
        conn.close()


async def test_the_openapi_document_lists_the_cache_routes(client):
    doc = await (await client.get("/api/openapi.json")).json()
    assert set(doc["paths"]["/api/cache/{key}"]) == {"get", "put", "delete"}
    assert "post" in doc["paths"]["/api/cache/{key}/incr"]
    assert doc["paths"]["/api/cache/{key}"]["put"]["requestBody"]
