"""Mixed load on a real server: logins, me, cache reads and writes, task enqueues.

Short by default (3 s); REYNARD_LOAD_SECONDS=60 python -m pytest tests/test_load.py -s for more.
Zero 5xx, zero lost acknowledged writes; p50/p99 per kind are printed.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import statistics
import time
from collections import defaultdict

import aiohttp
import pytest

from tests.support import create_admin

pytestmark = pytest.mark.slow
SECONDS = float(os.environ.get("REYNARD_LOAD_SECONDS", "3"))
PASSWORD = "load test password"


async def test_mixed_load_has_no_5xx_and_loses_no_acknowledged_write(
    server_factory, tmp_path, capsys
):
    db = tmp_path / "load.db"
    create_admin(db, "root", PASSWORD)
    server = server_factory(db, env={"REYNARD_AUTH_PER_IP": "0", "REYNARD_TEST_HANDLERS": "1"})
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    acked_cache: dict[tuple[str, str], int] = {}
    acked_tasks: set[int] = set()
    base = server.base

    async def call(session, kind, method, path, token=None, **kw):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        started = time.perf_counter()
        async with session.request(method, base + path, headers=headers, **kw) as resp:
            body = await resp.json(content_type=None)
        latencies[kind].append((time.perf_counter() - started) * 1000)
        statuses[kind][resp.status] += 1
        return resp.status, body

    async def user_loop(n: int, deadline: float) -> None:
        name = f"load{n}"
        async with aiohttp.ClientSession() as session:
            await call(
                session,
                "register",
                "POST",
                "/api/auth/register",
                json={"username": name, "email": f"{name}@x.io", "password": PASSWORD},
            )
            status, body = await call(
                session,
                "login",
                "POST",
                "/api/auth/login",
                json={"username": name, "password": PASSWORD},
            )
            token = body["access_token"]
            i = 0
            while time.monotonic() < deadline:
                i += 1
                roll = random.random()
                if roll < 0.05:
                    status, body = await call(
                        session,
                        "login",
                        "POST",
                        "/api/auth/login",
                        json={"username": name, "password": PASSWORD},
                    )
                    if status == 200:
                        token = body["access_token"]
                elif roll < 0.35:
                    await call(session, "me", "GET", "/api/auth/me", token)
                elif roll < 0.70:
                    key = f"k{random.randrange(20)}"
                    await call(session, "cache_get", "GET", f"/api/cache/{key}", token)
                else:
                    key = f"k{random.randrange(20)}"
                    status, _ = await call(
                        session,
                        "cache_put",
                        "PUT",
                        f"/api/cache/{key}",
                        token,
                        json={"value": i, "ttl": 3600},
                    )
                    if status == 200:
                        acked_cache[(name, key)] = i

    async def admin_loop(deadline: float) -> None:
        async with aiohttp.ClientSession() as session:
            _, body = await call(
                session,
                "login",
                "POST",
                "/api/auth/login",
                json={"username": "root", "password": PASSWORD},
            )
            token = body["access_token"]
            while time.monotonic() < deadline:
                status, body = await call(
                    session,
                    "task_enqueue",
                    "POST",
                    "/api/tasks",
                    token,
                    json={"name": "test.noop", "payload": {"n": 1}},
                )
                if status in (200, 202):
                    acked_tasks.add(body["id"])
                await asyncio.sleep(0.01)

    deadline = time.monotonic() + SECONDS
    await asyncio.gather(*[user_loop(n, deadline) for n in range(24)], admin_loop(deadline))

    assert server.stop() == 0
    five_xx = {k: {s: c for s, c in v.items() if s >= 500} for k, v in statuses.items()}
    assert not any(five_xx.values()), five_xx
    unexpected = {k: dict(v) for k, v in statuses.items() if set(v) - {200, 201, 202, 404}}
    assert not unexpected, unexpected
    conn = sqlite3.connect(db)
    rows = {
        (r[0], r[1]): int(r[2])
        for r in conn.execute(
            "SELECT u.username, c.key, c.value"
            " FROM cache_entries c JOIN users u ON u.id = c.user_id"
        )
    }
    tasks = {r[0] for r in conn.execute("SELECT id FROM background_tasks")}
    conn.close()
    # The last acknowledged PUT of each key is what the database holds (each client writes
    # its own keys in order, so the last ack wins).
    lost = {k: v for k, v in acked_cache.items() if rows.get(k) != v}
    assert not lost, f"lost acknowledged cache writes: {list(lost.items())[:5]}"
    assert acked_tasks <= tasks
    total = sum(len(v) for v in latencies.values())
    with capsys.disabled():
        print(f"\nload: {total} requests in {SECONDS:g}s ({total / SECONDS:,.0f}/s), no 5xx")
        for kind, values in sorted(latencies.items()):
            q = statistics.quantiles(values, n=100) if len(values) > 2 else [values[0]] * 99
            print(
                f"  {kind:13} n={len(values):6}  p50={statistics.median(values):7.2f} ms"
                f"  p99={q[98]:7.2f} ms"
            )
