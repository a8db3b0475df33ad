"""Work the pool does on a plain sqlite3 connection: PRAGMAs, read and write transactions,
the group-commit batch runner and checkpoints. Nothing here awaits; the pool decides which
thread (the loop or a connection's own) runs it."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import dataclass
from typing import Any, Callable

RETRYABLE_ON_LOOP = {"SQLITE_INTERRUPT", "SQLITE_BUSY", "SQLITE_LOCKED"}


@dataclass
class Job:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future
    result: Any = None
    error: BaseException | None = None


def set_busy_timeout(conn: sqlite3.Connection, ms: int) -> None:
    """PRAGMAs take no bound parameters; this is the one place a value is put into one."""
    conn.execute(f"PRAGMA busy_timeout = {int(ms)}")


def configure(conn: sqlite3.Connection, synchronous: str, busy_ms: int, read_only: bool) -> None:
    conn.row_factory = sqlite3.Row
    set_busy_timeout(conn, busy_ms)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(
        "PRAGMA synchronous = FULL" if synchronous == "FULL" else "PRAGMA synchronous = NORMAL"
    )
    if read_only:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA journal_mode = WAL")


def rollback_quietly(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def in_read_tx(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], Any]) -> Any:
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        rollback_quietly(conn)


def passive_checkpoint(path: str, busy_ms: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        set_busy_timeout(conn, busy_ms)
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        conn.close()


def online_backup(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """A consistent copy of a live database (SQLite's backup API), written to ``target.partial``
    and renamed, so ``target`` is never a half-written file."""
    partial = f"{target}.partial"
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    os.replace(partial, target)


def gave_way(exc: BaseException) -> bool:
    """On the loop, a lock or the step budget means: roll back and hand over to the thread."""
    name = getattr(exc, "sqlite_errorname", "")
    return isinstance(exc, sqlite3.OperationalError) and name in RETRYABLE_ON_LOOP


def run_batch(conn: sqlite3.Connection, batch: list[Job], on_loop: bool = False) -> bool:
    """One transaction for the batch, one savepoint per job.

    Returns False only ``on_loop``, when the batch met a lock or ran out of steps: then it was
    rolled back whole and must be re-run on the writer thread (job functions only touch the
    database, so running one again after a rollback is safe).
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        if on_loop and gave_way(exc):
            return False
        for job in batch:
            job.error = exc
        return True
    done: list[Job] = []
    for job in batch:
        conn.execute("SAVEPOINT job")
        try:
            job.result = job.fn(conn)
            conn.execute("RELEASE job")
            done.append(job)
        except BaseException as exc:
            if on_loop and gave_way(exc):
                rollback_quietly(conn)
                return False
            job.error = exc
            if not conn.in_transaction:
                # SQLite rolled the whole transaction back (disk full, I/O error): the jobs
                # that looked done are undone too, and the rest must not run outside a tx.
                for other in batch:
                    if other.error is None:
                        other.error = exc
                return True
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        rollback_quietly(conn)
        if on_loop and gave_way(exc):
            return False
        for job in done:
            job.error = exc
            job.result = None
    return True
