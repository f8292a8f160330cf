"""The embedded store: SQLite in WAL mode, FTS5 search, files in the data directory.

Every method is a pair: an ``async`` front that authenticates from memory where it can and hands
the work to the engine, and a plain function ``_name(conn, ...)`` that runs in the writer or a
reader thread and holds all the SQL. Because one writer commits in id order and a read sees one
snapshot, a cursor built from a snapshot never skips a message.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any, Literal

from parley.relay import rules
from parley.relay.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unprocessable,
)
from parley.relay.models import (
    Agent,
    Caller,
    Claim,
    KeyRecord,
    Message,
    Page,
    Posted,
    StoredFile,
)
from parley.relay.ratelimit import Budget, RateLimiter
from parley.relay.settings import Settings
from parley.relay.store import policy
from parley.relay.store.base import Subscriber
from parley.relay.store.sqlite_engine import SQLiteEngine
from parley.relay.store.sqlite_schema import MIGRATIONS

Row = sqlite3.Row

_MESSAGE_COLUMNS = """
    m.id, m.channel_id, c.name AS channel, a.name AS author, m.content, m.metadata, m.parent_id,
    m.expects_reply, m.created_at, m.mentions
"""
_MESSAGE_JOINS = "JOIN channels c ON c.id = m.channel_id JOIN agents a ON a.id = m.author_id"
_MESSAGE_FROM = f"messages m {_MESSAGE_JOINS}"
# Within the caller's key scope (DMs are always the caller's own).
_IN_SCOPE = "(:scope IS NULL OR c.type = 'dm' OR c.name IN (SELECT value FROM json_each(:scope)))"
# A channel the caller may see: public, or one it belongs to; within its key's scope.
_VISIBLE = f"(c.private = 0 OR c.id IN (SELECT channel_id FROM memberships WHERE agent_id = :me)) AND {_IN_SCOPE}"


def _message(row: Row) -> Message:
    return policy.message_from_row(row, json.loads(row["metadata"]) if row["metadata"] else None)


def _key(row: Row) -> KeyRecord:
    return policy.key_from_row(row, tuple(json.loads(row["channels"])) if row["channels"] is not None else None)


def _params(caller: Caller, **extra: Any) -> dict[str, Any]:
    scope = json.dumps(sorted(caller.scope)) if caller.scope is not None else None
    return {"me": caller.agent_id, "my_name": caller.name, "scope": scope, **extra}


def _high_water(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
    return int(row[0]) if row else 0


def _is_member(conn: sqlite3.Connection, agent_id: int, channel_id: int) -> bool:
    sql = "SELECT 1 FROM memberships WHERE agent_id = ? AND channel_id = ?"
    return conn.execute(sql, (agent_id, channel_id)).fetchone() is not None


def _join(conn: sqlite3.Connection, agent_id: int, channel_id: int, now: float) -> bool:
    sql = "INSERT OR IGNORE INTO memberships (agent_id, channel_id, joined_at) VALUES (?, ?, ?)"
    return conn.execute(sql, (agent_id, channel_id, now)).rowcount == 1


def _channel(conn: sqlite3.Connection, caller: Caller, name: str) -> Row:
    """The channel ``name`` if the caller may see it; a private channel it may not see does not exist."""
    policy.check_scope(caller, name)
    row: Row | None = conn.execute("SELECT * FROM channels WHERE name = ?", (name,)).fetchone()
    granted = caller.scope is not None and name in caller.scope
    if row is None or (row["private"] and not granted and not _is_member(conn, caller.agent_id, row["id"])):
        raise NotFound(f"no channel named '{name}'", code="channel_not_found")
    return row


def _load_message(conn: sqlite3.Connection, message_id: int) -> Message:
    row = conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.id = ?", (message_id,)).fetchone()
    return _message(row)


def _agent_id(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM agents WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"no agent named '{name}'", code="agent_not_found")
    return int(row[0])


# -- writes (run in the writer thread) -------------------------------------------------------


def _create_key(
    conn: sqlite3.Connection,
    kind: str,
    machine: str | None,
    agent_name: str | None,
    channels: list[str] | None,
    expires_in: float | None,
) -> tuple[KeyRecord, str]:
    now = time.time()
    if kind == "machine":
        assert machine is not None
        active = conn.execute(
            "SELECT 1 FROM keys WHERE machine = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
            (machine, now),
        ).fetchone()
        if active:
            raise Conflict(
                f"machine '{machine}' already has an active key; revoke it first to rotate",
                code="machine_key_exists",
            )
    else:
        assert agent_name is not None
        row = conn.execute("SELECT key_id FROM agents WHERE name = ?", (agent_name,)).fetchone()
        if row is not None and row["key_id"] is not None:
            raise Conflict(
                f"'{agent_name}' is registered under a machine key; pick another name",
                code="name_taken",
            )
        if row is None:
            conn.execute("INSERT INTO agents (name, created_at) VALUES (?, ?)", (agent_name, now))
    secret, digest, prefix = rules.new_key(kind)
    cursor = conn.execute(
        "INSERT INTO keys (kind, key_hash, prefix, machine, agent_name, channels, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            kind,
            digest,
            prefix,
            machine,
            agent_name,
            json.dumps(sorted(set(channels))) if channels is not None else None,
            now,
            now + expires_in if expires_in is not None else None,
        ),
    )
    row = conn.execute("SELECT * FROM keys WHERE id = ?", (cursor.lastrowid,)).fetchone()
    return _key(row), secret


def _revoke(conn: sqlite3.Connection, target: str) -> list[str]:
    """Revoke by key, key prefix, key id, agent name (its agent keys) or machine name."""
    now = time.time()
    rows = conn.execute(
        "SELECT id, key_hash FROM keys WHERE revoked_at IS NULL AND"
        " (key_hash = ? OR prefix = ? OR agent_name = ? OR machine = ? OR CAST(id AS TEXT) = ?)",
        (rules.hash_key(target), target, target, target, target),
    ).fetchall()
    conn.executemany("UPDATE keys SET revoked_at = ? WHERE id = ?", [(now, row["id"]) for row in rows])
    return [row["key_hash"] for row in rows]


def _register(conn: sqlite3.Connection, key: KeyRecord, name: str) -> Agent:
    """Bind a machine-key name on first use; a name stays with its machine key (or its rotation)."""
    row = conn.execute("SELECT id, key_id FROM agents WHERE name = ?", (name,)).fetchone()
    if row is None:
        cursor = conn.execute(
            "INSERT INTO agents (name, key_id, created_at) VALUES (?, ?, ?)", (name, key.id, time.time())
        )
        return Agent(id=int(cursor.lastrowid or 0), name=name, key_id=key.id)
    if row["key_id"] == key.id:
        return Agent(id=row["id"], name=name, key_id=key.id)
    if row["key_id"] is not None:
        old = _key(conn.execute("SELECT * FROM keys WHERE id = ?", (row["key_id"],)).fetchone())
        if old.machine == key.machine and not old.usable_at(time.time()):
            conn.execute("UPDATE agents SET key_id = ? WHERE id = ?", (key.id, row["id"]))
            return Agent(id=row["id"], name=name, key_id=key.id)
    raise Forbidden(
        f"'{name}' is registered under another key; choose a different agent name",
        code="name_taken",
    )


def _create_channel(
    conn: sqlite3.Connection, caller: Caller, name: str, description: str, private: bool
) -> tuple[dict[str, Any], bool]:
    policy.check_scope(caller, name)
    now = time.time()
    row = conn.execute("SELECT * FROM channels WHERE name = ?", (name,)).fetchone()
    if row is not None:
        row = _channel(conn, caller, name)
        if row["archived"]:
            raise Conflict(f"channel '{name}' is archived", code="channel_archived")
        _join(conn, caller.agent_id, row["id"], now)
        return policy.channel_public(row), False
    cursor = conn.execute(
        "INSERT INTO channels (name, type, description, private, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (name, rules.channel_type(name), description, int(private), caller.agent_id, now),
    )
    _join(conn, caller.agent_id, int(cursor.lastrowid or 0), now)
    return policy.channel_public(
        conn.execute("SELECT * FROM channels WHERE id = ?", (cursor.lastrowid,)).fetchone()
    ), True


def _add_member(conn: sqlite3.Connection, caller: Caller, channel: str, agent: str) -> dict[str, Any]:
    row = _channel(conn, caller, channel)
    if row["type"] == "dm":
        raise Forbidden("a direct-message conversation has exactly its two agents", code="dm_members_fixed")
    if row["private"] and not _is_member(conn, caller.agent_id, row["id"]):
        raise Forbidden(f"only members of '{channel}' can add members", code="not_a_member")
    added = _join(conn, _agent_id(conn, agent), row["id"], time.time())
    return {"channel": channel, "agent": agent, "added": added}


def _archive_channel(conn: sqlite3.Connection, channel: str) -> dict[str, Any]:
    if conn.execute("UPDATE channels SET archived = 1 WHERE name = ?", (channel,)).rowcount == 0:
        raise NotFound(f"no channel named '{channel}'", code="channel_not_found")
    return policy.channel_public(conn.execute("SELECT * FROM channels WHERE name = ?", (channel,)).fetchone())


def _channel_for_post(conn: sqlite3.Connection, caller: Caller, name: str, now: float) -> Row:
    """The channel to post into, created on first post; the poster joins it.

    The hot path (a member posting to a public channel) is one query."""
    policy.check_scope(caller, name)
    row: Row | None = conn.execute(
        "SELECT c.*, EXISTS (SELECT 1 FROM memberships WHERE agent_id = ? AND channel_id = c.id) AS member"
        " FROM channels c WHERE c.name = ?",
        (caller.agent_id, name),
    ).fetchone()
    member = bool(row and row["member"])
    if row is None or (row["private"] and not member):
        if row is None and rules.channel_type(name) != "dm":
            _create_channel(conn, caller, name, "", False)
        row, member = _channel(conn, caller, name), False
    if row["archived"]:
        raise Conflict(f"channel '{name}' is archived; it takes no new messages", code="channel_archived")
    if not member:
        _join(conn, caller.agent_id, row["id"], now)
    return row


def _expects_reply(conn: sqlite3.Connection, caller: Caller, value: str) -> str:
    if value in ("none", "anyone"):
        return value
    if value == caller.name:
        raise Unprocessable(
            "expects_reply cannot name yourself; use 'anyone' or another agent", code="invalid_expects_reply"
        )
    _agent_id(conn, value)
    return value


def _insert_message(
    conn: sqlite3.Connection,
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
        parent = conn.execute("SELECT channel_id FROM messages WHERE id = ?", (parent_id,)).fetchone()
        if parent is None or parent["channel_id"] != channel["id"]:
            raise NotFound(f"no message {parent_id} in '{channel['name']}' to reply to", code="parent_not_found")
    expects = _expects_reply(conn, caller, expects_reply)
    mentioned: list[tuple[int, str]] = []
    names = [n for n in rules.parse_mentions(content) if n != caller.name]
    if names:
        marks = ",".join("?" * len(names))
        for row in conn.execute(f"SELECT id, name FROM agents WHERE name IN ({marks})", names):
            if not channel["private"] or _is_member(conn, row["id"], channel["id"]):
                mentioned.append((row["id"], row["name"]))
        mentioned.sort(key=lambda pair: names.index(pair[1]))
    cursor = conn.execute(
        "INSERT INTO messages (channel_id, author_id, content, metadata, parent_id, expects_reply,"
        " client_msg_id, mentions, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            channel["id"],
            caller.agent_id,
            content,
            json.dumps(metadata, separators=(",", ":")) if metadata else None,
            parent_id,
            expects,
            client_msg_id,
            ",".join(name for _, name in mentioned),
            now,
        ),
    )
    message_id = int(cursor.lastrowid or 0)
    if mentioned:
        conn.executemany(
            "INSERT OR IGNORE INTO mentions (message_id, agent_id) VALUES (?, ?)",
            [(message_id, agent_id) for agent_id, _ in mentioned],
        )
    if parent_id is not None:
        conn.execute(
            "UPDATE messages SET answered_by = ? WHERE id = ? AND answered_by IS NULL AND author_id != ?"
            " AND expects_reply IN ('anyone', ?)",
            (caller.agent_id, parent_id, caller.agent_id, caller.name),
        )
    notify = {agent_id for agent_id, _ in mentioned}
    if channel["type"] == "dm":
        notify.update(
            row[0] for row in conn.execute("SELECT agent_id FROM memberships WHERE channel_id = ?", (channel["id"],))
        )
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


def _replay(
    conn: sqlite3.Connection, caller: Caller, client_msg_id: str | None, channel: str, content: str
) -> Posted | None:
    if client_msg_id is None:
        return None
    row = conn.execute(
        "SELECT id FROM messages WHERE author_id = ? AND client_msg_id = ?", (caller.agent_id, client_msg_id)
    ).fetchone()
    if row is None:
        return None
    original = _load_message(conn, row["id"])
    if original.channel != channel or original.content != content:
        raise Conflict(
            f"client_msg_id '{client_msg_id}' was already used for message {original.id} with different"
            " content or channel; use a new client_msg_id for a new message",
            code="client_msg_id_reused",
            message_id=original.id,
        )
    return Posted(message=original, replayed=True)


def _post(
    conn: sqlite3.Connection,
    caller: Caller,
    channel: str,
    content: str,
    parent_id: int | None,
    metadata: dict[str, Any] | None,
    expects_reply: str | None,
    client_msg_id: str | None,
) -> Posted:
    replay = _replay(conn, caller, client_msg_id, channel, content)
    if replay is not None:
        return replay
    now = time.time()
    row = _channel_for_post(conn, caller, channel, now)
    return _insert_message(
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


def _post_dm(
    conn: sqlite3.Connection,
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
    _open_dm(conn, caller, target, channel)
    return _post(conn, caller, channel, content, parent_id, metadata, expects_reply or target, client_msg_id)


def _open_dm(conn: sqlite3.Connection, caller: Caller, target: str, channel: str) -> None:
    """The private two-member channel of a DM conversation, created on the first message."""
    target_id = _agent_id(conn, target)
    now = time.time()
    row = conn.execute("SELECT id FROM channels WHERE name = ?", (channel,)).fetchone()
    if row is None:
        cursor = conn.execute(
            "INSERT INTO channels (name, type, private, created_by, created_at) VALUES (?, 'dm', 1, ?, ?)",
            (channel, caller.agent_id, now),
        )
        channel_id = int(cursor.lastrowid or 0)
    else:
        channel_id = row["id"]
    _join(conn, caller.agent_id, channel_id, now)
    _join(conn, target_id, channel_id, now)


def _mark_read(conn: sqlite3.Connection, caller: Caller, upto: dict[int, int], join: bool) -> None:
    now = time.time()
    for channel_id, last_id in upto.items():
        if join:
            _join(conn, caller.agent_id, channel_id, now)
        conn.execute(
            "UPDATE memberships SET last_read_id = max(last_read_id, ?) WHERE agent_id = ? AND channel_id = ?",
            (last_id, caller.agent_id, channel_id),
        )


def _claim(conn: sqlite3.Connection, caller: Caller, message_id: int, ttl: float) -> Claim:
    row = conn.execute(
        f"SELECT m.author_id, m.expects_reply, m.answered_by, c.name AS channel FROM {_MESSAGE_FROM}"
        f" WHERE m.id = :id AND {_VISIBLE}",
        _params(caller, id=message_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"no message {message_id} that you can see", code="message_not_found")
    policy.check_claim(caller, message_id, row["author_id"], row["expects_reply"])
    if row["answered_by"] is not None:
        holder = conn.execute("SELECT name FROM agents WHERE id = ?", (row["answered_by"],)).fetchone()[0]
        raise policy.already_answered(message_id, holder)
    now = time.time()
    held = conn.execute(
        "SELECT c.agent_id, c.expires_at, a.name FROM claims c JOIN agents a ON a.id = c.agent_id"
        " WHERE c.message_id = ?",
        (message_id,),
    ).fetchone()
    if held is not None and held["agent_id"] != caller.agent_id and held["expires_at"] > now:
        raise policy.already_claimed(message_id, held["name"], held["expires_at"])
    conn.execute(
        "INSERT INTO claims (message_id, agent_id, claimed_at, expires_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (message_id) DO UPDATE SET agent_id = excluded.agent_id,"
        " claimed_at = excluded.claimed_at, expires_at = excluded.expires_at",
        (message_id, caller.agent_id, now, now + ttl),
    )
    return Claim(message_id=message_id, holder=caller.name, expires_at=now + ttl)


def _mark_mentions_read(conn: sqlite3.Connection, caller: Caller, ids: list[int]) -> int:
    marks = ",".join("?" * len(ids))
    sql = f"UPDATE mentions SET read = 1 WHERE agent_id = ? AND read = 0 AND id IN ({marks})"
    return conn.execute(sql, (caller.agent_id, *ids)).rowcount


def _record_seen(conn: sqlite3.Connection, seen: dict[int, float]) -> None:
    conn.executemany(
        "UPDATE agents SET last_seen = max(coalesce(last_seen, 0), ?) WHERE id = ?",
        [(ts, agent_id) for agent_id, ts in seen.items()],
    )


def _insert_file(
    conn: sqlite3.Connection,
    caller: Caller,
    channel: str,
    filename: str,
    content_type: str,
    size: int,
    digest: str,
    announce: str | None,
) -> tuple[StoredFile, Posted | None]:
    now = time.time()
    row = _channel_for_post(conn, caller, channel, now)
    stored = StoredFile(
        id=secrets.token_urlsafe(12),
        channel=channel,
        filename=filename,
        content_type=content_type,
        size=size,
        sha256=digest,
        uploader=caller.name,
        created_at=now,
    )
    posted = None
    if announce is not None:
        posted = _insert_message(
            conn,
            caller,
            row,
            announce or f"Shared a file: {filename} ({size} bytes)",
            parent_id=None,
            metadata={"files": [stored.to_dict()]},
            expects_reply="none",
            client_msg_id=None,
            now=now,
        )
        stored = StoredFile(**{**stored.__dict__, "message_id": posted.message.id})
    conn.execute(
        "INSERT INTO files (id, sha256, channel_id, uploader_id, filename, content_type, size, message_id,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (stored.id, digest, row["id"], caller.agent_id, filename, content_type, size, stored.message_id, now),
    )
    return stored, posted


# -- reads (run in a reader thread, one snapshot each) -------------------------------------


def _find_key(conn: sqlite3.Connection, digest: str) -> KeyRecord | None:
    row = conn.execute("SELECT * FROM keys WHERE key_hash = ?", (digest,)).fetchone()
    return _key(row) if row else None


def _find_agent(conn: sqlite3.Connection, name: str) -> Agent | None:
    row = conn.execute("SELECT id, name, key_id FROM agents WHERE name = ?", (name,)).fetchone()
    return Agent(id=row["id"], name=row["name"], key_id=row["key_id"]) if row else None


def _list_keys(conn: sqlite3.Connection) -> list[KeyRecord]:
    return [_key(row) for row in conn.execute("SELECT * FROM keys ORDER BY id")]


def _list_channels(conn: sqlite3.Connection, caller: Caller, type_: str | None) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT c.*, EXISTS (SELECT 1 FROM memberships WHERE agent_id = :me AND channel_id = c.id) AS member,"
        " (SELECT count(*) FROM memberships WHERE channel_id = c.id) AS members"
        f" FROM channels c WHERE c.type != 'dm' AND c.archived = 0 AND {_VISIBLE}"
        " AND (:type IS NULL OR c.type = :type) ORDER BY c.name",
        _params(caller, type=type_),
    ).fetchall()
    return [{**policy.channel_public(row), "member": bool(row["member"]), "members": row["members"]} for row in rows]


def _read_channel(
    conn: sqlite3.Connection, caller: Caller, name: str, limit: int, before: int | None, since: int | None
) -> Page:
    channel = _channel(conn, caller, name)
    base = f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.channel_id = ?"
    if since is not None:
        rows = conn.execute(f"{base} AND m.id > ? ORDER BY m.id LIMIT ?", (channel["id"], since, limit + 1)).fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit]
    else:
        upper = before if before is not None else _high_water(conn) + 1
        rows = conn.execute(
            f"{base} AND m.id < ? ORDER BY m.id DESC LIMIT ?", (channel["id"], upper, limit + 1)
        ).fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit][::-1]
    messages = [_message(row) for row in rows]
    if messages:
        cursor = messages[-1].id
    elif since is not None:
        cursor = since
    else:
        cursor = _high_water(conn)
    return Page(messages=messages, cursor=cursor, channels=frozenset({channel["id"]}), has_more=has_more)


def _read_events(conn: sqlite3.Connection, caller: Caller, since: int | None, limit: int, channel: str | None) -> Page:
    """Everything for the caller (its channels, its DMs, its mentions), or one channel's messages;
    without ``since``, nothing yet and a cursor from now."""
    params = _params(caller)
    if channel is not None:
        channels = frozenset({_channel(conn, caller, channel)["id"]})
        agent_id = None
        where = "m.channel_id = :channel"
        params["channel"] = next(iter(channels))
    else:
        channels = frozenset(
            row[0]
            for row in conn.execute(
                "SELECT c.id FROM memberships ms JOIN channels c ON c.id = ms.channel_id WHERE ms.agent_id = :me"
                f" AND {_IN_SCOPE}",
                params,
            )
        )
        agent_id = caller.agent_id
        where = (
            "(m.channel_id IN (SELECT channel_id FROM memberships WHERE agent_id = :me)"
            " OR m.id IN (SELECT message_id FROM mentions WHERE agent_id = :me AND message_id > :since))"
        )
    if since is None:
        return Page(messages=[], cursor=_high_water(conn), channels=channels, agent_id=agent_id)
    rows = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.id > :since AND {_VISIBLE} AND {where}"
        " ORDER BY m.id LIMIT :limit",
        {**params, "since": since, "limit": limit + 1},
    ).fetchall()
    messages = [_message(row) for row in rows[:limit]]
    cursor = messages[-1].id if messages else since
    return Page(messages=messages, cursor=cursor, channels=channels, agent_id=agent_id, has_more=len(rows) > limit)


def _board(conn: sqlite3.Connection, caller: Caller) -> dict[str, Any]:
    params = _params(caller)
    channels = []
    for row in conn.execute(
        "SELECT c.*, ms.last_read_id FROM memberships ms JOIN channels c ON c.id = ms.channel_id"
        " WHERE ms.agent_id = :me AND c.archived = 0"
        f" AND {_IN_SCOPE} ORDER BY c.name",
        params,
    ).fetchall():
        unread = conn.execute(
            "SELECT count(*) FROM messages WHERE channel_id = ? AND id > ? AND author_id != ?",
            (row["id"], row["last_read_id"], caller.agent_id),
        ).fetchone()[0]
        latest = conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.channel_id = ? ORDER BY m.id DESC LIMIT 1",
            (row["id"],),
        ).fetchone()
        channels.append(
            {
                "channel": row["name"],
                "type": row["type"],
                "private": bool(row["private"]),
                "unread": unread,
                "last_read_id": row["last_read_id"],
                "latest": _message(latest).to_dict() if latest else None,
            }
        )
    questions = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS}, cl.expires_at AS claim_expires, ca.name AS claimed_by FROM {_MESSAGE_FROM}"
        " LEFT JOIN claims cl ON cl.message_id = m.id LEFT JOIN agents ca ON ca.id = cl.agent_id"
        " WHERE m.answered_by IS NULL AND m.author_id != :me AND (m.expects_reply = :my_name OR"
        "  (m.expects_reply = 'anyone' AND m.channel_id IN (SELECT channel_id FROM memberships WHERE agent_id = :me)))"
        " AND c.archived = 0 AND (cl.message_id IS NULL OR cl.agent_id = :me OR cl.expires_at < :now)"
        f" AND {_VISIBLE} ORDER BY m.id DESC LIMIT 20",
        {**params, "now": time.time()},
    ).fetchall()
    open_questions = [
        {
            **_message(row).to_dict(),
            "claimed_by": row["claimed_by"] if row["claim_expires"] and row["claim_expires"] > time.time() else None,
        }
        for row in questions
    ]
    unread_mentions = conn.execute(
        "SELECT count(*) FROM mentions WHERE agent_id = ? AND read = 0", (caller.agent_id,)
    ).fetchone()[0]
    return {
        "agent": caller.name,
        "channels": channels,
        "open_questions": open_questions,
        "unread_mentions": unread_mentions,
        "mentions": _mentions(conn, caller, True, 10),
        "cursor": _high_water(conn),
    }


def _mentions(conn: sqlite3.Connection, caller: Caller, unread_only: bool, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT mn.id AS mention_id, mn.read, {_MESSAGE_COLUMNS} FROM mentions mn"
        f" JOIN messages m ON m.id = mn.message_id {_MESSAGE_JOINS}"
        f" WHERE mn.agent_id = :me AND (:unread = 0 OR mn.read = 0) AND {_VISIBLE}"
        " ORDER BY mn.id DESC LIMIT :limit",
        _params(caller, unread=int(unread_only), limit=limit),
    ).fetchall()
    return [policy.mention(row["mention_id"], _message(row), bool(row["read"])) for row in rows]


#: Results are ranked among the newest matches, at least this many (all of them for rarer words): ranking
#: every match of a common word in a million messages would cost tens of milliseconds.
SEARCH_CANDIDATES = 500


def _search(
    conn: sqlite3.Connection, caller: Caller, query: str, channel: str | None, limit: int
) -> list[dict[str, Any]]:
    match = rules.fts_query(query)
    if not match:
        raise Unprocessable("the search query has no words to search for", code="invalid_query")
    channel_id = _channel(conn, caller, channel)["id"] if channel is not None else None
    candidates = max(SEARCH_CANDIDATES, limit * 10)
    while True:
        # The newest matches come straight off the FTS5 doclist in rowid order: no full scan.
        rows = conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM ("
            "  SELECT rowid FROM messages_fts WHERE messages_fts MATCH :match ORDER BY rowid DESC LIMIT :candidates"
            f") f JOIN messages m ON m.id = f.rowid {_MESSAGE_JOINS}"
            f" WHERE {_VISIBLE} AND (:channel IS NULL OR m.channel_id = :channel)",
            _params(caller, match=match, channel=channel_id, candidates=candidates),
        ).fetchall()
        if len(rows) >= limit or not _more_than(conn, match, candidates):
            break
        candidates *= 10  # too few of the newest matches are visible to this caller: look further back
    scores = rules.relevance([row["content"] for row in rows], rules.search_terms(query))
    best = sorted(zip(scores, rows, strict=True), key=lambda pair: (-pair[0], -pair[1]["id"]))[:limit]
    snippet = (
        "SELECT snippet(messages_fts, 0, '[', ']', '…', 16) FROM messages_fts WHERE messages_fts MATCH ? AND rowid = ?"
    )
    return [
        {
            **_message(row).to_dict(),
            "snippet": conn.execute(snippet, (match, row["id"])).fetchone()[0],  # one seek each
            "rank": round(score, 4),
        }
        for score, row in best
    ]


def _more_than(conn: sqlite3.Connection, match: str, count: int) -> bool:
    sql = "SELECT 1 FROM messages_fts WHERE messages_fts MATCH ? LIMIT 1 OFFSET ?"
    return conn.execute(sql, (match, count)).fetchone() is not None


def _agents(conn: sqlite3.Connection, caller: Caller, channel: str | None) -> list[dict[str, Any]]:
    if channel is not None:
        channel_id = _channel(conn, caller, channel)["id"]
        rows = conn.execute(
            "SELECT a.id, a.name, a.last_seen FROM memberships ms JOIN agents a ON a.id = ms.agent_id"
            " WHERE ms.channel_id = ? ORDER BY a.name",
            (channel_id,),
        ).fetchall()
    else:
        rows = conn.execute("SELECT id, name, last_seen FROM agents ORDER BY name").fetchall()
    return [{"id": row["id"], "name": row["name"], "last_seen": row["last_seen"]} for row in rows]


def _file(conn: sqlite3.Connection, caller: Caller, file_id: str) -> StoredFile:
    row = conn.execute(
        "SELECT f.*, c.name AS channel, a.name AS uploader FROM files f JOIN channels c ON c.id = f.channel_id"
        " JOIN agents a ON a.id = f.uploader_id WHERE f.id = ?",
        (file_id,),
    ).fetchone()
    missing = NotFound(f"no file '{file_id}' that you can see", code="file_not_found")
    if row is None:
        raise missing
    try:
        _channel(conn, caller, row["channel"])
    except (NotFound, Forbidden) as exc:
        raise missing from exc
    return StoredFile(
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


def _stats(conn: sqlite3.Connection) -> dict[str, Any]:
    count = {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("agents", "channels", "messages", "mentions", "claims", "files")
    }
    count["active_keys"] = conn.execute("SELECT count(*) FROM keys WHERE revoked_at IS NULL").fetchone()[0]
    count["high_water"] = _high_water(conn)
    return count


class SQLiteStore:
    """The default store. Keys and agents are cached in memory (a revoke updates the cache at once)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = SQLiteEngine(
            settings.database_path,
            synchronous=settings.sqlite_synchronous,
            migrations=MIGRATIONS,
            on_commit=self._on_commit,
        )
        self._subscriber: Subscriber | None = None
        self._limits = {
            "write": RateLimiter(settings.write_rate, settings.write_burst, "write"),
            "read": RateLimiter(settings.read_rate, settings.read_burst, "read"),
        }
        self._keys: dict[str, KeyRecord] = {}
        self._agents: dict[str, Agent] = {}

    async def start(self, subscriber: Subscriber) -> None:
        self._subscriber = subscriber
        self.settings.files_dir.mkdir(parents=True, exist_ok=True)
        await self.engine.start()

    async def close(self) -> None:
        await self.engine.close()

    def _on_commit(self, results: list[Any]) -> None:
        posted = [r for r in results if isinstance(r, Posted) and not r.replayed]
        posted += [p for r in results if isinstance(r, tuple) for p in r if isinstance(p, Posted)]
        if posted and self._subscriber is not None:
            posted.sort(key=lambda p: p.message.id)
            self._subscriber.publish(posted)

    async def spend(self, agent_id: int, kind: Literal["read", "write"]) -> Budget:
        """In memory: one process holds every bucket."""
        return self._limits[kind].take(agent_id)

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
        hashes = await self.engine.write(_revoke, target)
        for digest in hashes:
            self._keys.pop(digest, None)
        return len(hashes)

    async def authenticate(self, secret: str, agent_name: str | None) -> Caller:
        digest = rules.hash_key(secret)
        key = self._keys.get(digest)
        if key is None:
            key = await self.engine.read(_find_key, digest)
            if key is None:
                raise Unauthorized("this API key is not known to the relay", code="invalid_key")
            self._keys[digest] = key
        name = policy.acting_name(key, agent_name, time.time())
        agent = self._agents.get(name)
        if agent is None:
            agent = await self.engine.read(_find_agent, name)
        if key.kind == "machine" and (agent is None or agent.key_id != key.id):
            agent = await self.engine.write(_register, key, name)
        result = policy.caller(key, agent, name)
        if agent is not None:
            self._agents[name] = agent
        return result

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

    def _blob_path(self, digest: str) -> Path:
        return self.settings.files_dir / digest[:2] / digest

    def _write_blob(self, digest: str, data: bytes) -> None:
        path = self._blob_path(digest)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{secrets.token_hex(4)}.part")
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)

    async def save_file(
        self,
        caller: Caller,
        channel: str,
        filename: str,
        content_type: str,
        data: bytes,
        announce: str | None,
    ) -> tuple[StoredFile, Posted | None]:
        digest = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(self._write_blob, digest, data)
        return await self.engine.write(
            _insert_file, caller, channel, filename, content_type, len(data), digest, announce
        )

    async def open_file(self, caller: Caller, file_id: str) -> tuple[StoredFile, bytes]:
        stored = await self.engine.read(_file, caller, file_id)
        data = await asyncio.to_thread(self._blob_path(stored.sha256).read_bytes)
        return stored, data

    async def stats(self) -> dict[str, Any]:
        refusals = sum(limiter.refusals for limiter in self._limits.values())
        return {**await self.engine.read(_stats), "write_batches": self.engine.batches, "rate_limit_refusals": refusals}
