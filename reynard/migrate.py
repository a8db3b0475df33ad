"""Versioned migrations from sql/migrations/NNNN_name.sql, each applied in one transaction.

The warm path is one query: read ``schema_migrations``; when every known migration is
recorded with a matching checksum, nothing else touches the schema.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from .queries import SQL_DIR

MIGRATIONS_DIR = SQL_DIR / "migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at REAL NOT NULL
) STRICT"""


class MigrationError(RuntimeError):
    """The database and the code disagree; starting would risk the data."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Status:
    applied: list[int]
    pending: list[int]
    known: int


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"migration file name not NNNN_name.sql: {path.name}")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text("utf-8")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return found


def _applied(conn: sqlite3.Connection) -> dict[int, str]:
    try:
        rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise
    return {row[0]: row[1] for row in rows}


def status(conn: sqlite3.Connection, migrations: list[Migration] | None = None) -> Status:
    """Compare the database with the code; raise MigrationError on a tampered or newer DB."""
    migrations = discover() if migrations is None else migrations
    applied = _applied(conn)
    known = {m.version: m for m in migrations}
    newer = sorted(v for v in applied if v not in known)
    if newer:
        raise MigrationError(
            f"database has migrations {newer} that this code does not know; "
            "it was written by a newer Reynard — upgrade the code, do not downgrade the data"
        )
    for version, checksum in sorted(applied.items()):
        if known[version].checksum != checksum:
            m = known[version]
            raise MigrationError(
                f"migration {version:04d}_{m.name}.sql was edited after it was applied "
                "(checksum differs); restore it and add a new migration instead"
            )
    pending = [m.version for m in migrations if m.version not in applied]
    return Status(sorted(applied), pending, len(migrations))


def _statements(sql: str) -> list[str]:
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise MigrationError(f"incomplete SQL statement at end of migration: {buffer[:60]!r}")
    return statements


def migrate(conn: sqlite3.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply pending migrations on an autocommit connection; return the versions applied."""
    migrations = discover() if migrations is None else migrations
    current = status(conn, migrations)
    if not current.pending:
        return []
    conn.execute(_TABLE)
    done = []
    for m in migrations:
        if m.version not in current.pending:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _applied(conn).get(m.version):  # another process got there first
                conn.execute("ROLLBACK")
                continue
            for statement in _statements(m.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
                " VALUES (?, ?, ?, ?)",
                (m.version, m.name, m.checksum, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        done.append(m.version)
    return done


def dump_schema(conn: sqlite3.Connection) -> str:
    """The schema as SQL text, in a stable order, for the schema.sql snapshot."""
    rows = conn.execute(
        "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        " ORDER BY tbl_name = 'schema_migrations', tbl_name, type DESC, name"
    ).fetchall()
    return "".join(f"{row[0]};\n\n" for row in rows).rstrip("\n") + "\n"


def open_and_migrate(
    path: str, migrations: list[Migration] | None = None
) -> tuple[list[int], float]:
    """Connect with the stdlib driver, set WAL, migrate; return (applied versions, ms taken)."""
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        applied = migrate(conn, migrations)
    finally:
        conn.close()
    return applied, (time.perf_counter() - started) * 1000
