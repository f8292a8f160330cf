"""The PostgreSQL store: several relay replicas on one database.

Same semantics as the SQLite store (the shared test suite holds both to them), with PostgreSQL's own
strengths: ``tsvector`` search with a GIN index, LISTEN/NOTIFY wake-ups, an advisory lock that
orders commits, token buckets in a table so rate limits hold across replicas, files in the database.
Nothing is cached between requests, so a revoke on one replica holds on every replica at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any, Literal

from psycopg.types.json import Jsonb

from parley.relay import rules
from parley.relay.errors import Conflict, Forbidden, NotFound, RateLimited, Unauthorized, Unprocessable
from parley.relay.models import Agent, Caller, Claim, KeyRecord, Message, Page, Posted, StoredFile
from parley.relay.ratelimit import Budget
from parley.relay.settings import Settings
from parley.relay.store import policy
from parley.relay.store.base import Subscriber
from parley.relay.store.postgres_engine import Conn, PostgresEngine
from parley.relay.store.postgres_schema import MIGRATIONS

Row = dict[str, Any]

_MESSAGE_COLUMNS = """
    m.id, m.channel_id, c.name AS channel, a.name AS author, m.content, m.metadata, m.parent_id,
    m.expects_reply, m.created_at, m.mentions
"""
_MESSAGE_JOINS = "JOIN channels c ON c.id = m.channel_id JOIN agents a ON a.id = m.author_id"
_MESSAGE_FROM = f"messages m {_MESSAGE_JOINS}"
_IN_SCOPE = "(%(scope)s::text[] IS NULL OR c.type = 'dm' OR c.name = ANY(%(scope)s::text[]))"
_VISIBLE = "(NOT c.private OR c.id IN (SELECT channel_id FROM memberships WHERE agent_id = %(me)s)) AND " + _IN_SCOPE


def _message(row: Row) -> Message:
    return policy.message_from_row(row, row["metadata"] or None)


def _key(row: Row) -> KeyRecord:
    return policy.key_from_row(row, tuple(row["channels"]) if row["channels"] is not None else None)


def _params(caller: Caller, **extra: Any) -> dict[str, Any]:
    scope = sorted(caller.scope) if caller.scope is not None else None
    return {"me": caller.agent_id, "my_name": caller.name, "scope": scope, **extra}


async def _one(conn: Conn, sql: str, params: Any = None) -> Row | None:
    cursor = await conn.execute(sql.encode(), params)
    return await cursor.fetchone()


async def _all(conn: Conn, sql: str, params: Any = None) -> list[Row]:
    cursor = await conn.execute(sql.encode(), params)
    return await cursor.fetchall()


async def _high_water(conn: Conn) -> int:
    row = await _one(conn, "SELECT coalesce(max(id), 0) AS high FROM messages")
    return int(row["high"]) if row else 0


async def _is_member(conn: Conn, agent_id: int, channel_id: int) -> bool:
    sql = "SELECT 1 FROM memberships WHERE agent_id = %s AND channel_id = %s"
    return await _one(conn, sql, (agent_id, channel_id)) is not None


async def _join(conn: Conn, agent_id: int, channel_id: int, now: float) -> bool:
    cursor = await conn.execute(
        "INSERT INTO memberships (agent_id, channel_id, joined_at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (agent_id, channel_id, now),
    )
    return cursor.rowcount == 1


async def _channel(conn: Conn, caller: Caller, name: str) -> Row:
    policy.check_scope(caller, name)
    row = await _one(conn, "SELECT * FROM channels WHERE name = %s", (name,))
    granted = caller.scope is not None and name in caller.scope
    if row is None or (row["private"] and not granted and not await _is_member(conn, caller.agent_id, row["id"])):
        raise NotFound(f"no channel named '{name}'", code="channel_not_found")
    return row


async def _load_message(conn: Conn, message_id: int) -> Message:
    row = await _one(conn, f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.id = %s", (message_id,))
    assert row is not None
    return _message(row)


async def _agent_id(conn: Conn, name: str) -> int:
    row = await _one(conn, "SELECT id FROM agents WHERE name = %s", (name,))
    if row is None:
        raise NotFound(f"no agent named '{name}'", code="agent_not_found")
    return int(row["id"])


# -- writes (in the writer's transaction, one savepoint each) --------------------------------


async def _create_key(
    conn: Conn,
    kind: str,
    machine: str | None,
    agent_name: str | None,
    channels: list[str] | None,
    expires_in: float | None,
) -> tuple[KeyRecord, str]:
    now = time.time()
    if kind == "machine":
        active = await _one(
            conn,
            "SELECT 1 FROM keys WHERE machine = %s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > %s)",
            (machine, now),
        )
        if active:
            raise Conflict(
                f"machine '{machine}' already has an active key; revoke it first to rotate", code="machine_key_exists"
            )
    else:
        row = await _one(conn, "SELECT key_id FROM agents WHERE name = %s", (agent_name,))
        if row is not None and row["key_id"] is not None:
            raise Conflict(f"'{agent_name}' is registered under a machine key; pick another name", code="name_taken")
        if row is None:
            await conn.execute("INSERT INTO agents (name, created_at) VALUES (%s, %s)", (agent_name, now))
    secret, digest, prefix = rules.new_key(kind)
    row = await _one(
        conn,
        "INSERT INTO keys (kind, key_hash, prefix, machine, agent_name, channels, created_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
        (
            kind,
            digest,
            prefix,
            machine,
            agent_name,
            sorted(set(channels)) if channels is not None else None,
            now,
            now + expires_in if expires_in is not None else None,
        ),
    )
    assert row is not None
    return _key(row), secret


async def _revoke(conn: Conn, target: str) -> int:
    cursor = await conn.execute(
        "UPDATE keys SET revoked_at = %s WHERE revoked_at IS NULL AND (key_hash = %s OR prefix = %s"
        " OR agent_name = %s OR machine = %s OR id::text = %s)",
        (time.time(), rules.hash_key(target), target, target, target, target),
    )
    return cursor.rowcount


async def _register(conn: Conn, key: KeyRecord, name: str) -> Agent:
    row = await _one(conn, "SELECT id, key_id FROM agents WHERE name = %s FOR UPDATE", (name,))
    if row is None:
        created = await _one(
            conn,
            "INSERT INTO agents (name, key_id, created_at) VALUES (%s, %s, %s) RETURNING id",
            (name, key.id, time.time()),
        )
        assert created is not None
        return Agent(id=created["id"], name=name, key_id=key.id)
    if row["key_id"] == key.id:
        return Agent(id=row["id"], name=name, key_id=key.id)
    if row["key_id"] is not None:
        old = await _one(conn, "SELECT * FROM keys WHERE id = %s", (row["key_id"],))
        if old is not None and old["machine"] == key.machine and not _key(old).usable_at(time.time()):
            await conn.execute("UPDATE agents SET key_id = %s WHERE id = %s", (key.id, row["id"]))
            return Agent(id=row["id"], name=name, key_id=key.id)
    raise Forbidden(f"'{name}' is registered under another key; choose a different agent name", code="name_taken")


async def _create_channel(
    conn: Conn, caller: Caller, name: str, description: str, private: bool
) -> tuple[dict[str, Any], bool]:
    policy.check_scope(caller, name)
    now = time.time()
    if await _one(conn, "SELECT 1 FROM channels WHERE name = %s", (name,)) is not None:
        row = await _channel(conn, caller, name)
        if row["archived"]:
            raise Conflict(f"channel '{name}' is archived", code="channel_archived")
        await _join(conn, caller.agent_id, row["id"], now)
        return policy.channel_public(row), False
    created = await _one(
        conn,
        "INSERT INTO channels (name, type, description, private, created_by, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
        (name, rules.channel_type(name), description, private, caller.agent_id, now),
    )
    assert created is not None
    await _join(conn, caller.agent_id, created["id"], now)
    return policy.channel_public(created), True


async def _add_member(conn: Conn, caller: Caller, channel: str, agent: str) -> dict[str, Any]:
    row = await _channel(conn, caller, channel)
    if row["type"] == "dm":
        raise Forbidden("a direct-message conversation has exactly its two agents", code="dm_members_fixed")
    if row["private"] and not await _is_member(conn, caller.agent_id, row["id"]):
        raise Forbidden(f"only members of '{channel}' can add members", code="not_a_member")
    added = await _join(conn, await _agent_id(conn, agent), row["id"], time.time())
    return {"channel": channel, "agent": agent, "added": added}


async def _archive_channel(conn: Conn, channel: str) -> dict[str, Any]:
    row = await _one(conn, "UPDATE channels SET archived = TRUE WHERE name = %s RETURNING *", (channel,))
    if row is None:
        raise NotFound(f"no channel named '{channel}'", code="channel_not_found")
    return policy.channel_public(row)


async def _channel_for_post(conn: Conn, caller: Caller, name: str, now: float) -> Row:
    exists = await _one(conn, "SELECT 1 FROM channels WHERE name = %s", (name,))
    if exists is None and rules.channel_type(name) != "dm":
        await _create_channel(conn, caller, name, "", False)
    row = await _channel(conn, caller, name)
    if row["archived"]:
        raise Conflict(f"channel '{name}' is archived; it takes no new messages", code="channel_archived")
    await _join(conn, caller.agent_id, row["id"], now)
    return row


async def _expects_reply(conn: Conn, caller: Caller, value: str) -> str:
    if value in ("none", "anyone"):
        return value
    if value == caller.name:
        raise Unprocessable(
            "expects_reply cannot name yourself; use 'anyone' or another agent", code="invalid_expects_reply"
        )
    await _agent_id(conn, value)
    return value


async def _insert_message(
    conn: Conn,
    caller: Caller,
    channel: Row,
    content: str,
    *,
    parent_id: int | None,
    metadata: dict[str, Any] | None,
    expects_reply: str,
    client_msg_id: str | None,
    now: float,
) -> Posted:
    if parent_id is not None:
        parent = await _one(conn, "SELECT channel_id FROM messages WHERE id = %s", (parent_id,))
        if parent is None or parent["channel_id"] != channel["id"]:
            raise NotFound(f"no message {parent_id} in '{channel['name']}' to reply to", code="parent_not_found")
    expects = await _expects_reply(conn, caller, expects_reply)
    names = [n for n in rules.parse_mentions(content) if n != caller.name]
    mentioned: list[tuple[int, str]] = []
    if names:
        for row in await _all(conn, "SELECT id, name FROM agents WHERE name = ANY(%s)", (names,)):
            if not channel["private"] or await _is_member(conn, row["id"], channel["id"]):
                mentioned.append((row["id"], row["name"]))
        mentioned.sort(key=lambda pair: names.index(pair[1]))
    inserted = await _one(
        conn,
        "INSERT INTO messages (id, channel_id, author_id, content, metadata, parent_id, expects_reply, client_msg_id,"
        " mentions, created_at) VALUES (nextval('message_ids'), %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            channel["id"],
            caller.agent_id,
            content,
            Jsonb(metadata) if metadata else None,
            parent_id,
            expects,
            client_msg_id,
            ",".join(name for _, name in mentioned),
            now,
        ),
    )
    assert inserted is not None
    message_id = int(inserted["id"])
    for agent_id, _ in mentioned:
        await conn.execute(
            "INSERT INTO mentions (message_id, agent_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", (message_id, agent_id)
        )
    if parent_id is not None:
        await conn.execute(
            "UPDATE messages SET answered_by = %s WHERE id = %s AND answered_by IS NULL AND author_id <> %s"
            " AND expects_reply IN ('anyone', %s)",
            (caller.agent_id, parent_id, caller.agent_id, caller.name),
        )
    notify = {agent_id for agent_id, _ in mentioned}
    if channel["type"] == "dm":
        members = await _all(conn, "SELECT agent_id FROM memberships WHERE channel_id = %s", (channel["id"],))
        notify.update(r["agent_id"] for r in members)
    message = Message(
        id=message_id,
        channel_id=channel["id"],
        channel=channel["name"],
        author=caller.name,
        content=content,
        metadata=metadata or None,
        parent_id=parent_id,
        expects_reply=expects,
        created_at=now,
        mentions=tuple(name for _, name in mentioned),
    )
    return Posted(message=message, replayed=False, notify_agents=tuple(sorted(notify)))


async def _replay(conn: Conn, caller: Caller, client_msg_id: str | None, channel: str, content: str) -> Posted | None:
    if client_msg_id is None:
        return None
    row = await _one(
        conn, "SELECT id FROM messages WHERE author_id = %s AND client_msg_id = %s", (caller.agent_id, client_msg_id)
    )
    if row is None:
        return None
    original = await _load_message(conn, row["id"])
    if original.channel != channel or original.content != content:
        raise Conflict(
            f"client_msg_id '{client_msg_id}' was already used for message {original.id} with different"
            " content or channel; use a new client_msg_id for a new message",
            code="client_msg_id_reused",
            message_id=original.id,
        )
    return Posted(message=original, replayed=True)


async def _post(
    conn: Conn,
    caller: Caller,
    channel: str,
    content: str,
    parent_id: int | None,
    metadata: dict[str, Any] | None,
    expects_reply: str | None,
    client_msg_id: str | None,
) -> Posted:
    replay = await _replay(conn, caller, client_msg_id, channel, content)
    if replay is not None:
        return replay
    now = time.time()
    row = await _channel_for_post(conn, caller, channel, now)
    return await _insert_message(
        conn,
        caller,
        row,
        content,
        parent_id=parent_id,
        metadata=metadata,
        expects_reply=expects_reply or "none",
        client_msg_id=client_msg_id,
        now=now,
    )


async def _post_dm(
    conn: Conn,
    caller: Caller,
    target: str,
    content: str,
    parent_id: int | None,
    metadata: dict[str, Any] | None,
    expects_reply: str | None,
    client_msg_id: str | None,
) -> Posted:
    if target == caller.name:
        raise Unprocessable("you cannot send a direct message to yourself", code="dm_to_self")
    channel = rules.dm_channel_name(caller.name, target)
    target_id = await _agent_id(conn, target)
    now = time.time()
    row = await _one(
        conn,
        "INSERT INTO channels (name, type, private, created_by, created_at) VALUES (%s, 'dm', TRUE, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        (channel, caller.agent_id, now),
    )
    assert row is not None
    await _join(conn, caller.agent_id, row["id"], now)
    await _join(conn, target_id, row["id"], now)
    return await _post(conn, caller, channel, content, parent_id, metadata, expects_reply or target, client_msg_id)


async def _mark_read(conn: Conn, caller: Caller, upto: dict[int, int], join: bool) -> None:
    now = time.time()
    for channel_id, last_id in upto.items():
        if join:
            await _join(conn, caller.agent_id, channel_id, now)
        await conn.execute(
            "UPDATE memberships SET last_read_id = greatest(last_read_id, %s) WHERE agent_id = %s AND channel_id = %s",
            (last_id, caller.agent_id, channel_id),
        )


async def _claim(conn: Conn, caller: Caller, message_id: int, ttl: float) -> Claim:
    row = await _one(
        conn,
        f"SELECT m.author_id, m.expects_reply, m.answered_by FROM {_MESSAGE_FROM} WHERE m.id = %(id)s AND {_VISIBLE}",
        _params(caller, id=message_id),
    )
    if row is None:
        raise NotFound(f"no message {message_id} that you can see", code="message_not_found")
    policy.check_claim(caller, message_id, row["author_id"], row["expects_reply"])
    if row["answered_by"] is not None:
        holder = await _one(conn, "SELECT name FROM agents WHERE id = %s", (row["answered_by"],))
        raise policy.already_answered(message_id, holder["name"] if holder else "?")
    now = time.time()
    held = await _one(
        conn,
        "SELECT c.agent_id, c.expires_at, a.name FROM claims c JOIN agents a ON a.id = c.agent_id"
        " WHERE c.message_id = %s",
        (message_id,),
    )
    if held is not None and held["agent_id"] != caller.agent_id and held["expires_at"] > now:
        raise policy.already_claimed(message_id, held["name"], held["expires_at"])
    await conn.execute(
        "INSERT INTO claims (message_id, agent_id, claimed_at, expires_at) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (message_id) DO UPDATE SET agent_id = EXCLUDED.agent_id, claimed_at = EXCLUDED.claimed_at,"
        " expires_at = EXCLUDED.expires_at",
        (message_id, caller.agent_id, now, now + ttl),
    )
    return Claim(message_id=message_id, holder=caller.name, expires_at=now + ttl)


async def _mark_mentions_read(conn: Conn, caller: Caller, ids: list[int]) -> int:
    cursor = await conn.execute(
        "UPDATE mentions SET read = TRUE WHERE agent_id = %s AND NOT read AND id = ANY(%s)", (caller.agent_id, ids)
    )
    return cursor.rowcount


async def _record_seen(conn: Conn, seen: dict[int, float]) -> None:
    for agent_id, ts in seen.items():
        await conn.execute(
            "UPDATE agents SET last_seen = greatest(coalesce(last_seen, 0), %s) WHERE id = %s", (ts, agent_id)
        )


async def _insert_file(
    conn: Conn,
    caller: Caller,
    channel: str,
    filename: str,
    content_type: str,
    data: bytes,
    digest: str,
    announce: str | None,
) -> tuple[StoredFile, Posted | None]:
    now = time.time()
    row = await _channel_for_post(conn, caller, channel, now)
    await conn.execute("INSERT INTO blobs (sha256, data) VALUES (%s, %s) ON CONFLICT DO NOTHING", (digest, data))
    stored = StoredFile(
        id=secrets.token_urlsafe(12),
        channel=channel,
        filename=filename,
        content_type=content_type,
        size=len(data),
        sha256=digest,
        uploader=caller.name,
        created_at=now,
    )
    posted = None
    if announce is not None:
        posted = await _insert_message(
            conn,
            caller,
            row,
            announce or f"Shared a file: {filename} ({len(data)} bytes)",
            parent_id=None,
            metadata={"files": [stored.to_dict()]},
            expects_reply="none",
            client_msg_id=None,
            now=now,
        )
        stored = StoredFile(**{**stored.__dict__, "message_id": posted.message.id})
    await conn.execute(
        "INSERT INTO files (id, sha256, channel_id, uploader_id, filename, content_type, size, message_id, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (stored.id, digest, row["id"], caller.agent_id, filename, content_type, len(data), stored.message_id, now),
    )
    return stored, posted


# -- reads (one REPEATABLE READ snapshot each) -------------------------------------------------


async def _find_key(conn: Conn, digest: str, name: str | None) -> tuple[KeyRecord, Agent | None] | None:
    row = await _one(
        conn,
        "SELECT k.*, a.id AS a_id, a.name AS a_name, a.key_id AS a_key_id FROM keys k"
        " LEFT JOIN agents a ON a.name = coalesce(k.agent_name, %s) WHERE k.key_hash = %s",
        (name, digest),
    )
    if row is None:
        return None
    agent = Agent(id=row["a_id"], name=row["a_name"], key_id=row["a_key_id"]) if row["a_id"] is not None else None
    return _key(row), agent


async def _list_keys(conn: Conn) -> list[KeyRecord]:
    return [_key(row) for row in await _all(conn, "SELECT * FROM keys ORDER BY id")]


async def _list_channels(conn: Conn, caller: Caller, type_: str | None) -> list[dict[str, Any]]:
    rows = await _all(
        conn,
        "SELECT c.*, EXISTS (SELECT 1 FROM memberships WHERE agent_id = %(me)s AND channel_id = c.id) AS member,"
        " (SELECT count(*) FROM memberships WHERE channel_id = c.id) AS members"
        f" FROM channels c WHERE c.type <> 'dm' AND NOT c.archived AND {_VISIBLE}"
        " AND (%(type)s::text IS NULL OR c.type = %(type)s::text) ORDER BY c.name",
        _params(caller, type=type_),
    )
    return [{**policy.channel_public(row), "member": bool(row["member"]), "members": row["members"]} for row in rows]


async def _read_channel(
    conn: Conn, caller: Caller, name: str, limit: int, before: int | None, since: int | None
) -> Page:
    channel = await _channel(conn, caller, name)
    base = f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.channel_id = %s"
    if since is not None:
        rows = await _all(conn, f"{base} AND m.id > %s ORDER BY m.id LIMIT %s", (channel["id"], since, limit + 1))
        has_more = len(rows) > limit
        rows = rows[:limit]
    else:
        upper = before if before is not None else await _high_water(conn) + 1
        rows = await _all(conn, f"{base} AND m.id < %s ORDER BY m.id DESC LIMIT %s", (channel["id"], upper, limit + 1))
        has_more = len(rows) > limit
        rows = rows[:limit][::-1]
    messages = [_message(row) for row in rows]
    if messages:
        cursor = messages[-1].id
    elif since is not None:
        cursor = since
    else:
        cursor = await _high_water(conn)
    return Page(messages=messages, cursor=cursor, channels=frozenset({channel["id"]}), has_more=has_more)


async def _read_events(conn: Conn, caller: Caller, since: int | None, limit: int, channel: str | None) -> Page:
    params = _params(caller)
    if channel is not None:
        channels = frozenset({(await _channel(conn, caller, channel))["id"]})
        agent_id = None
        where = "m.channel_id = %(channel)s"
        params["channel"] = next(iter(channels))
    else:
        rows = await _all(
            conn,
            "SELECT c.id FROM memberships ms JOIN channels c ON c.id = ms.channel_id WHERE ms.agent_id = %(me)s"
            f" AND {_IN_SCOPE}",
            params,
        )
        channels = frozenset(row["id"] for row in rows)
        agent_id = caller.agent_id
        where = (
            "(m.channel_id IN (SELECT channel_id FROM memberships WHERE agent_id = %(me)s)"
            " OR m.id IN (SELECT message_id FROM mentions WHERE agent_id = %(me)s AND message_id > %(since)s))"
        )
    if since is None:
        return Page(messages=[], cursor=await _high_water(conn), channels=channels, agent_id=agent_id)
    rows = await _all(
        conn,
        f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.id > %(since)s AND {_VISIBLE} AND {where}"
        " ORDER BY m.id LIMIT %(limit)s",
        {**params, "since": since, "limit": limit + 1},
    )
    messages = [_message(row) for row in rows[:limit]]
    cursor = messages[-1].id if messages else since
    return Page(messages=messages, cursor=cursor, channels=channels, agent_id=agent_id, has_more=len(rows) > limit)


async def _board(conn: Conn, caller: Caller) -> dict[str, Any]:
    params = _params(caller)
    channels = []
    for row in await _all(
        conn,
        "SELECT c.*, ms.last_read_id FROM memberships ms JOIN channels c ON c.id = ms.channel_id"
        f" WHERE ms.agent_id = %(me)s AND NOT c.archived AND {_IN_SCOPE} ORDER BY c.name",
        params,
    ):
        unread = await _one(
            conn,
            "SELECT count(*) AS n FROM messages WHERE channel_id = %s AND id > %s AND author_id <> %s",
            (row["id"], row["last_read_id"], caller.agent_id),
        )
        latest = await _one(
            conn,
            f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.channel_id = %s ORDER BY m.id DESC LIMIT 1",
            (row["id"],),
        )
        channels.append(
            {
                "channel": row["name"],
                "type": row["type"],
                "private": bool(row["private"]),
                "unread": unread["n"] if unread else 0,
                "last_read_id": row["last_read_id"],
                "latest": _message(latest).to_dict() if latest else None,
            }
        )
    now = time.time()
    questions = await _all(
        conn,
        f"SELECT {_MESSAGE_COLUMNS}, cl.expires_at AS claim_expires, ca.name AS claimed_by FROM {_MESSAGE_FROM}"
        " LEFT JOIN claims cl ON cl.message_id = m.id LEFT JOIN agents ca ON ca.id = cl.agent_id"
        " WHERE m.answered_by IS NULL AND m.author_id <> %(me)s AND (m.expects_reply = %(my_name)s OR"
        "  (m.expects_reply = 'anyone' AND m.channel_id IN"
        "   (SELECT channel_id FROM memberships WHERE agent_id = %(me)s)))"
        " AND NOT c.archived AND (cl.message_id IS NULL OR cl.agent_id = %(me)s OR cl.expires_at < %(now)s)"
        f" AND {_VISIBLE} ORDER BY m.id DESC LIMIT 20",
        {**params, "now": now},
    )
    open_questions = [
        {**_message(row).to_dict(), "claimed_by": row["claimed_by"] if (row["claim_expires"] or 0) > now else None}
        for row in questions
    ]
    unread_mentions = await _one(
        conn, "SELECT count(*) AS n FROM mentions WHERE agent_id = %s AND NOT read", (caller.agent_id,)
    )
    return {
        "agent": caller.name,
        "channels": channels,
        "open_questions": open_questions,
        "unread_mentions": unread_mentions["n"] if unread_mentions else 0,
        "mentions": await _mentions(conn, caller, True, 10),
        "cursor": await _high_water(conn),
    }


async def _mentions(conn: Conn, caller: Caller, unread_only: bool, limit: int) -> list[dict[str, Any]]:
    rows = await _all(
        conn,
        f"SELECT mn.id AS mention_id, mn.read, {_MESSAGE_COLUMNS} FROM mentions mn"
        f" JOIN messages m ON m.id = mn.message_id {_MESSAGE_JOINS}"
        f" WHERE mn.agent_id = %(me)s AND (NOT %(unread)s OR NOT mn.read) AND {_VISIBLE}"
        " ORDER BY mn.id DESC LIMIT %(limit)s",
        _params(caller, unread=unread_only, limit=limit),
    )
    return [policy.mention(row["mention_id"], _message(row), bool(row["read"])) for row in rows]


async def _search(conn: Conn, caller: Caller, query: str, channel: str | None, limit: int) -> list[dict[str, Any]]:
    if not rules.fts_query(query):
        raise Unprocessable("the search query has no words to search for", code="invalid_query")
    channel_id = (await _channel(conn, caller, channel))["id"] if channel is not None else None
    rows = await _all(
        conn,
        f"SELECT {_MESSAGE_COLUMNS}, ts_rank_cd(m.content_tsv, q) AS rank,"
        " ts_headline('english', m.content, q, 'StartSel=[, StopSel=], MaxFragments=1, MaxWords=16, MinWords=4')"
        " AS snippet"
        f" FROM {_MESSAGE_FROM}, websearch_to_tsquery('english', %(q)s) q"
        f" WHERE m.content_tsv @@ q AND {_VISIBLE} AND (%(channel)s::bigint IS NULL OR m.channel_id = %(channel)s)"
        " ORDER BY rank DESC, m.id DESC LIMIT %(limit)s",
        _params(caller, q=query, channel=channel_id, limit=limit),
    )
    return [
        {**_message(row).to_dict(), "snippet": row["snippet"], "rank": round(float(row["rank"]), 4)} for row in rows
    ]


async def _agents(conn: Conn, caller: Caller, channel: str | None) -> list[dict[str, Any]]:
    if channel is not None:
        channel_id = (await _channel(conn, caller, channel))["id"]
        return await _all(
            conn,
            "SELECT a.id, a.name, a.last_seen FROM memberships ms JOIN agents a ON a.id = ms.agent_id"
            " WHERE ms.channel_id = %s ORDER BY a.name",
            (channel_id,),
        )
    return await _all(conn, "SELECT id, name, last_seen FROM agents ORDER BY name")


async def _file(conn: Conn, caller: Caller, file_id: str) -> tuple[StoredFile, bytes]:
    row = await _one(
        conn,
        "SELECT f.*, c.name AS channel, a.name AS uploader, b.data FROM files f JOIN channels c ON c.id = f.channel_id"
        " JOIN agents a ON a.id = f.uploader_id JOIN blobs b ON b.sha256 = f.sha256 WHERE f.id = %s",
        (file_id,),
    )
    missing = NotFound(f"no file '{file_id}' that you can see", code="file_not_found")
    if row is None:
        raise missing
    try:
        await _channel(conn, caller, row["channel"])
    except (NotFound, Forbidden) as exc:
        raise missing from exc
    stored = StoredFile(
        id=row["id"],
        channel=row["channel"],
        filename=row["filename"],
        content_type=row["content_type"],
        size=row["size"],
        sha256=row["sha256"],
        uploader=row["uploader"],
        created_at=row["created_at"],
        message_id=row["message_id"],
    )
    return stored, bytes(row["data"])


async def _fetch_posted(conn: Conn, ids: list[int]) -> list[Posted]:
    """The messages a notification names, with the agents to wake beyond their channels."""
    rows = await _all(
        conn,
        f"SELECT {_MESSAGE_COLUMNS}, ARRAY(SELECT agent_id FROM mentions WHERE message_id = m.id) AS mentioned,"
        " CASE WHEN c.type = 'dm' THEN ARRAY(SELECT agent_id FROM memberships WHERE channel_id = m.channel_id)"
        " ELSE '{}'::bigint[] END AS members"
        f" FROM {_MESSAGE_FROM} WHERE m.id = ANY(%s) ORDER BY m.id",
        (ids,),
    )
    return [
        Posted(_message(row), replayed=False, notify_agents=tuple(sorted({*row["mentioned"], *row["members"]})))
        for row in rows
    ]


async def _stats(conn: Conn) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    for table in ("agents", "channels", "messages", "mentions", "claims", "files"):
        row = await _one(conn, f"SELECT count(*) AS n FROM {table}")
        counts[table] = row["n"] if row else 0
    row = await _one(conn, "SELECT count(*) AS n FROM keys WHERE revoked_at IS NULL")
    counts["active_keys"] = row["n"] if row else 0
    row = await _one(conn, "SELECT coalesce(sum(refusals), 0) AS n FROM rate_buckets")
    counts["rate_limit_refusals"] = int(row["n"]) if row else 0
    counts["high_water"] = await _high_water(conn)
    return counts


async def _spend(conn: Conn, agent_id: int, kind: str, rate: float, burst: int) -> float:
    """Take a token atomically across replicas; returns the tokens there were before the take."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO rate_buckets (agent_id, kind, tokens, updated_at)"
            " VALUES (%s, %s, %s, extract(epoch FROM clock_timestamp())) ON CONFLICT DO NOTHING",
            (agent_id, kind, float(burst)),
        )
        row = await _one(
            conn,
            "UPDATE rate_buckets b SET tokens = s.available - CASE WHEN s.available >= 1 THEN 1 ELSE 0 END,"
            " refusals = b.refusals + CASE WHEN s.available >= 1 THEN 0 ELSE 1 END, updated_at = s.now"
            " FROM (SELECT least(%(burst)s, tokens + (extract(epoch FROM clock_timestamp()) - updated_at) * %(rate)s)"
            "  AS available, extract(epoch FROM clock_timestamp()) AS now FROM rate_buckets"
            "  WHERE agent_id = %(agent)s AND kind = %(kind)s FOR UPDATE) s"
            " WHERE b.agent_id = %(agent)s AND b.kind = %(kind)s RETURNING s.available",
            {"agent": agent_id, "kind": kind, "rate": rate, "burst": float(burst)},
        )
    assert row is not None
    return float(row["available"])


