"""The route table: every route once, registered with and without a trailing slash."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    auth: str = "none"  # "none", "user" or "admin"
    body: dict[str, Any] | None = None  # JSON Schema of the request body, for OpenAPI
    status: int = 200
    tags: tuple[str, ...] = field(default_factory=tuple)


# The table itself, for the OpenAPI document (also reachable as keys.routes).
ROUTES: web.AppKey[list[Route]] = web.AppKey("routes")


def add_routes(app: web.Application, routes: list[Route]) -> None:
    table = app.setdefault(ROUTES, [])
    for route in routes:
        table.append(route)
        app.router.add_route(route.method, route.path, route.handler)
        if route.path != "/":
            app.router.add_route(route.method, route.path + "/", route.handler)
