"""SQLite plumbing: one writer thread that commits in groups, and a pool of reader threads.

Writes are operations ``op(tx, ...)`` (``sql``) queued to the writer. It takes every queued write
at once, runs each in its own SAVEPOINT inside one ``BEGIN IMMEDIATE`` transaction and commits once:
many concurrent sends cost one fsync. ``on_commit`` gets what the batch's writes published, in commit
order, on the event loop, before any caller resumes. Reads run on their own WAL connections in
threads, each read in one transaction so it sees one snapshot. Nothing here blocks the event loop.

Operations are coroutines, but ``SQLiteTx`` never suspends, so a thread runs one to its end with a
single ``send``: the same code serves the asynchronous PostgreSQL engine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from parley.relay.errors import RelayError, Unavailable, too_slow, unstorable
from parley.relay.models import Posted
from parley.relay.store.base import Row
from parley.relay.store.dialect import SQLITE

log = logging.getLogger("parley.relay.sqlite")

T = TypeVar("T")
Migration = tuple[int, str]
Op = Callable[..., Coroutine[Any, Any, Any]]

MAX_BATCH = 512
READ_THREADS = 3
READ_BUSY_MS = 3000


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> None:
    """Apply each numbered migration not yet recorded, each in its own transaction."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT version FROM _migrations")}
    for version, script in migrations:
        if version in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO _migrations VALUES (?, ?)", (version, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("applied migration %d", version)


def _statements(script: str) -> list[str]:
    """Split a script on complete statements (``CREATE TRIGGER`` bodies contain semicolons)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


class SQLiteTx:
    """``base.Tx`` on a sqlite3 connection: its methods return without ever suspending."""

    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.published: list[Posted] = []

    async def one(self, sql: str, **params: Any) -> Row | None:
        row: Row | None = self.conn.execute(sql, params).fetchone()
        return row

    async def all(self, sql: str, **params: Any) -> Sequence[Row]:
        return self.conn.execute(sql, params).fetchall()

    async def run(self, sql: str, **params: Any) -> int:
        return self.conn.execute(sql, params).rowcount

    def publish(self, posted: Posted) -> None:
        self.published.append(posted)


def run_now(operation: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, here and now."""
    try:
        operation.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    operation.close()
    raise RuntimeError("a SQLite operation suspended; only SQLiteTx may be awaited in it")


class _Write:
    __slots__ = ("args", "future", "kwargs", "op")

    def __init__(self, op: Op, args: tuple[Any, ...], kwargs: dict[str, Any], future: asyncio.Future[Any]) -> None:
        self.op, self.args, self.kwargs, self.future = op, args, kwargs, future


_STOP = object()


class SQLiteEngine:
    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        migrations: Sequence[Migration] = (),
        on_commit: Callable[[list[Posted]], None] | None = None,
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.migrations = migrations
        self.on_commit = on_commit
        self.batches = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: threading.Thread | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._slow: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        conn = await asyncio.to_thread(self._open_writer)
        self._pool = concurrent.futures.ThreadPoolExecutor(READ_THREADS, thread_name_prefix="parley-read")
        self._slow = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="parley-slow-read")
        self._writer = threading.Thread(target=self._write_loop, args=(conn,), name="parley-write", daemon=True)
        self._writer.start()

    def _open_writer(self) -> sqlite3.Connection:
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))  # its -wal and -shm files take the same mode
        conn = connect(self.path, self.synchronous)
        migrate(conn, self.migrations)
        return conn

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)
        for pool in (self._pool, self._slow):
            if pool is not None:
                pool.shutdown(wait=True)
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    # -- writes ---------------------------------------------------------------------------

    async def write(self, op: Op, /, *args: Any, **kwargs: Any) -> Any:
        if self._closed or self._loop is None:
            raise Unavailable("the relay is shutting down; retry shortly", retry_after=1)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._queue.put(_Write(op, args, kwargs, future))
        return await future

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                        break
                    batch.append(item)
                self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Write]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        published: list[Posted] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for item in batch:
                conn.execute("SAVEPOINT op")
                tx = SQLiteTx(conn)
                try:
                    outcomes.append((True, run_now(item.op(tx, *item.args, **item.kwargs))))
                    conn.execute("RELEASE op")
                    published += tx.published
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((False, unstorable(exc) if isinstance(exc, UnicodeEncodeError) else exc))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.exception("write batch failed")
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes, published = [(False, unavailable(exc))] * len(batch), []
        self.batches += 1
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._finish, batch, outcomes, published)

    def _finish(self, batch: list[_Write], outcomes: list[tuple[bool, Any]], published: list[Posted]) -> None:
        if self.on_commit is not None and published:
            try:
                self.on_commit(published)
            except Exception:
                log.exception("on_commit hook failed")
        for item, (ok, value) in zip(batch, outcomes, strict=True):
            if item.future.done():
                continue
            if ok:
                item.future.set_result(value)
            elif isinstance(value, RelayError):
                item.future.set_exception(value)
            else:
                log.error("write %s failed", getattr(item.op, "__name__", item.op), exc_info=value)
                item.future.set_exception(value)

    # -- reads ----------------------------------------------------------------------------

    async def read(self, op: Op, /, *args: Any, **kwargs: Any) -> Any:
        if self._closed or self._loop is None or self._pool is None:
            raise Unavailable("the relay is shutting down; retry shortly", retry_after=1)
        return await self._loop.run_in_executor(self._pool, self._run_read, op, args, kwargs, None)

    async def read_slow(self, seconds: float, op: Op, /, *args: Any) -> Any:
        """A read that may be costly (a search): on its own thread, so the readers stay free for everyone
        else, and interrupted after ``seconds``."""
        if self._closed or self._loop is None or self._slow is None:
            raise Unavailable("the relay is shutting down; retry shortly", retry_after=1)
        return await self._loop.run_in_executor(self._slow, self._run_read, op, args, {}, seconds)

    def _run_read(self, op: Op, args: tuple[Any, ...], kwargs: dict[str, Any], seconds: float | None) -> Any:
        conn = self._reader()
        if seconds is not None:
            deadline = time.monotonic() + seconds
            conn.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
        try:
            conn.execute("BEGIN")
            try:
                return run_now(op(SQLiteTx(conn), *args, **kwargs))
            finally:
                conn.execute("COMMIT")
        except UnicodeEncodeError as exc:
            raise unstorable(exc) from exc
        except sqlite3.OperationalError as exc:
            if seconds is not None and "interrupted" in str(exc):
                raise too_slow(seconds) from exc
            if _passing(exc):
                raise unavailable(exc) from exc
            raise
        finally:
            if seconds is not None:
                conn.set_progress_handler(None, 0)

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, self.synchronous)
            conn.execute("PRAGMA query_only=ON")
            # A reader waits less than the writer for a lock: a 503 in seconds beats a thread held for 30 s.
            conn.execute(f"PRAGMA busy_timeout={READ_BUSY_MS}")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn


def _passing(exc: sqlite3.OperationalError) -> bool:
    """Locked, busy, out of memory or disk, an I/O error: worth trying again later (not a bug in the SQL)."""
    name = getattr(exc, "sqlite_errorname", "")  # Python 3.11+
    if name:
        return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_NOMEM"))
    return any(word in str(exc) for word in ("locked", "busy", "disk", "memory"))


def unavailable(exc: sqlite3.Error) -> Unavailable:
    return Unavailable(f"the database could not answer ({exc}); retry shortly", retry_after=1)
