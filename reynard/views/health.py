"""Health, system facts, the index and the OpenAPI document (no auth)."""

from __future__ import annotations

import platform
import sqlite3

from aiohttp import web

from .. import __version__, keys
from ..health import Health
from ..openapi import document
from ..routing import Route, add_routes
from .common import json_response

HEALTH_JSON = "application/health+json"


def _health(request: web.Request) -> Health:
    return request.app[keys.services]["health"]


async def live(request: web.Request) -> web.Response:
    return json_response({"status": "pass"})


async def ready(request: web.Request) -> web.Response:
    checks = await _health(request).checks()
    status = Health.overall(checks)
    return json_response(
        {"status": status, "checks": checks},
        status=503 if status == "fail" else 200,
        content_type=HEALTH_JSON,
    )


async def health(request: web.Request) -> web.Response:
    checks = await _health(request).checks()
    status = Health.overall(checks)
    app = request.app
    body = {
        "status": status,
        "version": __version__,
        "uptime": round(app[keys.state].uptime(), 3),
        "checks": checks,
        "pool": app[keys.pool].figures(),
        "services": Health.services(checks),
    }
    return json_response(body, status=503 if status == "fail" else 200, content_type=HEALTH_JSON)


async def simple(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def services(request: web.Request) -> web.Response:
    return json_response(Health.services(await _health(request).checks()))


async def index(request: web.Request) -> web.Response:
    return json_response(
        {
            "name": "reynard",
            "version": __version__,
            "links": {
                "health": "/api/health",
                "ready": "/api/health/ready",
                "system": "/api/system",
                "openapi": "/api/openapi.json",
                "metrics": "/metrics",
                "auth": "/api/auth",
            },
        }
    )


async def system(request: web.Request) -> web.Response:
    state = request.app[keys.state]
    return json_response(
        {
            "name": "reynard",
            "version": __version__,
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "uptime": round(state.uptime(), 3),
            "startup_ms": None if state.startup_ms is None else round(state.startup_ms, 1),
            "migrations_applied": state.migrations_applied,
            "reload_mode": request.app[keys.settings].reload_mode,
        }
    )


async def openapi(request: web.Request) -> web.Response:
    return json_response(document(request.app[keys.routes], __version__))


def setup(app: web.Application) -> None:
    add_routes(
        app,
        [
            Route("GET", "/", index, "Name, version and links"),
            Route("GET", "/api/health/live", live, "Liveness: the process answers"),
            Route("GET", "/api/health/ready", ready, "Readiness: real database and worker checks"),
            Route(
                "GET", "/api/health", health, "Readiness plus version, uptime, pool and services"
            ),
            Route("GET", "/api/health/simple", simple, "Always ok while the process answers"),
            Route("GET", "/api/health/services", services, "Status per service"),
            Route("GET", "/api/system", system, "Versions, uptime and startup facts"),
            Route("GET", "/api/openapi.json", openapi, "This API as an OpenAPI 3.1 document"),
        ],
    )
