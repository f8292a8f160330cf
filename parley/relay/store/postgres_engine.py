"""PostgreSQL plumbing: a read pool, one batching writer per replica, and a LISTEN connection.

Writes: each replica's writer takes every queued write and commits them together, in a transaction
that first takes a cluster-wide advisory lock. The lock makes message ids (from a sequence) commit
in id order across replicas, so a cursor built from a snapshot can never pass an id that is still
uncommitted. A transaction ends with ``pg_notify`` of its new message ids. Round trips are what a
replica pays for, in CPU and in time under the lock, so a batch takes few: its plain posts in one
statement (an operation's bulk form) sent with BEGIN, the lock and COMMIT as one round trip; the
other writes in a second transaction, BEGIN with the lock, each write, the notification with COMMIT.
Only if one of those fails is that transaction run again with a savepoint per write.

Wake-ups: one LISTEN connection per replica, however many waits are parked; each notification is
handed to the hub in commit order, its messages fetched with one query (or, for this replica's own
commits, taken from what the writer stored). If the listener loses the database it wakes every
parked wait to read again, and after reconnecting tells the hub which ids it may have missed. Reads
use a pool of read-only REPEATABLE READ connections (one snapshot per read).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import re
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from parley.extras import missing

try:
    import psycopg
    from psycopg.rows import dict_row
    from psycopg.types.json import JsonbDumper
    from psycopg_pool import AsyncConnectionPool, PoolTimeout
except ImportError as exc:
    raise missing("postgres", "the PostgreSQL store", exc) from exc

from parley.relay.errors import RelayError, Unavailable, too_slow, unstorable
from parley.relay.models import Posted
from parley.relay.store.base import Row, Subscriber, Tx
from parley.relay.store.dialect import POSTGRES
from parley.relay.store.sql_store import SEARCH_SECONDS

log = logging.getLogger("parley.relay.postgres")

Conn = psycopg.AsyncConnection[dict[str, Any]]
Op = Callable[..., Coroutine[Any, Any, Any]]

WRITE_LOCK = 0x7061726C6579  # "parley"
MIGRATION_LOCK = WRITE_LOCK + 1
CHANNEL = "parley_messages"
#: A notification of revoked keys (``r:<id>,<id>``) rather than of messages, on the same channel.
REVOKED = "r:"
MAX_BATCH = 256
MAX_REMEMBERED = 10_000
#: Turns of the event loop a notification waits for this replica's writer to record a commit it has just made
#: (its answer and the notification arrive together): 3 took the share fetched back from 30% to under 1%.
WRITER_TURNS = 3
POOL_TIMEOUT = 5.0
_DOWN = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)


def unavailable(exc: BaseException) -> Unavailable:
    return Unavailable(f"the database is unavailable ({type(exc).__name__}); retry shortly", retry_after=2)


def translate(exc: Exception) -> Exception:
    """A value PostgreSQL refuses (e.g. a NUL byte in text) is the client's error, not a 500."""
    return unstorable(exc) if isinstance(exc, (psycopg.DataError, UnicodeEncodeError)) else exc


_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=1024)
def pyformat(sql: str) -> bytes:
    """``:name`` parameters (both databases' SQL in ``sql``) as psycopg's ``%(name)s``."""
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%")).encode()


class PostgresTx:
    """``base.Tx`` on a psycopg connection inside a transaction (or a savepoint)."""

    dialect = POSTGRES

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.published: list[Posted] = []

    async def one(self, sql: str, **params: Any) -> Row | None:
        cursor = await self.conn.execute(pyformat(sql), params)
        return await cursor.fetchone()

    async def all(self, sql: str, **params: Any) -> Sequence[Row]:
        cursor = await self.conn.execute(pyformat(sql), params)
        return await cursor.fetchall()

    async def run(self, sql: str, **params: Any) -> int:
        cursor = await self.conn.execute(pyformat(sql), params)
        return cursor.rowcount

    def publish(self, posted: Posted) -> None:
        self.published.append(posted)


async def _configure(conn: Conn) -> None:
    conn.adapters.register_dumper(dict, JsonbDumper)  # JSON objects (message metadata) go in as jsonb


async def _counters(conn: Conn) -> None:
    """Connections for rate-limit counters: their commits need not wait for the WAL flush. A crash may forget
    a few milliseconds of token accounting, which grants a few requests more; messages, keys and everything
    else are written by the writer, with ``synchronous_commit`` on."""
    await _configure(conn)
    await conn.execute("SET synchronous_commit = off")


async def _read_only(conn: Conn) -> None:
    await _configure(conn)
    await conn.set_read_only(True)
    await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)


