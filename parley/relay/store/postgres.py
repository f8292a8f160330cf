"""The PostgreSQL store: several relay replicas on one database.

The relay's rules are the shared operations (``sql``); what is PostgreSQL's own is here: token
buckets in a table so limits hold across replicas, file bytes in the database, ``tsvector`` search,
and turning a notification's message ids back into messages. Nothing is remembered between
requests, so a revoke on one replica holds on every replica at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from parley import rules
from parley.relay.errors import Unprocessable
from parley.relay.models import AgentRow, Caller, Draft, KeyRecord, Posted, SearchHit, StoredFile, Upload
from parley.relay.ratelimit import Budget
from parley.relay.settings import Settings
from parley.relay.store import sql
from parley.relay.store.base import FILE_CHUNK_BYTES, Row, Subscriber, Tx
from parley.relay.store.postgres_engine import Bulk, PostgresEngine, notify_sql
from parley.relay.store.postgres_schema import MIGRATIONS
from parley.relay.store.sql_store import SEARCH_CANDIDATES, SEARCH_SECONDS, SQLStore, Taken, budget


async def _tsvector_search(tx: Tx, caller: Caller, query: str, channel: str | None, limit: int) -> list[SearchHit]:
    if not rules.fts_query(query):
        raise Unprocessable("the search query has no words to search for", code="invalid_query")
    params = {**sql.who(tx, caller), "q": query, "limit": limit, "candidates": max(SEARCH_CANDIDATES, limit)}
    in_channel = ""
    if channel is not None:
        params["channel"] = (await sql.channel(tx, caller, channel)).id
        in_channel = " AND m.channel_id = :channel"
    await tx.run(f"SET LOCAL statement_timeout = {int(SEARCH_SECONDS * 1000)}")
    # The newest visible matches, ranked; only the best ``limit`` are read whole and highlighted.
    rows = await tx.all(
        "WITH q AS (SELECT websearch_to_tsquery('english', :q) AS q), candidates AS ("
        "  SELECT m.id, ts_rank_cd(m.content_tsv, q.q) AS rank FROM messages m"
        "  JOIN channels c ON c.id = m.channel_id, q"
        f"  WHERE m.content_tsv @@ q.q AND {sql.visible(tx, caller)}{in_channel} ORDER BY m.id DESC LIMIT :candidates)"
        f" SELECT {sql.MESSAGE_COLUMNS}, r.rank, ts_headline('english', m.content, q.q,"
        "  'StartSel=[, StopSel=], MaxFragments=1, MaxWords=16, MinWords=4') AS snippet"
        " FROM (SELECT * FROM candidates ORDER BY rank DESC, id DESC LIMIT :limit) r"
        f" JOIN messages m ON m.id = r.id {sql.MESSAGE_JOINS}, q ORDER BY r.rank DESC, m.id DESC",
        **params,
    )
    return [SearchHit(sql.message(tx, row), row["snippet"], round(float(row["rank"]), 4)) for row in rows]


async def _fetch_posted(tx: Tx, ids: list[int]) -> list[Posted]:
    """The messages a notification names, with the agents to wake beyond their channels."""
    rows = await tx.all(
        f"SELECT {sql.MESSAGE_COLUMNS}, ARRAY(SELECT agent_id FROM mentions WHERE message_id = m.id) AS mentioned,"
        " CASE WHEN c.type = 'dm' THEN ARRAY(SELECT agent_id FROM memberships WHERE channel_id = m.channel_id)"
        " ELSE '{}'::bigint[] END AS members"
        f" FROM {sql.MESSAGE_FROM} WHERE m.id = ANY(:ids) ORDER BY m.id",
        ids=ids,
    )
    return [
        Posted(sql.message(tx, row), replayed=False, notify_agents=tuple(sorted({*row["mentioned"], *row["members"]})))
        for row in rows
    ]


_POST_MANY = (
    "WITH input AS MATERIALIZED (SELECT * FROM unnest(:author::bigint[], :channel::text[], :content::text[],"
    "  :metadata::text[], :expects::text[], :client_msg_id::text[], :sealed::text[], :now::float8[])"
    "  WITH ORDINALITY AS t(author, channel, content, metadata, expects, client_msg_id, sealed, now, n)),"
    # Ids are taken here, under the writer's lock, as the shared INSERT takes them.
    " ok AS MATERIALIZED (SELECT nextval('message_ids') AS id, c.id AS channel_id, i.* FROM input i"
    "  JOIN channels c ON c.name = i.channel AND NOT c.archived AND c.type <> 'dm'"
    "   AND c.encrypted = (i.sealed IS NOT NULL)"
    "  WHERE EXISTS (SELECT 1 FROM memberships WHERE agent_id = i.author AND channel_id = c.id)),"
    # A client_msg_id already stored (or twice in this batch) is left to sql.post, which answers with the first.
    " inserted AS (INSERT INTO messages (id, channel_id, author_id, content, metadata, expects_reply, client_msg_id,"
    "  mentions, created_at, sealed) SELECT id, channel_id, author, content, metadata::jsonb, expects, client_msg_id,"
    "  '', now, sealed FROM ok ON CONFLICT DO NOTHING RETURNING id),"
    f" notified AS ({notify_sql('inserted')})"
    " SELECT ok.n, ok.id, ok.channel_id FROM ok JOIN inserted USING (id), notified"
)


def post_many(calls: list[tuple[Any, ...]]) -> Bulk | None:
    """``sql.post`` for a batch of posts in one statement, for the posts that need nothing but their channel
    (``sql.plain_post``). The rest, and any the statement does not store (no such channel, not a member,
    archived, the wrong kind of content, a retried ``client_msg_id``) are None: the writer hands them to
    ``sql.post``, which stores them or says why not."""
    posts: list[tuple[Caller, str, Draft]] = calls
    plain = [
        (i, name)
        for i, (caller, channel, draft) in enumerate(posts)
        if (name := sql.plain_post(caller, channel, draft))
    ]
    if not plain:
        return None
    now = time.time()
    drafts = [posts[i][2] for i, _ in plain]

    def results(rows: Sequence[Row]) -> list[Posted | None]:
        found: list[Posted | None] = [None] * len(posts)
        for row in rows:
            i, name = plain[row["n"] - 1]
            caller, _, draft = posts[i]
            expects = draft.expects_reply or "none"
            message = sql.stored_message(row["id"], row["channel_id"], name, caller, draft, now, expects)
            found[i] = Posted(message=message, replayed=False)
        return found

    params = {
        "author": [posts[i][0].agent_id for i, _ in plain],
        "channel": [name for _, name in plain],
        "content": [draft.content for draft in drafts],
        "metadata": [json.dumps(d.metadata, separators=(",", ":")) if d.metadata else None for d in drafts],
        "expects": [d.expects_reply or "none" for d in drafts],
        "client_msg_id": [d.client_msg_id for d in drafts],
        "sealed": [json.dumps(d.sealed, separators=(",", ":")) if d.sealed is not None else None for d in drafts],
        "now": [now] * len(plain),
    }
    return Bulk(_POST_MANY, params, results)


def _take(bucket: str) -> str:
    """Take a token from ``bucket``'s row (SQL for its id), returning the tokens there were before."""
    return (
        "UPDATE rate_buckets b SET tokens = s.available - CASE WHEN s.available >= 1 THEN 1 ELSE 0 END,"
        " refusals = b.refusals + CASE WHEN s.available >= 1 THEN 0 ELSE 1 END, updated_at = s.now"
        # A wall clock stepped backwards refills nothing and takes nothing: time starts again from now.
        " FROM (SELECT least(:burst, tokens + greatest(0, extract(epoch FROM clock_timestamp()) - updated_at) * :rate)"
        "  AS available, extract(epoch FROM clock_timestamp()) AS now FROM rate_buckets"
        f"  WHERE agent_id = {bucket} AND kind = :kind FOR UPDATE) s"
        f" WHERE b.agent_id = {bucket} AND b.kind = :kind RETURNING s.available"
    )


