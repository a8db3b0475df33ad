"""GET /metrics (Prometheus text, no auth), GET /api/metrics and GET /api/stats (admin).

/metrics has no auth on purpose: it is for a Prometheus scraper and tells a caller the route
templates, request counts and row counts, nothing per user. Serve it on a private network (or
block /metrics at the proxy) when the port is reachable from outside.
"""

from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web

from .. import __version__, exposition, keys, metrics, stats
from ..clock import parse_iso
from ..errors import field_error
from ..routing import Route, add_routes
from ..validation import query_int
from .common import json_response
from .guards import require_admin

MAX_SAMPLES = 100  # the contract's list rule: limit 1-100, default 50
DEFAULT_SAMPLES = 50
MAX_NAME = 200


async def scrape(request: web.Request) -> web.Response:
    app = request.app
    pool, state = app[keys.pool], app[keys.state]
    counts = await stats.counts(pool, app[keys.clock].now())
    text = exposition.render(
        app[keys.services]["metrics"],
        counts,
        pool.figures(),
        uptime=state.uptime(),
        started_at=state.started_at,
        version=__version__,
    )
    return web.Response(body=text.encode(), headers={"Content-Type": exposition.CONTENT_TYPE})


def _time_param(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_iso(raw)
    except (ValueError, OverflowError):
        raise field_error(name, "must be an ISO 8601 timestamp like 2026-01-31T12:00:00Z") from None


async def list_samples(request: web.Request) -> web.Response:
    await require_admin(request)
    name = request.query.get("name") or None
    if name is not None and len(name) > MAX_NAME:
        raise field_error("name", f"must be at most {MAX_NAME} characters")
    since, until = _time_param(request, "since"), _time_param(request, "until")
    if since is not None and until is not None and since > until:
        raise field_error("until", "must not be before since")
    limit = query_int(request.query, "limit", DEFAULT_SAMPLES, 1, MAX_SAMPLES)
    page = await metrics.samples(
        request.app[keys.pool],
        name=name,
        since=since,
        until=until,
        limit=limit,
        after=request.query.get("after") or None,
    )
    return json_response(page)


async def show_stats(request: web.Request) -> web.Response:
    await require_admin(request)
    app = request.app
    counts = await stats.counts(app[keys.pool], app[keys.clock].now())
    return json_response(counts.as_json())


async def _registry(app: web.Application) -> AsyncIterator[None]:
    """The request registry lives as long as the app; the middleware feeds it per request."""
    registry = metrics.Registry(app[keys.clock].now())
    app[keys.services]["metrics"] = registry
    app[keys.request_observers].append(registry.observe)
    yield
    app[keys.request_observers].remove(registry.observe)


def setup(app: web.Application) -> None:
    add_routes(
        app,
        [
            Route("GET", "/metrics", scrape, "Prometheus text exposition 0.0.4 (for a scraper)"),
            Route(
                "GET",
                "/api/metrics",
                list_samples,
                "Stored metric samples, newest first (?name, since, until, limit, after)",
                auth="admin",
            ),
            Route(
                "GET",
                "/api/stats",
                show_stats,
                "Counts of users, sessions, cache, tasks",
                auth="admin",
            ),
        ],
    )
    app.cleanup_ctx.append(_registry)
