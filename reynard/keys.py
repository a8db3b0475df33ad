"""Typed keys for what the application holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web

from .routing import ROUTES

if TYPE_CHECKING:
    from .clock import Clock
    from .db import Pool
    from .requestlog import RequestLog
    from .settings import Settings
    from .state import State

settings: web.AppKey[Settings] = web.AppKey("settings")
pool: web.AppKey[Pool] = web.AppKey("pool")
clock: web.AppKey[Clock] = web.AppKey("clock")
state: web.AppKey[State] = web.AppKey("state")
routes = ROUTES
request_log: web.AppKey[RequestLog] = web.AppKey("request_log")
# Called after every request with (route template, method, status, seconds).
request_observers: web.AppKey[list[Callable[[str, str, int, float], None]]] = web.AppKey(
    "request_observers"
)
# Extra readiness checks by name (e.g. "tasks:worker"); each returns a health+json check list.
health_checks: web.AppKey[dict[str, Callable[[], Awaitable[list[dict[str, Any]]]]]] = web.AppKey(
    "health_checks"
)
# Services by name ("cache", "auth", "tasks", ...), created in cleanup contexts.
services: web.AppKey[dict[str, Any]] = web.AppKey("services")

# Per request.
request_id: web.RequestKey[str] = web.RequestKey("request_id")
