"""Migrations: from empty, warm start, tampering, newer databases, the schema snapshot."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reynard.migrate import (
    Migration,
    MigrationError,
    discover,
    dump_schema,
    migrate,
    open_and_migrate,
)

ROOT = Path(__file__).resolve().parent.parent
TABLES = {"users", "sessions", "cache_entries", "system_metrics", "background_tasks"}


def _conn(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_migrating_an_empty_file_creates_the_five_tables_and_records_each_migration(tmp_path):
    applied, _ = open_and_migrate(str(tmp_path / "a.db"))
    assert applied == [m.version for m in discover()]
    conn = _conn(tmp_path / "a.db")
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
    assert TABLES <= names
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (m.version, m.name, m.checksum) for m in discover()
    ]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_warm_start_does_no_schema_work(tmp_path):
    path = tmp_path / "a.db"
    open_and_migrate(str(path))
    statements: list[str] = []
    conn = _conn(path)
    conn.set_trace_callback(statements.append)
    assert migrate(conn) == []
    assert statements == ["SELECT version, checksum FROM schema_migrations"]


def test_an_edited_applied_migration_refuses_to_start(tmp_path):
    conn = _conn(tmp_path / "a.db")
    migrations = discover()
    migrate(conn, migrations)
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in migrations]
    with pytest.raises(MigrationError, match="edited after it was applied"):
        migrate(conn, edited)


def test_a_database_newer_than_the_code_refuses_to_start(tmp_path):
    conn = _conn(tmp_path / "a.db")
    migrate(conn)
    conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'x', 0)")
    with pytest.raises(MigrationError, match="newer Reynard"):
        migrate(conn)


def test_a_failing_migration_leaves_no_trace(tmp_path):
    conn = _conn(tmp_path / "a.db")
    good = discover()
    bad = Migration(len(good) + 1, "broken", "CREATE TABLE t (x INTEGER);\nSELECT * FROM nope;")
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, [*good, bad])
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
    assert "t" not in tables
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [m.version for m in good]


def test_schema_snapshot_matches_a_freshly_migrated_database():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn)
    snapshot = (ROOT / "schema.sql").read_text()
    body = snapshot.split("\n\n", 1)[1]
    assert body == dump_schema(conn), "schema.sql is stale: run python scripts/dump_schema.py"


def test_tables_are_strict_and_user_rows_cascade(tmp_path):
    conn = _conn(tmp_path / "a.db")
    migrate(conn)
    for table in TABLES:
        sql = conn.execute("SELECT sql FROM sqlite_schema WHERE name = ?", (table,)).fetchone()[0]
        assert "STRICT" in sql, table
    for table in ("sessions", "cache_entries"):
        fks = conn.execute(f"PRAGMA foreign_key_list({table})").fetchall()
        assert any(fk[2] == "users" and fk[6] == "CASCADE" for fk in fks), table
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO background_tasks (name, status, run_at, created_at, updated_at)"
            " VALUES ('x', 'bogus', 0, 0, 0)"
        )
