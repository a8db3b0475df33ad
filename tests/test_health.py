"""Health and system routes answer from real checks."""

from __future__ import annotations

import os
import sqlite3

from reynard.app import create_app


async def test_ready_is_health_json_with_every_check(client):
    resp = await client.get("/api/health/ready")
    assert resp.status == 200
    assert resp.content_type == "application/health+json"
    body = await resp.json()
    assert set(body["checks"]) >= {
        "sqlite:read",
        "sqlite:write",
        "migrations",
        "disk:free",
        "tasks:worker",
    }
    for name in ("sqlite:read", "sqlite:write", "migrations", "disk:free"):
        [check] = body["checks"][name]
        assert check["status"] == "pass", (name, check)
        assert check["time"].endswith("Z")
    assert body["checks"]["disk:free"][0]["observedUnit"] == "bytes"


async def test_ready_really_writes(client, db_path):
    await client.get("/api/health/ready")
    conn = sqlite3.connect(db_path)
    row = conn.execute(
        "SELECT updated_at FROM cache_entries WHERE namespace = 'sys:health'"
    ).fetchone()
    assert row is not None


async def test_ready_fails_with_503_when_the_database_file_is_gone(client, db_path):
    os.unlink(db_path)
    resp = await client.get("/api/health/ready")
    assert resp.status == 503
    body = await resp.json()
    assert body["status"] == "fail"
    assert body["checks"]["sqlite:write"][0]["status"] == "fail"
    live = await client.get("/api/health/live")
    assert live.status == 200


async def test_ready_fails_when_another_process_holds_the_write_lock(aiohttp_client, settings):
    from dataclasses import replace

    app = create_app(replace(settings, busy_timeout_ms=100))
    client = await aiohttp_client(app)
    blocker = sqlite3.connect(settings.db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        resp = await client.get("/api/health/ready")
        body = await resp.json()
        assert resp.status == 503, body
        assert body["checks"]["sqlite:write"][0]["status"] == "fail"
        assert body["checks"]["sqlite:read"][0]["status"] == "pass"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    resp = await client.get("/api/health/ready")
    assert resp.status == 200


async def test_ready_fails_when_migrations_do_not_match(client, db_path):
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'tampered'")
    conn.close()
    body = await (await client.get("/api/health/ready")).json()
    assert body["checks"]["migrations"][0]["status"] == "fail"
    assert body["status"] == "fail"


async def test_health_adds_version_uptime_pool_and_services(client):
    resp = await client.get("/api/health")
    body = await resp.json()
    assert body["version"] and body["uptime"] >= 0
    assert body["pool"]["readers"] == 2
    assert set(body["services"]) == {"database", "cache", "background"}
    assert body["services"]["database"]["status"] == "pass"


async def test_simple_services_index_and_system(client):
    assert await (await client.get("/api/health/simple")).json() == {"status": "ok"}
    services = await (await client.get("/api/health/services")).json()
    assert services["database"]["status"] == "pass"
    index = await (await client.get("/")).json()
    assert index["name"] == "reynard" and "/api/health" in index["links"].values()
    system = await (await client.get("/api/system")).json()
    assert system["sqlite"] == sqlite3.sqlite_version
    assert system["migrations_applied"] >= 1 and system["reload_mode"] is False
    assert system["startup_ms"] > 0


async def test_openapi_lists_every_route(client):
    doc = await (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    registered = set()
    for resource in client.app.router.resources():
        path = resource.canonical
        if path != "/" and path.endswith("/"):
            continue
        for route in resource:
            if route.method != "HEAD":
                registered.add((route.method, path))
    assert registered == documented
