"""Admin routes for background tasks, and the worker's lifecycle inside the app."""

from __future__ import annotations

import os
import time
from typing import Any, AsyncIterator

from aiohttp import web

from .. import jobs, keys
from ..clock import iso, parse_iso
from ..errors import field_error
from ..health import entry
from ..routing import Route, add_routes
from ..tasks import STATUSES, TaskService, to_json
from ..validation import Field, query_int, validate
from ..worker import Worker
from .common import int_param, json_response, read_json
from .guards import require_admin

HEARTBEAT_STALE = 30.0
WAIT_WARN = 60.0
TIMES = ("run_at", "started_at", "finished_at", "created_at")


def _iso_check(value: str) -> str | None:
    try:
        parse_iso(value)
    except ValueError:
        return "must be an ISO 8601 time such as 2027-01-01T00:00:00Z"
    return None


ENQUEUE = {
    "name": Field(str, required=True, min_len=1, max_len=100),
    "payload": Field(None, nullable=True),
    "run_at": Field(str, nullable=True, check=_iso_check),
    "priority": Field(int, lo=-1000, hi=1000),
    "max_attempts": Field(int, lo=1, hi=100),
    "idempotency_key": Field(str, nullable=True, min_len=1, max_len=200),
}
ENQUEUE_SCHEMA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "payload": {"description": "any JSON value, handed to the handler"},
        "run_at": {"type": ["string", "null"], "format": "date-time"},
        "priority": {"type": "integer", "minimum": -1000, "maximum": 1000, "default": 0},
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100, "default": 3},
        "idempotency_key": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
    },
}


def _service(request: web.Request) -> TaskService:
    return request.app[keys.services]["tasks"]


def _now(request: web.Request) -> float:
    return request.app[keys.clock].now()


def task_json(row: Any) -> dict[str, Any]:
    body = to_json(row)
    for name in TIMES:
        body[name] = iso(body[name])
    return body


async def enqueue(request: web.Request) -> web.Response:
    await require_admin(request)
    body = validate(await read_json(request), ENQUEUE)
    run_at = body.get("run_at")
    row, created = await _service(request).enqueue(
        body["name"],
        body.get("payload"),
        now=_now(request),
        run_at=None if run_at is None else parse_iso(run_at),
        priority=body.get("priority", 0),
        max_attempts=body.get("max_attempts", 3),
        idempotency_key=body.get("idempotency_key"),
    )
    return json_response(task_json(row), status=202 if created else 200)


async def list_tasks(request: web.Request) -> web.Response:
    await require_admin(request)
    params = request.query
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise field_error("status", f"must be one of {', '.join(STATUSES)}")
    after = params.get("after") or None
    if after is not None and not (after.isdigit() and len(after) <= 19):
        raise field_error("after", "is not a cursor this server gave out")
    rows, last = await _service(request).list(
        status=status,
        name=params.get("name") or None,
        limit=query_int(params, "limit", 50, 1, 100),
        after=None if after is None else int(after),
    )
    return json_response(
        {"items": [task_json(row) for row in rows], "next": None if last is None else str(last)}
    )


async def get_task(request: web.Request) -> web.Response:
    await require_admin(request)
    return json_response(task_json(await _service(request).get(int_param(request, "task_id"))))


async def cancel(request: web.Request) -> web.Response:
    await require_admin(request)
    row = await _service(request).cancel(int_param(request, "task_id"), _now(request))
    return json_response(task_json(row))


async def retry(request: web.Request) -> web.Response:
    await require_admin(request)
    row = await _service(request).retry(int_param(request, "task_id"), _now(request))
    return json_response(task_json(row))


def _health_check(app: web.Application, worker: Worker | None, service: TaskService):
    async def check() -> list[dict[str, Any]]:
        wait = round(await service.oldest_due_wait(app[keys.clock].now()), 3)
        problems = []
        if worker is None:
            problems.append("no task worker runs in this process (REYNARD_TASK_WORKERS=0)")
        elif worker.heartbeat is None or time.monotonic() - worker.heartbeat > HEARTBEAT_STALE:
            problems.append(f"the task worker has not polled in the last {HEARTBEAT_STALE:g}s")
        if wait > WAIT_WARN:
            problems.append(f"the oldest due task has waited {wait:g}s")
        return [entry("warn" if problems else "pass", wait, "s", "; ".join(problems) or None)]

    return check


async def _tasks(app: web.Application) -> AsyncIterator[None]:
    """The service, the schedule and the worker; the worker drains before the pool closes."""
    settings = app[keys.settings]
    service = TaskService(app[keys.pool], app[keys.clock])
    app[keys.services]["tasks"] = service
    if os.environ.get("REYNARD_TEST_HANDLERS") == "1":
        jobs.register_test_handlers()
    if settings.task_scheduler:
        await jobs.ensure_schedule(service, settings, app[keys.clock].now())
    worker = None
    if settings.task_workers > 0:
        worker = Worker(app[keys.pool], settings, app[keys.clock], app[keys.services])
        service.on_due.append(worker.wake)
        app[keys.services]["task_worker"] = worker
    app[keys.health_checks]["tasks:worker"] = _health_check(app, worker, service)
    yield
    if worker is not None:
        await worker.stop()


async def _start_worker(app: web.Application) -> None:
    # on_startup handlers run after every cleanup context, so all services exist by now.
    worker = app[keys.services].get("task_worker")
    if worker is not None:
        worker.start()


async def _stop_claiming(app: web.Application) -> None:
    worker = app[keys.services].get("task_worker")
    if worker is not None:
        worker.stop_claiming()


def setup(app: web.Application) -> None:
    add_routes(
        app,
        [
            Route(
                "POST",
                "/api/tasks",
                enqueue,
                "Enqueue a task (202; 200 with the first task for a known idempotency key)",
                auth="admin",
                body=ENQUEUE_SCHEMA,
                status=202,
            ),
            Route("GET", "/api/tasks", list_tasks, "List tasks, newest first", auth="admin"),
            Route("GET", "/api/tasks/{task_id}", get_task, "One task", auth="admin"),
            Route(
                "POST",
                "/api/tasks/{task_id}/cancel",
                cancel,
                "Cancel a pending task (409 not_pending otherwise)",
                auth="admin",
            ),
            Route(
                "POST",
                "/api/tasks/{task_id}/retry",
                retry,
                "Run a failed or dead task again with a fresh attempt budget",
                auth="admin",
            ),
        ],
    )
    app.cleanup_ctx.append(_tasks)
    app.on_startup.append(_start_worker)
    app.on_shutdown.append(_stop_claiming)
