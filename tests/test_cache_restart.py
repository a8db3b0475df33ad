"""Cache entries live in the database file: they survive a restart and their TTLs keep running."""

from __future__ import annotations

import time

from tests.conftest import PASSWORD


def sign_in(server) -> str:
    user = {"username": "carol", "email": "carol@example.com", "password": PASSWORD}
    status, body, _ = server.request("POST", "/api/auth/register", user)
    assert status == 201, body
    status, body, _ = server.request(
        "POST", "/api/auth/login", {"username": "carol", "password": PASSWORD}
    )
    assert status == 200, body
    return body["access_token"]


def test_entries_survive_a_restart_while_ttls_keep_counting(server_factory, tmp_path):
    db = tmp_path / "cache.db"
    first = server_factory(db=db)
    token = sign_in(first)
    written = time.time()
    assert first.request("PUT", "/api/cache/short", {"value": "soon", "ttl": 3}, token)[0] == 200
    assert first.request("PUT", "/api/cache/kept", {"value": {"n": [1, "é"]}}, token)[0] == 200
    assert first.request("POST", "/api/cache/hits/incr", {"by": 41}, token)[0] == 200
    assert first.stop() == 0

    second = server_factory(db=db)
    status, body, _ = second.request("GET", "/api/cache/kept", token=token)
    assert (status, body["value"], body["ttl"]) == (200, {"n": [1, "é"]}, None)
    assert second.request("POST", "/api/cache/hits/incr", None, token)[1]["value"] == 42
    status, body, _ = second.request("GET", "/api/cache/short", token=token)
    if time.time() < written + 2.9:  # a slow restart may already have used up the TTL
        assert status == 200 and body["ttl"] in (1, 2, 3)
    time.sleep(max(0.0, written + 3.1 - time.time()))
    assert second.request("GET", "/api/cache/short", token=token)[0] == 404
