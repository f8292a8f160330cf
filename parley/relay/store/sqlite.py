"""The embedded store: SQLite in WAL mode, one process, files in the data directory.

The relay's rules are the shared operations (``sql``); what is SQLite's own is here: token buckets
in memory, file bytes on disk, FTS5 search, and keys remembered between requests.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO, Literal

from parley import rules
from parley.relay.errors import InsufficientStorage, Unprocessable
from parley.relay.models import Caller, Posted, SearchHit, StoredFile, Upload
from parley.relay.ratelimit import Budget, RateLimiter
from parley.relay.settings import Settings
from parley.relay.store import sql
from parley.relay.store.base import FILE_CHUNK_BYTES, Subscriber, Tx
from parley.relay.store.lock import DataDirectoryLock
from parley.relay.store.sql_store import SEARCH_CANDIDATES, SEARCH_SECONDS, SQLStore
from parley.relay.store.sqlite_engine import SQLiteEngine
from parley.relay.store.sqlite_schema import MIGRATIONS

log = logging.getLogger("parley.relay")


async def _fts5_search(tx: Tx, caller: Caller, query: str, channel: str | None, limit: int) -> list[SearchHit]:
    match = rules.fts_query(query)
    if not match:
        raise Unprocessable("the search query has no words to search for", code="invalid_query")
    params = {**sql.who(tx, caller), "match": match, "limit": limit, "candidates": max(SEARCH_CANDIDATES, limit)}
    in_channel = ""
    if channel is not None:
        params["channel"] = (await sql.channel(tx, caller, channel)).id
        in_channel = " AND m.channel_id = :channel"
    # Newest first off the FTS5 doclist, visible ones only (reading no message text), ranked in the
    # database; only the best ``limit`` rows are read whole.
    rows = await tx.all(
        f"SELECT {sql.MESSAGE_COLUMNS}, r.rank FROM (SELECT id, rank FROM ("
        "  SELECT messages_fts.rowid AS id, bm25(messages_fts) AS rank FROM messages_fts"
        "  JOIN messages m ON m.id = messages_fts.rowid JOIN channels c ON c.id = m.channel_id"
        f"  WHERE messages_fts MATCH :match AND {sql.visible(tx, caller)}{in_channel}"
        "  ORDER BY messages_fts.rowid DESC LIMIT :candidates"
        f" ) ORDER BY rank, id DESC LIMIT :limit) r JOIN messages m ON m.id = r.id {sql.MESSAGE_JOINS}"
        " ORDER BY r.rank, m.id DESC",
        **params,
    )
    hits = []
    for row in rows:
        snippet = await tx.one(  # one seek each
            "SELECT snippet(messages_fts, 0, '[', ']', '…', 16) AS s FROM messages_fts"
            " WHERE messages_fts MATCH :match AND rowid = :id",
            match=match,
            id=row["id"],
        )
        hits.append(SearchHit(sql.message(tx, row), snippet["s"] if snippet else "", round(-row["rank"], 4)))
    return hits


async def _chunks(handle: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(handle.read, FILE_CHUNK_BYTES):
            yield chunk
    finally:
        handle.close()


class SQLiteStore(SQLStore):
    """The default store."""

    remembers_identities = True
    engine: SQLiteEngine

    def __init__(self, settings: Settings) -> None:
        engine = SQLiteEngine(
            settings.database_path,
            synchronous=settings.sqlite_synchronous,
            migrations=MIGRATIONS,
            on_commit=self._on_commit,
        )
        super().__init__(settings, engine)
        self._lock = DataDirectoryLock(settings.data_dir)
        self._blob_locks = [asyncio.Lock() for _ in range(64)]  # by digest
        self._limits = {kind: RateLimiter(*settings.rate_limit(kind), kind) for kind in ("write", "read")}

    async def start(self, subscriber: Subscriber) -> None:
        self._lock.acquire()
        self.subscriber = subscriber
        self.settings.files_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        await self.engine.start()
        referenced = set(await self.read(sql.file_digests))
        removed = await asyncio.to_thread(self._collect_orphans, referenced)
        if removed:
            log.warning("removed %d stored file(s) that no file record names (an upload cut off by a crash)", removed)

    async def close(self) -> None:
        await super().close()
        self._lock.release()

    def _on_commit(self, published: list[Posted]) -> None:
        if self.subscriber is not None:
            self.subscriber.publish(published)

    async def spend(self, bucket: int, kind: Literal["read", "write"]) -> Budget:
        """In memory: one process holds every bucket."""
        return self._limits[kind].take(bucket)

    async def _search(self, caller: Caller, query: str, channel: str | None, limit: int) -> list[SearchHit]:
        hits: list[SearchHit] = await self.engine.read_slow(SEARCH_SECONDS, _fts5_search, caller, query, channel, limit)
        return hits

    # -- files: content-addressed, in the data directory --------------------------------------

    def _blob_path(self, digest: str) -> Path:
        return self.settings.files_dir / digest[:2] / digest

    def _write_blob(self, digest: str, data: bytes) -> bool:
        """Keep the bytes under their digest; False if they were there already."""
        path = self._blob_path(digest)
        if path.exists():
            return False
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = path.with_suffix(f".{secrets.token_hex(4)}.part")
        try:
            with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise InsufficientStorage(
                    "the relay's disk is full; the file was not stored. Try again later", code="disk_full"
                ) from exc
            raise
        return True

    async def save_file(self, caller: Caller, channel: str, upload: Upload) -> StoredFile:
        """Bytes first (a record never names missing bytes), after every check a read can make; bytes this
        upload wrote are removed again if its record is refused. One upload of a digest at a time, so a
        refused one never removes bytes another has just recorded."""
        upload = await self.read(sql.upload_for, caller, channel, upload)
        async with self._blob_locks[int(upload.sha256[:8], 16) % len(self._blob_locks)]:
            wrote = await asyncio.to_thread(self._write_blob, upload.sha256, upload.data)
            try:
                return await self.write(sql.insert_file, caller, channel, upload)
            except BaseException:
                if wrote:
                    await asyncio.to_thread(self._blob_path(upload.sha256).unlink, missing_ok=True)
                raise

    async def open_file(self, caller: Caller, file_id: str) -> tuple[StoredFile, AsyncIterator[bytes]]:
        stored = await self.read(sql.file, caller, file_id)
        handle = await asyncio.to_thread(self._blob_path(stored.sha256).open, "rb")
        return stored, _chunks(handle)

    def _collect_orphans(self, referenced: set[str]) -> int:
        """Remove bytes no file record names, and partial writes (at start, before any upload runs)."""
        removed = 0
        for path in self.settings.files_dir.glob("*/*"):
            if path.name.endswith(".part") or path.name not in referenced:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    async def stats(self) -> dict[str, Any]:
        refusals = sum(limiter.refusals for limiter in self._limits.values())
        counts = await self.read(sql.counts)
        return {**counts, "write_batches": self.engine.batches, "rate_limit_refusals": refusals}