_LOCK = f"SELECT pg_advisory_xact_lock({WRITE_LOCK})"
_BEGIN = f"BEGIN; {_LOCK}"


@dataclasses.dataclass(frozen=True)
class Bulk:
    """An operation's calls in one statement, which also notifies every replica of the messages it stores
    (``notify_sql``), and the result of each call from its rows (None: run that call on its own)."""

    sql: str
    params: dict[str, Any]
    results: Callable[[Sequence[Row]], list[Any]]


#: The form of an operation for many calls at once: a Bulk, or None if none of the calls suits it.
BulkOp = Callable[[list[tuple[Any, ...]]], Bulk | None]


def notify_sql(ids: str) -> str:
    """SQL that notifies the listeners of the message ids in the CTE or table ``ids`` (column ``id``), if any."""
    return f"SELECT pg_notify('{CHANNEL}', string_agg(id::text, ',' ORDER BY id)) FROM {ids} HAVING count(*) > 0"


def _commit(ids: list[int]) -> str:
    """COMMIT, after telling every replica's listener which messages it makes visible (ids are integers)."""
    return f"SELECT pg_notify('{CHANNEL}', '{','.join(map(str, ids))}'); COMMIT" if ids else "COMMIT"


async def _notify(tx: Tx, payload: str) -> None:
    await tx.run(f"SELECT pg_notify('{CHANNEL}', :payload)", payload=payload)


class _Redo(Exception):
    """A write of an unguarded batch failed: roll it back and run the batch with a savepoint per write."""


@dataclasses.dataclass(frozen=True)
class _Write:
    op: Op
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: asyncio.Future[Any]


def _settle(item: _Write, ok: bool, value: Any) -> None:
    if item.future.done():
        return
    if ok:
        item.future.set_result(value)
        return
    if not isinstance(value, RelayError):
        log.error("write %s failed", getattr(item.op, "__name__", item.op), exc_info=value)
    item.future.set_exception(value)


