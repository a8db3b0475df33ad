"""GET /api/stats: counts of users, live sessions, live cache entries, tasks and file sizes."""

from __future__ import annotations

import sqlite3

from reynard import keys, stats

STATUSES = ["pending", "running", "succeeded", "failed", "dead", "cancelled"]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def seed(db_path, user_id: int, now: float) -> None:
    """Cache rows (live, expired, forever, a server 'sys:' key) and tasks in several states."""
    conn = sqlite3.connect(db_path)
    with conn:
        ns = f"u:{user_id}"
        cache = [
            (ns, "live", now + 100, user_id),
            (ns, "forever", None, user_id),
            (ns, "soon", now + 10, user_id),
            (ns, "gone", now - 1, user_id),
            ("sys:test", "internal", None, None),
        ]
        conn.executemany(
            "INSERT INTO cache_entries (namespace, key, value, expires_at, user_id, created_at,"
            " updated_at) VALUES (?, ?, '1', ?, ?, 0, 0)",
            cache,
        )
        tasks = ["pending", "pending", "succeeded", "dead"]
        conn.executemany(
            "INSERT INTO background_tasks (name, status, run_at, created_at, updated_at)"
            " VALUES ('tasks.prune', ?, 0, 0, 0)",
            [(status,) for status in tasks],
        )
    conn.close()


async def test_stats_without_a_token_is_401_and_for_a_non_admin_403(client, make_user):
    resp = await client.get("/api/stats")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    token, _ = await make_user()
    resp = await client.get("/api/stats", headers=auth(token))
    assert resp.status == 403
    assert (await resp.json())["code"] == "forbidden"


async def test_stats_on_an_empty_system_lists_every_task_status_with_zero(client, make_user):
    token, _ = await make_user(admin=True)
    resp = await client.get("/api/stats/", headers=auth(token))
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {
        "users",
        "active_sessions",
        "cache_entries",
        "tasks",
        "db_bytes",
        "wal_bytes",
    }
    assert body["users"] == 1 and body["active_sessions"] == 1 and body["cache_entries"] == 0
    assert body["tasks"] == dict.fromkeys(STATUSES, 0)
    assert body["db_bytes"] > 0 and body["wal_bytes"] >= 0


async def test_stats_count_only_live_sessions_and_live_user_cache_entries(
    client, make_user, db_path, clock
):
    token, admin = await make_user(admin=True)
    other_token, _ = await make_user()
    await make_user()
    seed(db_path, admin["id"], clock.now())

    body = await (await client.get("/api/stats", headers=auth(token))).json()
    assert body["users"] == 3
    assert body["active_sessions"] == 3
    assert body["cache_entries"] == 3  # live, forever, soon; not gone, not the sys: key
    assert body["tasks"] == {**dict.fromkeys(STATUSES, 0), "pending": 2, "succeeded": 1, "dead": 1}

    assert (await client.post("/api/auth/logout", headers=auth(other_token))).status == 204
    clock.advance(50)  # "soon" expires
    body = await (await client.get("/api/stats", headers=auth(token))).json()
    assert body["active_sessions"] == 2
    assert body["cache_entries"] == 2


async def test_sessions_past_their_absolute_expiry_are_not_active(client, make_user, clock):
    await make_user()
    app = client.app
    now = app[keys.clock].now()
    assert (await stats.counts(app[keys.pool], now)).active_sessions == 1
    later = now + app[keys.settings].session_ttl + 1
    assert (await stats.counts(app[keys.pool], later)).active_sessions == 0


async def test_stats_report_the_database_and_wal_file_sizes(client, make_user, db_path):
    token, _ = await make_user(admin=True)
    body = await (await client.get("/api/stats", headers=auth(token))).json()
    assert body["db_bytes"] == db_path.stat().st_size
    wal = db_path.with_name(db_path.name + "-wal")
    assert body["wal_bytes"] == (wal.stat().st_size if wal.exists() else 0)
    assert body["wal_bytes"] > 0  # registering and signing in wrote through the WAL
