"""metrics.snapshot and metrics.prune, called as the task worker calls them; GET /api/metrics."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest

from reynard import keys, metrics
from reynard.clock import iso, parse_iso
from tests.support import FAST_ENV, ROOT

DAY = 86400
FIGURES = {
    "users",
    "active_sessions",
    "cache_entries",
    "tasks",
    "db_bytes",
    "wal_bytes",
    "db_freelist_pages",
    "pool_reader_waits",
    "pool_writer_waits",
    "http_requests_total",
}


@dataclass
class Ctx:
    """The attributes of the worker's TaskContext that the metrics handlers may use."""

    pool: Any
    settings: Any
    clock: Any
    services: dict


def ctx_of(client) -> Ctx:
    app = client.app
    return Ctx(app[keys.pool], app[keys.settings], app[keys.clock], app[keys.services])


def rows(db_path, where: str = "1", params: tuple = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        sql = f"SELECT name, value, labels, recorded_at FROM system_metrics WHERE {where}"
        return conn.execute(sql + " ORDER BY id", params).fetchall()
    finally:
        conn.close()


def by_name(found: list[sqlite3.Row], name: str) -> list[sqlite3.Row]:
    return [row for row in found if row["name"] == name]


async def test_snapshot_writes_one_row_per_figure_at_the_clock_time(client, db_path, clock):
    written = await metrics.snapshot(ctx_of(client))
    found = rows(db_path)
    assert written == len(found)
    assert FIGURES <= {row["name"] for row in found}
    assert {row["recorded_at"] for row in found} == {clock.now()}
    tasks = {json.loads(row["labels"])["status"]: row["value"] for row in by_name(found, "tasks")}
    assert tasks == dict.fromkeys(
        ["pending", "running", "succeeded", "failed", "dead", "cancelled"], 0
    )
    assert by_name(found, "db_bytes")[0]["value"] > 0


async def test_snapshot_rate_and_quantiles_cover_the_interval_since_the_last_one(
    client, db_path, clock
):
    ctx = ctx_of(client)
    await metrics.snapshot(ctx)
    first = clock.now()
    for _ in range(12):
        await client.get("/api/health/live")
    clock.advance(60)
    await metrics.snapshot(ctx)
    second = rows(db_path, "recorded_at = ?", (first + 60,))
    assert by_name(second, "http_requests_total")[0]["value"] == 12
    assert by_name(second, "http_request_rate")[0]["value"] == pytest.approx(12 / 60)
    quantiles = {
        json.loads(row["labels"])["quantile"]: row["value"]
        for row in by_name(second, "http_request_duration_seconds")
    }
    assert set(quantiles) == {"0.5", "0.95", "0.99"}
    assert 0 < quantiles["0.5"] <= quantiles["0.95"] <= quantiles["0.99"] <= 10

    clock.advance(30)  # a quiet interval: rate 0, no latency figures to report
    await metrics.snapshot(ctx)
    third = rows(db_path, "recorded_at = ?", (first + 90,))
    assert by_name(third, "http_requests_total")[0]["value"] == 12
    assert by_name(third, "http_request_rate")[0]["value"] == 0
    assert by_name(third, "http_request_duration_seconds") == []


async def test_snapshot_without_the_registry_still_stores_the_counts(client, db_path):
    ctx = ctx_of(client)
    ctx.services = {}  # e.g. a worker run outside the web app
    written = await metrics.snapshot(ctx)
    names = {row["name"] for row in rows(db_path)}
    assert written == len(rows(db_path))
    assert "users" in names and "http_requests_total" not in names


async def test_prune_removes_only_rows_older_than_the_retention(client, db_path, clock):
    ctx = ctx_of(client)
    start = clock.now()
    first = await metrics.snapshot(ctx)
    clock.advance(3 * DAY)
    second = await metrics.snapshot(ctx)
    clock.advance(5 * DAY)  # now: the first is 8 days old, the second 5

    assert await metrics.prune(ctx, {}) == first
    left = rows(db_path)
    assert {row["recorded_at"] for row in left} == {start + 3 * DAY}

    assert await metrics.prune(ctx, {"retention_days": 6}) == 0
    assert await metrics.prune(ctx, {"retention_days": 4.5}) == second
    assert rows(db_path) == []


async def test_prune_deletes_in_bounded_batches(client, db_path, clock, monkeypatch):
    ctx = ctx_of(client)
    monkeypatch.setattr(metrics, "PRUNE_BATCH", 10)
    conn = sqlite3.connect(db_path)
    with conn:
        conn.executemany(
            "INSERT INTO system_metrics (name, value, recorded_at) VALUES ('old', ?, ?)",
            [(i, clock.now() - 30 * DAY) for i in range(25)],
        )
        conn.execute(
            "INSERT INTO system_metrics (name, value, recorded_at) VALUES ('new', 1, ?)",
            (clock.now(),),
        )
    conn.close()
    before = ctx.pool.figures()["writes"]
    assert await metrics.prune(ctx, None) == 25
    assert ctx.pool.figures()["writes"] - before == 3  # 10 + 10 + 5, each its own write
    assert [row["name"] for row in rows(db_path)] == ["new"]


@pytest.mark.parametrize("days", ["7", 0, -1, True, None])
async def test_prune_rejects_a_retention_that_is_not_a_positive_number(client, days):
    with pytest.raises(ValueError, match="retention_days"):
        await metrics.prune(ctx_of(client), {"retention_days": days})


# ---- GET /api/metrics -----------------------------------------------------------------------
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_samples_need_an_admin(client, make_user):
    resp = await client.get("/api/metrics")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert (await resp.json())["code"] == "not_authenticated"
    token, _ = await make_user()
    resp = await client.get("/api/metrics", headers=auth(token))
    assert resp.status == 403
    assert (await resp.json())["code"] == "forbidden"


async def test_samples_are_filtered_by_name_and_time_newest_first(client, make_user, clock):
    token, _ = await make_user(admin=True)
    ctx = ctx_of(client)
    times = []
    for _ in range(3):
        times.append(clock.now())
        await metrics.snapshot(ctx)
        clock.advance(60)

    resp = await client.get("/api/metrics", params={"name": "users"}, headers=auth(token))
    assert resp.status == 200
    body = await resp.json()
    assert body["next"] is None
    assert [item["recorded_at"] for item in body["items"]] == [iso(t) for t in reversed(times)]
    assert body["items"][0] == {
        "name": "users",
        "value": 1,
        "labels": {},
        "recorded_at": iso(times[2]),
    }

    params = {"name": "tasks", "since": iso(times[1]), "until": iso(times[2])}
    body = await (await client.get("/api/metrics", params=params, headers=auth(token))).json()
    assert len(body["items"]) == 6  # one per status, only the middle snapshot
    assert {item["recorded_at"] for item in body["items"]} == {iso(times[1])}
    assert {item["labels"]["status"] for item in body["items"]} >= {"pending", "dead"}


async def test_samples_page_with_a_cursor_without_gaps_or_repeats(client, make_user, clock):
    token, _ = await make_user(admin=True)
    ctx = ctx_of(client)
    for _ in range(4):
        await metrics.snapshot(ctx)
        clock.advance(1)
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": "7", **({"after": after} if after else {})}
        body = await (await client.get("/api/metrics", params=params, headers=auth(token))).json()
        seen += body["items"]
        pages += 1
        after = body["next"]
        if after is None:
            break
    conn = sqlite3.connect(client.app[keys.settings].db)
    total = conn.execute("SELECT count(*) FROM system_metrics").fetchone()[0]
    conn.close()
    assert len(seen) == total and pages == -(-total // 7)
    keys_seen = [(i["recorded_at"], i["name"], json.dumps(i["labels"])) for i in seen]
    assert len(set(keys_seen)) == total
    assert [i["recorded_at"] for i in seen] == sorted(
        (i["recorded_at"] for i in seen), reverse=True
    )


@pytest.mark.parametrize(
    "params, field",
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01T00:00:00Z"}, "until"),
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "not-a-cursor"}, "after"),
        ({"name": "x" * 201}, "name"),
    ],
)
async def test_bad_sample_queries_are_422_naming_the_field(client, make_user, params, field):
    token, _ = await make_user(admin=True)
    resp = await client.get("/api/metrics", params=params, headers=auth(token))
    assert resp.status == 422
    body = await resp.json()
    assert body["code"] == "validation_error"
    assert [e["field"] for e in body["errors"]] == [field]


