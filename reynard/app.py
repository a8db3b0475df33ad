"""create_app: middleware, the routes table and the resources' lifecycles. No I/O here."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import AsyncIterator

from aiohttp import web

from . import keys
from .clock import Clock
from .db import Pool
from .health import Health
from .middleware import hide_server_header, make_middleware
from .migrate import discover, open_and_migrate
from .requestlog import RequestLog
from .settings import Settings
from .state import State
from .views import auth as auth_views
from .views import cache as cache_views
from .views import health as health_views
from .views import metrics as metrics_views
from .views import tasks as tasks_views
from .views import users as users_views
from .views.common import MAX_BODY

log = logging.getLogger("reynard")


async def _database(app: web.Application) -> AsyncIterator[None]:
    """Migrate (a no-op read on a warm start), open the pool; close it after the last request."""
    settings, state = app[keys.settings], app[keys.state]
    migrations = discover()
    applied, _ = await asyncio.to_thread(open_and_migrate, settings.db, migrations)
    state.migrations_applied = len(applied)
    if applied:
        log.info("applied migrations %s to %s", applied, settings.db)
    db_inode = os.stat(settings.db).st_ino
    pool = Pool(
        settings.db,
        readers=settings.readers,
        synchronous=settings.synchronous,
        busy_timeout_ms=settings.busy_timeout_ms,
    )
    await pool.open()
    app[keys.request_log].start()
    app[keys.pool] = pool
    app[keys.services]["health"] = Health(pool, migrations, db_inode, app[keys.health_checks])
    try:
        yield
    finally:
        await pool.close()
        await app[keys.request_log].stop()


async def _started(app: web.Application) -> None:
    state = app[keys.state]
    state.startup_ms = (time.perf_counter() - state.process_started) * 1000


def create_app(
    settings: Settings, *, clock: Clock | None = None, process_started: float | None = None
) -> web.Application:
    """Build the application; resources open when it starts (tests and server share this)."""
    hide_server_header()
    observers: list = []
    request_log = RequestLog()
    middleware = make_middleware(settings.cors_origins, observers, request_log)
    app = web.Application(middlewares=[middleware], client_max_size=MAX_BODY)
    app[keys.settings] = settings
    app[keys.clock] = clock or Clock()
    app[keys.state] = State(process_started=process_started or time.perf_counter())
    app[keys.routes] = []
    app[keys.request_observers] = observers
    app[keys.request_log] = request_log
    app[keys.health_checks] = {}
    app[keys.services] = {}
    app.cleanup_ctx.append(_database)
    health_views.setup(app)
    cache_views.setup(app)
    auth_views.setup(app)
    users_views.setup(app)
    metrics_views.setup(app)
    tasks_views.setup(app)
    app.on_startup.append(_started)
    return app