_TAKE = _take(":agent")
# The key and its agent (sql.identify), and a token from the bucket of the caller they make
# (access.caller) if the key is live; no row to take from yet is no take (spend creates it).
_IDENTIFY_AND_TAKE = (
    f"WITH found AS ({sql.IDENTIFY}), bucket AS (SELECT CASE WHEN kind = 'machine' THEN -id ELSE a_id END AS id"
    "  FROM found WHERE revoked_at IS NULL"
    "  AND (expires_at IS NULL OR expires_at > extract(epoch FROM clock_timestamp()))),"
    f" taken AS ({_take('(SELECT id FROM bucket)')})"
    " SELECT found.*, (SELECT id FROM bucket) AS bucket, (SELECT available FROM taken) AS available FROM found"
)


async def _identify_and_take(
    tx: Tx, digest: str, name: str | None, kind: str, rate: float, burst: int
) -> tuple[KeyRecord, AgentRow | None, Taken | None] | None:
    row = await tx.one(_IDENTIFY_AND_TAKE, digest=digest, name=name, kind=kind, rate=rate, burst=float(burst))
    if row is None:
        return None
    taken = Taken(row["bucket"], float(row["available"])) if row["available"] is not None else None
    return (*sql.identified(tx, row), taken)


async def _spend(tx: Tx, agent_id: int, kind: str, rate: float, burst: int) -> float:
    """Take a token atomically across replicas (one statement, its own transaction); returns the tokens there
    were before the take. A bucket's first take creates it."""
    params = {"agent": agent_id, "kind": kind, "rate": rate, "burst": float(burst)}
    row = await tx.one(_TAKE, **params)
    if row is None:
        await tx.run(
            "INSERT INTO rate_buckets (agent_id, kind, tokens, updated_at)"
            " VALUES (:agent, :kind, :burst, extract(epoch FROM clock_timestamp())) ON CONFLICT DO NOTHING",
            agent=agent_id,
            kind=kind,
            burst=float(burst),
        )
        row = await tx.one(_TAKE, **params)
    return float(row["available"]) if row is not None else 0.0