class PostgresEngine:
    def __init__(self, url: str, migrations: list[tuple[int, str]], bulk: dict[Op, BulkOp] | None = None) -> None:
        self.url = url
        self.migrations = migrations
        self.bulk = bulk or {}
        self.batches = 0
        self._reads: AsyncConnectionPool[Conn] | None = None
        self._rw: AsyncConnectionPool[Conn] | None = None
        self._writer: Conn | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.listening = asyncio.Event()
        #: Messages this replica committed, until the listener hears of them: published in commit order with
        #: every replica's, without fetching them back. (Heard of first, they are fetched like any other.)
        self._mine: dict[int, Posted] = {}

    async def start(
        self,
        subscriber: Subscriber,
        fetch: Callable[[Tx, list[int]], Coroutine[Any, Any, list[Posted]]],
        high_water: Callable[[Tx], Coroutine[Any, Any, int]],
        revoked_keys: Callable[[Tx], Coroutine[Any, Any, list[int]]],
    ) -> None:
        await self._migrate()
        self._reads = AsyncConnectionPool(
            self.url, min_size=2, max_size=10, kwargs={"row_factory": dict_row}, configure=_read_only, open=False
        )
        self._rw = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=10,
            kwargs={"row_factory": dict_row, "autocommit": True},
            configure=_counters,
            open=False,
        )
        await self._reads.open(wait=True, timeout=30)
        await self._rw.open(wait=True, timeout=30)
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="parley-pg-writer"),
            asyncio.create_task(
                self._listen_loop(subscriber, fetch, high_water, revoked_keys), name="parley-pg-listener"
            ),
        ]
        await asyncio.wait_for(self.listening.wait(), timeout=30)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._queue.put(None)
        for task in self._tasks:
            if task.get_name() == "parley-pg-listener":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._writer is not None:
            await self._writer.close()
        for pool in (self._reads, self._rw):
            if pool is not None:
                await pool.close()

    async def _migrate(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS parley_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ"
                    " NOT NULL DEFAULT now())"
                )
                done = {
                    row[0] for row in await (await conn.execute("SELECT version FROM parley_migrations")).fetchall()
                }
                for version, script in self.migrations:
                    if version in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(script.encode())
                        await conn.execute("INSERT INTO parley_migrations (version) VALUES (%s)", (version,))
                    log.info("applied migration %d", version)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    # -- reads and small independent writes ---------------------------------------------------

    async def read(self, op: Op, /, *args: Any, **kwargs: Any) -> Any:
        if self._closed or self._reads is None:
            raise Unavailable("the relay is shutting down; retry shortly", retry_after=1)
        for attempt in (1, 2):  # after a database restart the pool may hand out one dead connection
            try:
                async with self._reads.connection(timeout=POOL_TIMEOUT) as conn, conn.transaction():
                    return await op(PostgresTx(conn), *args, **kwargs)
            except psycopg.errors.QueryCanceled as exc:  # a search's statement_timeout
                raise too_slow(SEARCH_SECONDS) from exc
            except psycopg.OperationalError as exc:
                if attempt == 2:
                    raise unavailable(exc) from exc
            except _DOWN as exc:
                raise unavailable(exc) from exc
            except (psycopg.DataError, UnicodeEncodeError) as exc:
                raise translate(exc) from exc
        raise AssertionError("unreachable")

    async def direct(self, op: Op, /, *args: Any) -> Any:
        """Statements outside the writer, each its own transaction (autocommit), in one round trip each: a
        request's key lookup with its rate-limit take (one atomic statement), the listener's fetch of the
        messages a notification names (one read)."""
        if self._closed or self._rw is None:
            raise Unavailable("the relay is shutting down; retry shortly", retry_after=1)
        for attempt in (1, 2):
            try:
                async with self._rw.connection(timeout=POOL_TIMEOUT) as conn:
                    return await op(PostgresTx(conn), *args)
            except psycopg.OperationalError as exc:
                if attempt == 2:
                    raise unavailable(exc) from exc
            except _DOWN as exc:
                raise unavailable(exc) from exc
        raise AssertionError("unreachable")

    # -- the writer ---------------------------------------------------------------------------

    async def announce_revoked(self, key_ids: list[int]) -> None:
        """Tell every replica's listener that these keys were revoked (their waits and streams end)."""
        payload = REVOKED + ",".join(str(int(key_id)) for key_id in key_ids)
        await self.direct(_notify, payload)

    async def write(self, op: Op, /, *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise Unavailable("the relay is shutting down; retry shortly", retry_after=1)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Write(op, args, kwargs, future))
        return await future

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    await self._run_batch(batch)
                    return
                batch.append(item)
            await self._run_batch(batch)

    async def _writer_connection(self) -> Conn:
        """Autocommit: the writer sends its own BEGIN and COMMIT, in one round trip with the statements beside
        them (a pipeline, or a simple query of several statements)."""
        if self._writer is None or self._writer.closed:
            self._writer = await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row, autocommit=True)
            await _configure(self._writer)
        return self._writer

    async def _run_batch(self, batch: list[_Write]) -> None:
        rest = await self._run_bulk(batch)
        if rest:
            await self._run_each(rest)
        self.batches += 1

    async def _run_bulk(self, batch: list[_Write]) -> list[_Write]:
        """The writes whose operation has a bulk form, stored by it; returns the rest, for ``_run_each``."""
        rest = batch
        for op, bulk_form in self.bulk.items():
            calls = [item for item in rest if item.op is op and not item.kwargs]
            bulk = bulk_form([item.args for item in calls]) if calls else None
            if bulk is not None:
                done = await self._commit_bulk(bulk, calls)
                rest = [item for item in rest if id(item) not in done]
        return rest

    async def _commit_bulk(self, bulk: Bulk, calls: list[_Write]) -> set[int]:
        """One transaction sent as one round trip (BEGIN, the lock, the statement, COMMIT), so the lock is never
        held across a round trip to this busy process. Settles the calls it stored (or whose fate it cannot
        know) and returns their ``id``; after a failure that stored nothing, none (``_run_each`` says why)."""
        try:
            conn = await self._writer_connection()
        except _DOWN:
            return set()  # nothing was sent
        try:
            async with conn.pipeline():
                await conn.execute("BEGIN")
                await conn.execute(_LOCK)
                cursor = await conn.execute(pyformat(bulk.sql), bulk.params)
                await conn.execute("COMMIT")
        except _DOWN as exc:
            await self._drop_writer(exc)
            outcomes: list[tuple[bool, Any]] = [(False, unavailable(exc))] * len(calls)  # the clients retry
        except Exception as exc:  # nothing committed (e.g. a value PostgreSQL refuses): each write on its own says
            log.info("a bulk write failed (%s); its writes run one by one", type(exc).__name__)
            await self._rollback()
            return set()
        else:
            try:
                results = bulk.results(await cursor.fetchall())
                outcomes = [(result is not None, result) for result in results]
                self._remember([result for result in results if isinstance(result, Posted)])
            except Exception as exc:  # committed, but the answers are lost: the clients retry
                outcomes = [(False, exc)] * len(calls)
        done = set()
        for item, (ok, value) in zip(calls, outcomes, strict=True):
            if ok or value is not None:
                _settle(item, ok, value)
                done.add(id(item))
        return done

    async def _rollback(self) -> None:
        if self._writer is None or self._writer.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            return
        try:
            await self._writer.execute("ROLLBACK")
        except _DOWN as exc:
            await self._drop_writer(exc)

    def _remember(self, published: list[Posted]) -> None:
        if len(self._mine) > MAX_REMEMBERED:  # their notifications went to a fetch, or were lost
            self._mine.clear()
        self._mine.update((posted.message.id, posted) for posted in published)

    async def _drop_writer(self, exc: BaseException) -> None:
        log.warning("write batch failed: %s", exc)
        if self._writer is not None:
            await self._writer.close()
        self._writer = None

    async def _run_each(self, batch: list[_Write]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        guarded = False  # savepoints only once a write has failed: most batches need none
        retried = False
        while True:
            started = False
            try:
                conn = await self._writer_connection()
                await conn.execute(_BEGIN)
                started = True
                try:
                    outcomes, published = await self._run_items(conn, batch, guarded)
                    if not guarded and not all(ok for ok, _ in outcomes):
                        raise _Redo  # a write failed and spoilt the transaction
                    await conn.execute(_commit([posted.message.id for posted in published]))
                    self._remember(published)
                except Exception:
                    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        await conn.execute("ROLLBACK")
                    raise
                break
            except _Redo:
                guarded = True  # rolled back: run the batch again, each write in a savepoint
            except _DOWN as exc:
                await self._drop_writer(exc)
                # Nothing ran yet (a dead connection found at BEGIN): safe to try once more. After that,
                # whether the commit happened is unknown; the client retries (client_msg_id dedupes).
                if started or retried:
                    outcomes = [(False, unavailable(exc))] * len(batch)
                    break
                retried = True
            except Exception as exc:  # the database refused the COMMIT itself: nothing was stored
                log.error("write batch failed", exc_info=exc)
                outcomes = [(False, translate(exc))] * len(batch)
                break
        for item, (ok, value) in zip(batch, outcomes, strict=True):
            _settle(item, ok, value)

    async def _run_items(
        self, conn: Conn, batch: list[_Write], guarded: bool
    ) -> tuple[list[tuple[bool, Any]], list[Posted]]:
        """Run each write in the batch's transaction. Unguarded (the common case, every write succeeding), they
        run back to back; guarded, each in a savepoint, so that one failure spoils nothing else."""
        outcomes: list[tuple[bool, Any]] = []
        published: list[Posted] = []
        for item in batch:
            tx = PostgresTx(conn)
            try:
                if guarded:
                    async with conn.transaction():
                        value = await item.op(tx, *item.args, **item.kwargs)
                else:
                    value = await item.op(tx, *item.args, **item.kwargs)
                outcomes.append((True, value))
                published += tx.published
            except _DOWN:
                raise
            except Exception as exc:
                outcomes.append((False, translate(exc)))
                if not guarded:
                    break  # the transaction is spoilt: the batch is run again, guarded
        return outcomes, published

    # -- wake-ups -----------------------------------------------------------------------------

    async def _listen_loop(
        self,
        subscriber: Subscriber,
        fetch: Callable[[Tx, list[int]], Coroutine[Any, Any, list[Posted]]],
        high_water: Callable[[Tx], Coroutine[Any, Any, int]],
        revoked_keys: Callable[[Tx], Coroutine[Any, Any, list[int]]],
    ) -> None:
        delay = 0.1
        while not self._closed:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    # Listening again: whatever committed while we were away, waits must read.
                    self._mine.clear()
                    subscriber.revoke(await self.read(revoked_keys))  # including any revoked while away
                    subscriber.resync(await self.read(high_water))
                    self.listening.set()
                    delay = 0.1
                    async for note in conn.notifies():
                        if note.payload.startswith(REVOKED):
                            subscriber.revoke(int(i) for i in note.payload.removeprefix(REVOKED).split(","))
                            continue
                        ids = [int(i) for i in note.payload.split(",") if i]
                        for _ in range(WRITER_TURNS):  # the writer may have this very commit's answer queued
                            if all(i in self._mine for i in ids):
                                break
                            await asyncio.sleep(0)
                        mine = [self._mine.pop(i, None) for i in ids]
                        if all(mine):  # this replica's own commit: its messages are in hand
                            subscriber.publish(posted for posted in mine if posted is not None)
                        else:
                            subscriber.publish(await self.direct(fetch, ids))  # one statement: no transaction
            except asyncio.CancelledError:
                return
            except (*_DOWN, Unavailable) as exc:
                log.warning("lost the database's notifications (%s); reconnecting", exc)
                subscriber.resync(0)  # wake parked waits; they read again
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
