"""The embedded store: SQLite in WAL mode, one process, files in the data directory.

The relay's rules are the shared operations (``sql.py``); what is SQLite's own is here: token buckets
in memory, file bytes on disk, FTS5 search, and keys remembered between requests.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
from pathlib import Path
from typing import Any, Literal

from parley.relay import rules
from parley.relay.errors import InsufficientStorage, Unprocessable
from parley.relay.models import Caller, Posted, SearchHit, StoredFile, Upload
from parley.relay.ratelimit import Budget, RateLimiter
from parley.relay.settings import Settings
from parley.relay.store import sql
from parley.relay.store.base import Subscriber, Tx
from parley.relay.store.lock import DataDirectoryLock
from parley.relay.store.shared import SQLStore
from parley.relay.store.sqlite_engine import SQLiteEngine
from parley.relay.store.sqlite_schema import MIGRATIONS

#: Results are ranked among the newest matches, at least this many (all of them for rarer words): ranking
#: every match of a common word in a million messages would cost tens of milliseconds.
SEARCH_CANDIDATES = 500


async def _search(tx: Tx, caller: Caller, query: str, channel: str | None, limit: int) -> list[SearchHit]:
    match = rules.fts_query(query)
    if not match:
        raise Unprocessable("the search query has no words to search for", code="invalid_query")
    params = {**sql.who(tx, caller), "match": match}
    in_channel = ""
    if channel is not None:
        params["channel"] = (await sql.channel(tx, caller, channel)).id
        in_channel = " AND m.channel_id = :channel"
    candidates = max(SEARCH_CANDIDATES, limit * 10)
    while True:
        # The newest matches come straight off the FTS5 doclist in rowid order: no full scan.
        rows = await tx.all(
            f"SELECT {sql.MESSAGE_COLUMNS} FROM ("
            "  SELECT rowid FROM messages_fts WHERE messages_fts MATCH :match ORDER BY rowid DESC LIMIT :candidates"
            f") f JOIN messages m ON m.id = f.rowid {sql.MESSAGE_JOINS} WHERE {sql.visible(tx, caller)}{in_channel}",
            **params,
            candidates=candidates,
        )
        if len(rows) >= limit or not await tx.one(
            "SELECT 1 FROM messages_fts WHERE messages_fts MATCH :match LIMIT 1 OFFSET :n", match=match, n=candidates
        ):
            break
        candidates *= 10  # too few of the newest matches are visible to this caller: look further back
    scores = rules.relevance([row["content"] for row in rows], rules.search_terms(query))
    best = sorted(zip(scores, rows, strict=True), key=lambda pair: (-pair[0], -pair[1]["id"]))[:limit]
    hits = []
    for score, row in best:
        snippet = await tx.one(  # one seek each
            "SELECT snippet(messages_fts, 0, '[', ']', '…', 16) AS s FROM messages_fts"
            " WHERE messages_fts MATCH :match AND rowid = :id",
            match=match,
            id=row["id"],
        )
        hits.append(SearchHit(sql.message(tx, row), snippet["s"] if snippet else "", round(score, 4)))
    return hits


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
        self._subscriber: Subscriber | None = None
        self._lock = DataDirectoryLock(settings.data_dir)
        self._limits = {
            "write": RateLimiter(settings.write_rate, settings.write_burst, "write"),
            "read": RateLimiter(settings.read_rate, settings.read_burst, "read"),
        }

    async def start(self, subscriber: Subscriber) -> None:
        self._lock.acquire()
        self._subscriber = subscriber
        self.settings.files_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        await self.engine.start()

    async def close(self) -> None:
        await super().close()
        self._lock.release()

    def _on_commit(self, published: list[Posted]) -> None:
        if self._subscriber is not None:
            self._subscriber.publish(published)

    async def spend(self, bucket: int, kind: Literal["read", "write"]) -> Budget:
        """In memory: one process holds every bucket."""
        return self._limits[kind].take(bucket)

    async def search(self, caller: Caller, query: str, *, channel: str | None, limit: int) -> list[SearchHit]:
        return await self.read(_search, caller, query, channel, limit)

    # -- files: content-addressed, in the data directory --------------------------------------

    def _blob_path(self, digest: str) -> Path:
        return self.settings.files_dir / digest[:2] / digest

    def _write_blob(self, digest: str, data: bytes) -> None:
        path = self._blob_path(digest)
        if path.exists():
            return
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
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InsufficientStorage(
                    "the relay's disk is full; the file was not stored. Try again later", code="disk_full"
                ) from exc
            raise

    async def save_file(self, caller: Caller, channel: str, upload: Upload) -> StoredFile:
        await asyncio.to_thread(self._write_blob, upload.sha256, upload.data)
        return await self.write(sql.insert_file, caller, channel, upload)

    async def open_file(self, caller: Caller, file_id: str) -> tuple[StoredFile, bytes]:
        stored = await self.read(sql.file, caller, file_id)
        return stored, await asyncio.to_thread(self._blob_path(stored.sha256).read_bytes)

    async def stats(self) -> dict[str, Any]:
        refusals = sum(limiter.refusals for limiter in self._limits.values())
        counts = await self.read(sql.counts)
        return {**counts, "write_batches": self.engine.batches, "rate_limit_refusals": refusals}