async def test_samples_limit_follows_the_list_rule_of_1_to_100(client, make_user):
    token, _ = await make_user(admin=True)
    resp = await client.get("/api/metrics", params={"limit": "100"}, headers=auth(token))
    assert resp.status == 200
    assert await resp.json() == {"items": [], "next": None}
    resp = await client.get("/api/metrics", params={"limit": "101"}, headers=auth(token))
    assert resp.status == 422


# ---- a real server: the worker runs metrics.snapshot every REYNARD_METRICS_INTERVAL ---------
def test_a_running_server_stores_snapshots_at_the_interval(server_factory, tmp_path):
    db = tmp_path / "interval.db"
    env = {**os.environ, **FAST_ENV, "REYNARD_ADMIN_PASSWORD": "interval-password"}
    made = subprocess.run(
        [sys.executable, "server.py", "create-admin", "boss", "--email", "boss@example.com"]
        + ["--db", str(db)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    server = server_factory(db, env={"REYNARD_METRICS_INTERVAL": "1"})
    status, body, _ = server.request(
        "POST", "/api/auth/login", {"username": "boss", "password": "interval-password"}
    )
    assert status == 200, body
    token = body["access_token"]

    deadline = time.monotonic() + 15
    times: list[str] = []
    while time.monotonic() < deadline and len(times) < 3:
        time.sleep(0.3)
        status, body, _ = server.request(
            "GET", "/api/metrics?name=http_requests_total", token=token
        )
        assert status == 200, body
        times = [item["recorded_at"] for item in body["items"]]
    assert len(times) >= 3, f"snapshots stored: {times}"
    stamps = sorted(parse_iso(t) for t in times)
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert all(gap > 0.5 for gap in gaps), gaps  # one snapshot per 1 s slot, not a burst
    # The worker's snapshot sees the web app's registry: the requests above are counted.
    assert body["items"][0]["value"] >= 1
