"""Command line: parse flags, build settings, run a subcommand. Exit 2 on bad configuration."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sqlite3
import sys
import time

from .connections import online_backup
from .migrate import MigrationError, discover, open_and_migrate, status
from .settings import Settings, SettingsError, load_settings, log_level

log = logging.getLogger("reynard")


class _OneLineBadRequests(logging.Filter):
    """aiohttp logs a client's malformed HTTP with a traceback; keep it to one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        if record.exc_info and isinstance(record.exc_info[1], HttpProcessingError):
            reason = " ".join(str(record.exc_info[1]).split())[:200]
            record.msg, record.args = "%s: %s", (record.getMessage(), reason)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="SQLite file (REYNARD_DB, default reynard.db)")
    common.add_argument("--host", help="bind address (REYNARD_HOST, default 127.0.0.1)")
    common.add_argument("--port", help="bind port (REYNARD_PORT, default 8000)")
    common.add_argument(
        "--reload",
        action="store_true",
        default=None,
        help="restart when reynard/, sql/ or server.py change",
    )
    parser = argparse.ArgumentParser(
        prog="server.py",
        parents=[common],
        description="Reynard: a small backend on one SQLite file.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", parents=[common], help="serve HTTP (the default)")
    sub.add_parser("migrate", parents=[common], help="apply pending migrations and exit")
    admin = sub.add_parser(
        "create-admin",
        parents=[common],
        help="create an admin (password from REYNARD_ADMIN_PASSWORD or a prompt)",
    )
    admin.add_argument("username")
    admin.add_argument("--email", required=True)
    backup = sub.add_parser("backup", parents=[common], help="online, consistent copy of the DB")
    backup.add_argument("path")
    sub.add_parser("check", parents=[common], help="integrity check and migration status")
    return parser


def main(argv: list[str] | None = None, started: float | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(flags={"db": args.db, "host": args.host, "port": args.port})
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=log_level(settings),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.server").addFilter(_OneLineBadRequests())
    command = args.command or "serve"
    try:
        if command == "serve":
            if args.reload:
                from .reloader import run_with_reload

                return run_with_reload(sys.argv[1:])
            return serve(settings, started)
        if command == "migrate":
            applied, ms = open_and_migrate(settings.db)
            print(f"applied {len(applied)} migration(s) {applied} to {settings.db} in {ms:.0f} ms")
            return 0
        if command == "create-admin":
            from .accounts_cli import create_admin

            return create_admin(settings, args.username, args.email)
        if command == "backup":
            return backup(settings, args.path)
        return check(settings)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        print(f"error: database {settings.db!r}: {exc}", file=sys.stderr)
        return 1


def serve(settings: Settings, started: float | None = None) -> int:
    from aiohttp import web

    from .app import create_app

    if os.environ.get("REYNARD_RELOAD_CHILD") == "1":
        settings = dataclasses.replace(settings, reload_mode=True)
    try:
        import uvloop  # optional: +20-50% throughput where installed (see README)
    except ImportError:
        uvloop = None
    app = create_app(settings, process_started=started)

    def announce(_: str) -> None:
        log.info("serving on http://%s:%d (db=%s)", settings.host, settings.port, settings.db)

    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        shutdown_timeout=15,
        access_log=None,
        print=announce,
        loop=uvloop.new_event_loop() if uvloop else None,
    )
    log.info("stopped cleanly")
    return 0


def backup(settings: Settings, path: str) -> int:
    """Copy the live database with SQLite's online backup API into PATH (atomically)."""
    if os.path.abspath(path) == os.path.abspath(settings.db):
        print("error: the backup path is the database itself", file=sys.stderr)
        return 2
    if not os.path.exists(settings.db):
        print(f"error: no database at {settings.db}", file=sys.stderr)
        return 1
    started = time.perf_counter()
    online_backup(settings.db, path)
    print(
        f"backed up {settings.db} to {path} ({os.path.getsize(path)} bytes) in "
        f"{(time.perf_counter() - started) * 1000:.0f} ms"
    )
    return 0


def check(settings: Settings) -> int:
    """Integrity check plus migration status; exit 1 on any problem."""
    if not os.path.exists(settings.db):
        print(f"error: no database at {settings.db}", file=sys.stderr)
        return 1
    conn = sqlite3.connect(f"file:{settings.db}?mode=ro", uri=True)
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
        try:
            st = status(conn, discover())
        except MigrationError as exc:
            print(f"migrations: {exc}")
            return 1
    finally:
        conn.close()
    ok = problems == ["ok"] and not fk and not st.pending
    print(f"integrity: {'ok' if problems == ['ok'] else '; '.join(problems[:10])}")
    print(f"foreign keys: {'ok' if not fk else f'{len(fk)} violation(s)'}")
    print(f"migrations: {len(st.applied)} applied, {len(st.pending)} pending {st.pending or ''}")
    return 0 if ok else 1
