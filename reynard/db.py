"""The connection pool: one group-committing writer, N read-only readers, a guarded fast reader.

- Writes are queued and run in batches on the writer's thread: one ``BEGIN IMMEDIATE`` …
  ``COMMIT`` per batch, a savepoint per job, so one job's failure undoes only that job and a
  batch costs one thread hop and one commit (group commit).
- ``transaction()`` takes the writer exclusively for multi-step work that must await between
  statements.
- Reads run first on a stdlib connection on the event loop with a progress-handler budget; a
  query that exceeds it (or meets a lock) is interrupted and re-run on a reader thread, so an
  indexed point read costs microseconds and a slow one never blocks the loop for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

import aiosqlite

from .connections import (
    RETRYABLE_ON_LOOP,
    Job,
    configure,
    in_read_tx,
    passive_checkpoint,
    rollback_quietly,
    run_batch,
)
from .queries import Query

# The fast path's budget: progress-handler calls of FAST_READ_STEP VM steps each (~0.3 ms in all)
# before a read is moved to a reader thread. A coarse step keeps the handler off point reads.
FAST_READ_STEP = 8000
FAST_READ_BUDGET = 4
# Write batches run on the loop's own connection when synchronous=NORMAL (a commit is then a
# write() into the OS page cache, no fsync): no thread hop, no GIL hand-offs. A batch that needs
# more than LOOP_WRITE_BUDGET x LOOP_WRITE_STEP VM steps (~2-4 ms), or meets a lock, is rolled
# back and re-run on the writer thread, where waiting is harmless.
LOOP_WRITE_STEP = 8000
LOOP_WRITE_BUDGET = 40
# The loop's connection never checkpoints (that fsyncs); a thread does, past this much WAL.
WAL_CHECKPOINT_BYTES = 4 * 1024 * 1024
MAX_BATCH = 256


@dataclass
class PoolStats:
    reads: int = 0
    fast_reads: int = 0
    fast_fallbacks: int = 0
    reader_waits: int = 0
    reader_wait_seconds: float = 0.0
    writes: int = 0
    batches: int = 0
    largest_batch: int = 0
    loop_batches: int = 0
    loop_fallbacks: int = 0
    checkpoints: int = 0
    writer_waits: int = 0
    writer_wait_seconds: float = 0.0
    readers_in_use: int = 0
    extra: dict = field(default_factory=dict)


class Pool:
    """Connections to one SQLite file; see the module docstring for the design."""

    def __init__(
        self,
        path: str,
        *,
        readers: int = 4,
        synchronous: str = "NORMAL",
        busy_timeout_ms: int = 5000,
    ) -> None:
        self.path = path
        self.n_readers = readers
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self.stats = PoolStats()
        self._writer: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._fast: sqlite3.Connection | None = None
        self._steps = 0
        self._lock = asyncio.Lock()
        self._jobs: asyncio.Queue[Job | None] = asyncio.Queue()
        self._writer_task: asyncio.Task | None = None
        self._loop_writer: sqlite3.Connection | None = None
        self.write_generation = 0
        self._loop_steps = 0
        self._batches_since_wal_check = 0
        self._checkpointing: asyncio.Task | None = None

    async def _connect(self, read_only: bool) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None, check_same_thread=False)
        await conn._execute(
            configure, conn._conn, self.synchronous, self.busy_timeout_ms, read_only
        )
        return conn

    async def open(self) -> None:
        self._writer = await self._connect(read_only=False)
        for _ in range(self.n_readers):
            reader = await self._connect(read_only=True)
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)
        fast = sqlite3.connect(self.path, isolation_level=None)
        configure(fast, self.synchronous, 0, read_only=True)
        fast.set_progress_handler(self._progress, FAST_READ_STEP)
        self._fast = fast
        if self.synchronous != "FULL":  # FULL fsyncs every commit: keep that off the loop
            loop_writer = sqlite3.connect(self.path, isolation_level=None)
            configure(loop_writer, self.synchronous, 0, read_only=False)
            loop_writer.execute("PRAGMA wal_autocheckpoint = 0")
            loop_writer.set_progress_handler(self._loop_progress, LOOP_WRITE_STEP)
            self._loop_writer = loop_writer
        self._writer_task = asyncio.create_task(self._write_loop(), name="reynard-db-writer")

    async def close(self) -> None:
        """Finish queued writes, then close every connection — even if finishing fails, since
        aiosqlite's threads would otherwise keep the process alive after SIGTERM."""
        try:
            if self._writer_task is not None:
                self._jobs.put_nowait(None)
                await self._writer_task
            if self._checkpointing is not None:
                await self._checkpointing
        finally:
            self._writer_task = self._checkpointing = None
            for reader in self._all_readers:
                await reader.close()
            self._all_readers.clear()
            for conn in (self._fast, self._loop_writer):
                if conn is not None:
                    conn.close()
            self._fast = self._loop_writer = None
            if self._writer is not None:
                await self._writer.close()
                self._writer = None

    # ---- reads ---------------------------------------------------------------------------
    def _progress(self) -> int:
        self._steps += 1
        return self._steps > FAST_READ_BUDGET

    def data_version(self) -> int | None:
        """SQLite's ``data_version`` seen from the loop's read connection: it changes whenever
        another connection (our writers, or another process) commits. None when closed."""
        if self._fast is None:
            return None
        try:
            return self._fast.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return None

    async def fetch(self, query: Query, params: Any = ()) -> Any:
        """Run a read-only named query and shape its result by the query's mode."""
        self.stats.reads += 1
        if self._fast is not None:
            self._steps = 0
            try:
                result = query.run(self._fast, params)
                self.stats.fast_reads += 1
                return result
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorname", "") not in RETRYABLE_ON_LOOP:
                    raise
                self.stats.fast_fallbacks += 1
        return await self.read(lambda conn: query.run(conn, params))

    async def read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(conn)`` on a reader thread inside one read transaction (a consistent view)."""
        started = time.perf_counter()
        if self._readers.empty():
            self.stats.reader_waits += 1
        reader = await self._readers.get()
        self.stats.reader_wait_seconds += time.perf_counter() - started
        self.stats.readers_in_use += 1
        try:
            return await reader._execute(in_read_tx, reader._conn, fn)
        finally:
            self.stats.readers_in_use -= 1
            self._readers.put_nowait(reader)

    # ---- writes --------------------------------------------------------------------------
    async def write(self, query: Query, params: Any = ()) -> Any:
        """Run one named statement as its own atomic unit, group-committed with others."""
        return await self.write_fn(lambda conn: query.run(conn, params))

    async def write_fn(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(conn)`` on the writer thread, atomically: all of it commits or none does."""
        if self._writer_task is None:
            raise RuntimeError("pool is not open")
        future = asyncio.get_running_loop().create_future()
        self._jobs.put_nowait(Job(fn, future))
        return await future

    async def _write_loop(self) -> None:
        while True:
            job = await self._jobs.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < MAX_BATCH and not self._jobs.empty():
                nxt = self._jobs.get_nowait()
                if nxt is None:
                    self._jobs.put_nowait(None)  # finish this batch, then stop
                    break
                batch.append(nxt)
            await self._acquire_writer()
            try:
                if not self._run_on_loop(batch):
                    await self._writer._execute(run_batch, self._writer._conn, batch)
            except BaseException as exc:  # the thread hop itself failed
                for item in batch:
                    item.error = item.error or exc
            finally:
                self._lock.release()
            self.stats.writes += len(batch)
            self.stats.batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            for item in batch:
                if item.future.done():
                    continue
                if item.error is not None:
                    item.future.set_exception(item.error)
                else:
                    item.future.set_result(item.result)

    def _loop_progress(self) -> int:
        self._loop_steps += 1
        return self._loop_steps > LOOP_WRITE_BUDGET

    def _run_on_loop(self, batch: list[Job]) -> bool:
        """Try the batch on the loop's connection; False (nothing kept) means use the thread."""
        if self._loop_writer is None:
            return False
        self._loop_steps = 0
        if run_batch(self._loop_writer, batch, on_loop=True):
            self.stats.loop_batches += 1
            self._batches_since_wal_check += 1
            if self._batches_since_wal_check >= 64:
                self._batches_since_wal_check = 0
                self._maybe_checkpoint()
            return True
        for job in batch:
            job.result = job.error = None
        self.stats.loop_fallbacks += 1
        return False

    def _maybe_checkpoint(self) -> None:
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        if self.file_sizes()[1] >= WAL_CHECKPOINT_BYTES:
            self._checkpointing = asyncio.create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        """A PASSIVE checkpoint on its own connection in a thread: writers and readers go on."""
        try:
            await asyncio.to_thread(passive_checkpoint, self.path, self.busy_timeout_ms)
            self.stats.checkpoints += 1
        except sqlite3.Error:  # the next check tries again; the WAL only grows meanwhile
            pass

    async def _acquire_writer(self) -> None:
        if self._lock.locked():
            self.stats.writer_waits += 1
        started = time.perf_counter()
        await self._lock.acquire()
        self.write_generation += 1  # this process is about to write (reynard/readcache.py)
        self.stats.writer_wait_seconds += time.perf_counter() - started

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Exclusive use of the writer: ``BEGIN IMMEDIATE``, then COMMIT or ROLLBACK."""
        await self._acquire_writer()
        try:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._writer)
            except BaseException:
                await self._writer._execute(rollback_quietly, self._writer._conn)
                raise
            await self._writer.execute("COMMIT")
            self.stats.writes += 1
        finally:
            if self._writer is not None and self._writer.in_transaction:
                await self._writer._execute(rollback_quietly, self._writer._conn)
            self._lock.release()

    async def outside_transaction(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(conn)`` on the writer with no transaction open, holding it exclusively.

        For maintenance SQLite will not do inside a transaction (``PRAGMA wal_checkpoint``).
        """
        if self._writer is None:
            raise RuntimeError("pool is not open")
        await self._acquire_writer()
        try:
            return await self._writer._execute(fn, self._writer._conn)
        finally:
            self._lock.release()

    def figures(self) -> dict[str, Any]:
        s = self.stats
        return {
            "readers": self.n_readers,
            "readers_in_use": s.readers_in_use,
            "reader_waits": s.reader_waits,
            "reads": s.reads,
            "fast_reads": s.fast_reads,
            "fast_fallbacks": s.fast_fallbacks,
            "writes": s.writes,
            "write_batches": s.batches,
            "largest_batch": s.largest_batch,
            "loop_write_batches": s.loop_batches,
            "loop_write_fallbacks": s.loop_fallbacks,
            "checkpoints": s.checkpoints,
            "writer_waits": s.writer_waits,
            "queued_writes": self._jobs.qsize(),
        }

    def file_sizes(self) -> tuple[int, int]:
        """Bytes of the database file and of its WAL (0 when absent)."""
        sizes = []
        for suffix in ("", "-wal"):
            try:
                sizes.append(os.path.getsize(self.path + suffix))
            except OSError:
                sizes.append(0)
        return sizes[0], sizes[1]


class Transaction:
    """Statements inside ``Pool.transaction()``; each is one awaited call."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def run(self, query: Query, params: Any = ()) -> Any:
        return await self._conn._execute(query.run, self._conn._conn, params)

    async def call(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        return await self._conn._execute(fn, self._conn._conn)
