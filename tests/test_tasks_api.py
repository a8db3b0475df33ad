"""The admin task routes: enqueue, idempotency, listing, cancel and retry, and their errors."""

from __future__ import annotations

import asyncio
import re

import pytest

from reynard.tasks import handler

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FIELDS = {
    "id",
    "name",
    "payload",
    "status",
    "priority",
    "attempts",
    "max_attempts",
    "run_at",
    "started_at",
    "finished_at",
    "last_error",
    "result",
    "created_at",
}
FUTURE = "2099-01-01T00:00:00Z"


@handler("testapi.echo")
async def echo(ctx, payload):
    return {"echo": payload, "attempt": ctx.attempt}


@handler("testapi.fail")
def fail(ctx, payload):
    raise ValueError("no good")


@pytest.fixture
async def admin(make_user):
    token, _ = await make_user("root", admin=True)
    return {"Authorization": f"Bearer {token}"}


async def wait_for_status(client, admin, task_id, status, within=5.0):
    deadline = asyncio.get_running_loop().time() + within
    while True:
        body = await (await client.get(f"/api/tasks/{task_id}", headers=admin)).json()
        if body["status"] == status:
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.02)


async def test_enqueue_is_202_with_the_task_and_the_worker_runs_it(client, admin):
    resp = await client.post(
        "/api/tasks", json={"name": "testapi.echo", "payload": {"a": [1, 2]}}, headers=admin
    )
    assert resp.status == 202
    task = await resp.json()
    assert set(task) == FIELDS
    assert task["payload"] == {"a": [1, 2]}
    assert task["attempts"] == 0 and task["max_attempts"] == 3 and task["priority"] == 0
    assert ISO.match(task["run_at"]) and ISO.match(task["created_at"])

    done = await wait_for_status(client, admin, task["id"], "succeeded")
    assert done["result"] == {"echo": {"a": [1, 2]}, "attempt": 1}
    assert done["attempts"] == 1 and done["last_error"] is None
    assert ISO.match(done["started_at"]) and ISO.match(done["finished_at"])


async def test_same_idempotency_key_returns_the_first_task_with_200(client, admin):
    body = {"name": "testapi.echo", "payload": 1, "idempotency_key": "k-1", "run_at": FUTURE}
    first = await client.post("/api/tasks", json=body, headers=admin)
    again = await client.post(
        "/api/tasks", json={**body, "payload": 2, "priority": 5}, headers=admin
    )
    assert (first.status, again.status) == (202, 200)
    assert await again.json() == await first.json()
    listed = await (await client.get("/api/tasks?name=testapi.echo", headers=admin)).json()
    assert len(listed["items"]) == 1


async def test_unknown_task_name_is_422(client, admin):
    resp = await client.post("/api/tasks", json={"name": "no.such.job"}, headers=admin)
    assert resp.status == 422
    body = await resp.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"] == "name"


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": "testapi.echo", "priority": "high"}, "priority"),
        ({"name": "testapi.echo", "max_attempts": 0}, "max_attempts"),
        ({"name": "testapi.echo", "run_at": "tomorrow"}, "run_at"),
        ({"name": "testapi.echo", "colour": "red"}, "colour"),
    ],
)
async def test_bad_enqueue_bodies_are_422_naming_the_field(client, admin, body, field):
    resp = await client.post("/api/tasks", json=body, headers=admin)
    assert resp.status == 422
    assert field in {e["field"] for e in (await resp.json())["errors"]}


async def test_task_routes_need_an_admin(client, make_user):
    assert (await client.get("/api/tasks")).status == 401
    token, _ = await make_user("plain")
    resp = await client.post(
        "/api/tasks", json={"name": "testapi.echo"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 403


async def test_cancel_a_pending_task_then_cancel_again_is_409_not_pending(client, admin):
    task = await (
        await client.post(
            "/api/tasks", json={"name": "testapi.echo", "run_at": FUTURE}, headers=admin
        )
    ).json()
    resp = await client.post(f"/api/tasks/{task['id']}/cancel", headers=admin)
    assert resp.status == 200
    cancelled = await resp.json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"] is not None

    again = await client.post(f"/api/tasks/{task['id']}/cancel", headers=admin)
    assert again.status == 409
    assert (await again.json())["code"] == "not_pending"
    assert (await client.post("/api/tasks/999999/cancel", headers=admin)).status == 404


async def test_retry_of_a_dead_task_resets_attempts_and_other_states_are_409(client, admin):
    task = await (
        await client.post(
            "/api/tasks", json={"name": "testapi.fail", "max_attempts": 1}, headers=admin
        )
    ).json()
    dead = await wait_for_status(client, admin, task["id"], "dead")
    assert dead["attempts"] == 1
    assert dead["last_error"] == "ValueError: no good"

    resp = await client.post(f"/api/tasks/{task['id']}/retry", headers=admin)
    assert resp.status == 200
    retried = await resp.json()
    assert retried["status"] in ("pending", "running", "dead")
    dead_again = await wait_for_status(client, admin, task["id"], "dead")
    assert dead_again["attempts"] == 1  # a fresh budget, spent once more

    pending = await (
        await client.post(
            "/api/tasks", json={"name": "testapi.echo", "run_at": FUTURE}, headers=admin
        )
    ).json()
    refused = await client.post(f"/api/tasks/{pending['id']}/retry", headers=admin)
    assert refused.status == 409
    assert (await refused.json())["code"] == "not_retryable"


async def test_list_filters_by_status_and_name_and_pages_newest_first(client, admin):
    ids = []
    for i in range(5):
        body = {"name": "testapi.echo", "payload": i, "run_at": FUTURE}
        ids.append((await (await client.post("/api/tasks", json=body, headers=admin)).json())["id"])
    await client.post(f"/api/tasks/{ids[0]}/cancel", headers=admin)

    page1 = await (await client.get("/api/tasks?status=pending&limit=2", headers=admin)).json()
    assert [t["id"] for t in page1["items"]] == [ids[4], ids[3]]
    page2 = await (
        await client.get(f"/api/tasks?status=pending&limit=2&after={page1['next']}", headers=admin)
    ).json()
    assert [t["id"] for t in page2["items"]] == [ids[2], ids[1]]
    assert page2["next"] is None

    cancelled = await (
        await client.get("/api/tasks?status=cancelled&name=testapi.echo", headers=admin)
    ).json()
    assert [t["id"] for t in cancelled["items"]] == [ids[0]]
    assert (await client.get("/api/tasks?status=sleeping", headers=admin)).status == 422
    assert (await client.get("/api/tasks?after=abc", headers=admin)).status == 422
    assert (await client.get("/api/tasks?limit=0", headers=admin)).status == 422


async def test_unknown_task_is_404(client, admin):
    resp = await client.get("/api/tasks/424242/", headers=admin)
    assert resp.status == 404
    assert (await resp.json())["code"] == "not_found"