class PostgresStore:
    """Chosen by ``parley up --database postgresql://...`` or ``PARLEY_DATABASE_URL``."""

    def __init__(self, settings: Settings) -> None:
        assert settings.database_url is not None
        self.settings = settings
        self.engine = PostgresEngine(settings.database_url, MIGRATIONS)

    async def start(self, subscriber: Subscriber) -> None:
        await self.engine.start(subscriber, _fetch_posted, _high_water)

    async def close(self) -> None:
        await self.engine.close()

    async def spend(self, agent_id: int, kind: Literal["read", "write"]) -> Budget:
        rate = self.settings.write_rate if kind == "write" else self.settings.read_rate
        burst = self.settings.write_burst if kind == "write" else self.settings.read_burst
        available = await self.engine.direct(_spend, agent_id, kind, rate, burst)
        if available < 1:
            retry_after = max(1, int(-(-(1.0 - available) // rate))) if rate > 0 else 3600
            raise RateLimited(
                f"too many {kind}s: the limit is {burst} in a burst and {rate:g} per second;"
                f" wait {retry_after} s before the next one",
                retry_after=retry_after,
            )
        return Budget(limit=burst, remaining=int(available - 1), refill_per_second=rate)

    # -- keys and identity -----------------------------------------------------------------

    async def create_key(
        self,
        kind: str,
        *,
        machine: str | None = None,
        agent_name: str | None = None,
        channels: list[str] | None = None,
        expires_in: float | None = None,
    ) -> tuple[KeyRecord, str]:
        policy.check_key_request(kind, machine, agent_name, channels)
        return await self.engine.write(_create_key, kind, machine, agent_name, channels, expires_in)

    async def list_keys(self) -> list[KeyRecord]:
        return await self.engine.read(_list_keys)

    async def revoke(self, target: str) -> int:
        return await self.engine.write(_revoke, target)

    async def authenticate(self, secret: str, agent_name: str | None) -> Caller:
        found = await self.engine.read(_find_key, rules.hash_key(secret), agent_name)
        if found is None:
            raise Unauthorized("this API key is not known to the relay", code="invalid_key")
        key, agent = found
        name = policy.acting_name(key, agent_name, time.time())
        if key.kind == "machine" and (agent is None or agent.key_id != key.id):
            agent = await self.engine.write(_register, key, name)
        return policy.caller(key, agent, name)

    # -- channels --------------------------------------------------------------------------

    async def list_channels(self, caller: Caller, type_: str | None) -> list[dict[str, Any]]:
        return await self.engine.read(_list_channels, caller, type_)

    async def create_channel(
        self, caller: Caller, name: str, description: str, private: bool
    ) -> tuple[dict[str, Any], bool]:
        return await self.engine.write(_create_channel, caller, name, description, private)

    async def add_member(self, caller: Caller, channel: str, agent: str) -> dict[str, Any]:
        return await self.engine.write(_add_member, caller, channel, agent)

    async def archive_channel(self, channel: str) -> dict[str, Any]:
        return await self.engine.write(_archive_channel, channel)

    # -- messages --------------------------------------------------------------------------

    async def post(
        self,
        caller: Caller,
        channel: str,
        content: str,
        *,
        parent_id: int | None,
        metadata: dict[str, Any] | None,
        expects_reply: str | None,
        client_msg_id: str | None,
    ) -> Posted:
        return await self.engine.write(
            _post, caller, channel, content, parent_id, metadata, expects_reply, client_msg_id
        )

    async def post_dm(
        self,
        caller: Caller,
        target: str,
        content: str,
        *,
        parent_id: int | None,
        metadata: dict[str, Any] | None,
        expects_reply: str | None,
        client_msg_id: str | None,
    ) -> Posted:
        return await self.engine.write(
            _post_dm, caller, target, content, parent_id, metadata, expects_reply, client_msg_id
        )

    async def read_channel(
        self, caller: Caller, channel: str, *, limit: int, before: int | None, since: int | None
    ) -> Page:
        return await self.engine.read(_read_channel, caller, channel, limit, before, since)

    async def read_events(self, caller: Caller, *, since: int | None, limit: int, channel: str | None = None) -> Page:
        return await self.engine.read(_read_events, caller, since, limit, channel)

    async def mark_read(self, caller: Caller, page: Page) -> None:
        upto, joining = policy.read_marks(page)
        if upto:
            await self.engine.write(_mark_read, caller, upto, joining)

    async def claim(self, caller: Caller, message_id: int) -> Claim:
        return await self.engine.write(_claim, caller, message_id, self.settings.claim_ttl)

    async def board(self, caller: Caller) -> dict[str, Any]:
        return await self.engine.read(_board, caller)

    async def mentions(self, caller: Caller, *, unread_only: bool, limit: int) -> list[dict[str, Any]]:
        return await self.engine.read(_mentions, caller, unread_only, limit)

    async def mark_mentions_read(self, caller: Caller, mention_ids: list[int]) -> int:
        return await self.engine.write(_mark_mentions_read, caller, mention_ids)

    async def search(self, caller: Caller, query: str, *, channel: str | None, limit: int) -> list[dict[str, Any]]:
        return await self.engine.read(_search, caller, query, channel, limit)

    async def agents(self, caller: Caller, *, channel: str | None) -> list[dict[str, Any]]:
        return await self.engine.read(_agents, caller, channel)

    async def record_seen(self, seen: dict[int, float]) -> None:
        if seen:
            await self.engine.write(_record_seen, seen)

    # -- files -----------------------------------------------------------------------------

    async def save_file(
        self, caller: Caller, channel: str, filename: str, content_type: str, data: bytes, announce: str | None
    ) -> tuple[StoredFile, Posted | None]:
        digest = hashlib.sha256(data).hexdigest()
        return await self.engine.write(_insert_file, caller, channel, filename, content_type, data, digest, announce)

    async def open_file(self, caller: Caller, file_id: str) -> tuple[StoredFile, bytes]:
        return await self.engine.read(_file, caller, file_id)

    async def stats(self) -> dict[str, Any]:
        return {**await self.engine.read(_stats), "write_batches": self.engine.batches}
