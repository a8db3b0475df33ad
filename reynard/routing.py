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
    """Register routes, each path as one resource (its methods together), then the same paths
    with a trailing slash. The router tries the resources under a path prefix one by one, so
    one resource per path — not one per method — keeps that walk short."""
    app.setdefault(ROUTES, []).extend(routes)
    by_path: dict[str, list[Route]] = {}
    for route in routes:
        by_path.setdefault(route.path, []).append(route)
    for slash in ("", "/"):
        for path, group in by_path.items():
            if slash and path == "/":
                continue
            for route in group:
                app.router.add_route(route.method, path + slash, route.handler)