async def _refusals(tx: Tx) -> int:
    row = await tx.one("SELECT coalesce(sum(refusals), 0) AS n FROM rate_buckets")
    return int(row["n"]) if row is not None else 0


async def _insert_blob_and_file(tx: Tx, caller: Caller, channel: str, upload: Upload) -> StoredFile:
    """Bytes and record in one transaction (a refused upload leaves neither), checked before the bytes."""
    upload = await sql.upload_for(tx, caller, channel, upload)
    await tx.run(
        "INSERT INTO blobs (sha256, data) VALUES (:sha256, :data) ON CONFLICT DO NOTHING",
        sha256=upload.sha256,
        data=upload.data,
    )
    return await sql.insert_file(tx, caller, channel, upload)


async def _blob_chunk(tx: Tx, sha256: str, start: int) -> bytes:
    """``FILE_CHUNK_BYTES`` of a file's bytes from ``start`` (0-based); the column is stored uncompressed
    (migration 5), so PostgreSQL reads only the chunk's own pages."""
    row = await tx.one(
        "SELECT substring(data FROM :start FOR :count) AS chunk FROM blobs WHERE sha256 = :sha256",
        sha256=sha256,
        start=start + 1,
        count=FILE_CHUNK_BYTES,
    )
    return bytes(row["chunk"]) if row is not None else b""


class PostgresStore(SQLStore):
    """Chosen by ``parley up --database postgresql://...`` or ``PARLEY_DATABASE_URL``."""

    engine: PostgresEngine

    def __init__(self, settings: Settings) -> None:
        assert settings.database_url is not None
        super().__init__(settings, PostgresEngine(settings.database_url, MIGRATIONS, bulk={sql.post: post_many}))

    async def start(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber
        await self.engine.start(subscriber, _fetch_posted, sql.high_water, sql.revoked_keys)

    async def _announce_revoked(self, key_ids: list[int]) -> None:
        await super()._announce_revoked(key_ids)
        await self.engine.announce_revoked(key_ids)

    async def spend(self, bucket: int, kind: Literal["read", "write"]) -> Budget:
        available = await self.engine.direct(_spend, bucket, kind, *self.settings.rate_limit(kind))
        return budget(self.settings, kind, available)

    async def _identify(
        self, digest: str, agent_name: str | None, take: Literal["read", "write"] | None
    ) -> tuple[KeyRecord, AgentRow | None, Taken | None] | None:
        """Every request asks the database (a revoke on any replica holds at once), in one round trip that also
        takes the request's token (``take``) when the key is live: a request refused after that still pays."""
        if take is None:
            found = await self.engine.direct(sql.identify, digest, agent_name)
            return (*found, None) if found is not None else None
        found_and_taken: tuple[KeyRecord, AgentRow | None, Taken | None] | None = await self.engine.direct(
            _identify_and_take, digest, agent_name, take, *self.settings.rate_limit(take)
        )
        return found_and_taken

    async def _search(self, caller: Caller, query: str, channel: str | None, limit: int) -> list[SearchHit]:
        return await self.read(_tsvector_search, caller, query, channel, limit)

    async def save_file(self, caller: Caller, channel: str, upload: Upload) -> StoredFile:
        return await self.write(_insert_blob_and_file, caller, channel, upload)

    async def open_file(self, caller: Caller, file_id: str) -> tuple[StoredFile, AsyncIterator[bytes]]:
        stored = await self.read(sql.file, caller, file_id)
        return stored, self._chunks(stored)

    async def _chunks(self, stored: StoredFile) -> AsyncIterator[bytes]:
        for start in range(0, stored.size, FILE_CHUNK_BYTES):
            chunk = await self.read(_blob_chunk, stored.sha256, start)
            if not chunk:
                return
            yield chunk

    async def stats(self) -> dict[str, Any]:
        counts = await self.read(sql.counts)
        return {**counts, "write_batches": self.engine.batches, "rate_limit_refusals": await self.read(_refusals)}
