from __future__ import annotations

import pytest

from reynard.app import create_app
from reynard.settings import load_settings
from tests.conftest import PASSWORD

MAX = 3
WINDOW = 600


@pytest.fixture
def settings(db_path):
    return load_settings(
        env={},
        db=str(db_path),
        scrypt_n=1024,
        readers=2,
        task_scheduler=False,
        auth_per_ip=0,
        login_max_failures=MAX,
        login_window=WINDOW,
    )


async def attempt(client, username, password="wrong password"):
    return await client.post("/api/auth/login", json={"username": username, "password": password})


async def fail_until_limit(client, username):
    for _ in range(MAX):
        resp = await attempt(client, username)
        assert resp.status == 401


async def test_limit_reached_blocks_even_the_right_password_with_retry_after(
    client, make_user, clock
):
    await make_user("alice")
    await fail_until_limit(client, "alice")
    resp = await attempt(client, "alice", PASSWORD)
    assert resp.status == 429
    assert (await resp.json())["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) == WINDOW
    clock.advance(100)
    resp = await attempt(client, "alice", PASSWORD)
    assert int(resp.headers["Retry-After"]) == WINDOW - 100


async def test_case_and_email_share_one_budget(client, make_user):
    await make_user("bob")
    await attempt(client, "BOB")
    await attempt(client, "bob@example.com")
    await attempt(client, "Bob")
    assert (await attempt(client, "bob", PASSWORD)).status == 429


async def test_a_user_that_does_not_exist_is_throttled_the_same_way(client):
    await fail_until_limit(client, "ghost")
    resp = await attempt(client, "GHOST")
    assert resp.status == 429 and "Retry-After" in resp.headers


async def test_the_block_ends_when_the_window_passes(client, make_user, clock):
    await make_user("carol")
    await fail_until_limit(client, "carol")
    clock.advance(WINDOW - 1)
    assert (await attempt(client, "carol", PASSWORD)).status == 429
    clock.advance(1)
    assert (await attempt(client, "carol", PASSWORD)).status == 200


async def test_a_success_clears_the_count(client, make_user):
    await make_user("dave")
    for _ in range(MAX - 1):
        await attempt(client, "dave")
    assert (await attempt(client, "dave", PASSWORD)).status == 200
    for _ in range(MAX - 1):
        assert (await attempt(client, "dave")).status == 401
    assert (await attempt(client, "dave", PASSWORD)).status == 200


async def test_failures_of_one_user_do_not_block_another(client, make_user):
    await make_user("erin")
    await fail_until_limit(client, "frank")
    assert (await attempt(client, "erin", PASSWORD)).status == 200


async def test_per_ip_limit_covers_register_login_and_refresh(aiohttp_client, settings, clock):
    from dataclasses import replace

    client = await aiohttp_client(create_app(replace(settings, auth_per_ip=3), clock=clock))
    body = {"username": "gina", "email": "gina@example.com", "password": PASSWORD}
    assert (await client.post("/api/auth/register", json=body)).status == 201
    resp = await attempt(client, "gina", PASSWORD)
    token = (await resp.json())["access_token"]
    resp = await client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    resp = await attempt(client, "gina", PASSWORD)
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # Other routes are not limited.
    assert (await client.get("/api/health/live")).status == 200
    clock.advance(60)
    assert (await attempt(client, "gina", PASSWORD)).status == 200


def test_failure_counts_survive_a_server_restart(server_factory, tmp_path):
    env = {"REYNARD_LOGIN_MAX_FAILURES": str(MAX), "REYNARD_AUTH_PER_IP": "0"}
    db = tmp_path / "restart.db"
    server = server_factory(db=db, env=env)
    body = {"username": "hank", "email": "hank@example.com", "password": PASSWORD}
    assert server.request("POST", "/api/auth/register", body)[0] == 201
    for _ in range(MAX):
        status, _, _ = server.request(
            "POST", "/api/auth/login", {"username": "hank", "password": "wrong password"}
        )
        assert status == 401
    assert server.stop() == 0
    again = server_factory(db=db, env=env)
    status, body, headers = again.request(
        "POST", "/api/auth/login", {"username": "hank", "password": PASSWORD}
    )
    assert status == 429 and body["code"] == "rate_limited"
    assert int(headers["Retry-After"]) > 0
