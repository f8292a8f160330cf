"""What every operation shares: the message columns, rows as records, who may see what, channels by name,
and the small steps (join, an agent by name) several areas take."""

from __future__ import annotations

import json
from typing import Any

from parley import rules
from parley.relay import access
from parley.relay.errors import NotFound
from parley.relay.models import (
    Caller,
    Channel,
    KeyRecord,
    Message,
)
from parley.relay.store.base import Row, Tx

MESSAGE_COLUMNS = (
    "m.id, m.channel_id, c.name AS channel, a.name AS author, m.content, m.metadata, m.parent_id,"
    " m.expects_reply, m.created_at, m.mentions, m.sealed, m.client_msg_id"
)
MESSAGE_JOINS = "JOIN channels c ON c.id = m.channel_id JOIN agents a ON a.id = m.author_id"
MESSAGE_FROM = f"messages m {MESSAGE_JOINS}"
_MEMBER = "EXISTS (SELECT 1 FROM memberships WHERE agent_id = :me AND channel_id = c.id)"
_LOOKUP = f"SELECT c.*, {_MEMBER} AS member FROM channels c WHERE c.name = :name"


def message(tx: Tx, row: Row) -> Message:
    """A row selected with ``MESSAGE_COLUMNS``."""
    return Message(
        id=row["id"],
        channel_id=row["channel_id"],
        channel=row["channel"],
        author=row["author"],
        content=row["content"],
        metadata=tx.dialect.from_json(row["metadata"]) if row["metadata"] else None,
        parent_id=row["parent_id"],
        expects_reply=row["expects_reply"],
        created_at=row["created_at"],
        mentions=tuple(row["mentions"].split(",")) if row["mentions"] else (),
        sealed=json.loads(row["sealed"]) if row["sealed"] else None,
        client_msg_id=row["client_msg_id"] if row["sealed"] else None,
    )


def _key(tx: Tx, row: Row) -> KeyRecord:
    return KeyRecord(
        id=row["id"],
        kind=row["kind"],
        prefix=row["prefix"],
        machine=row["machine"],
        agent_name=row["agent_name"],
        channels=tx.dialect.from_list(row["channels"]) if row["channels"] is not None else None,
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


def _channel(row: Row, *, member: bool, members: int = 0) -> Channel:
    return Channel(
        id=row["id"],
        name=row["name"],
        type=row["type"],
        # A sealed channel shows no plaintext about itself (one stored before that rule is not served).
        description="" if row["encrypted"] else row["description"],
        private=bool(row["private"]),
        archived=bool(row["archived"]),
        created_at=row["created_at"],
        member=member,
        members=members,
        encrypted=bool(row["encrypted"]),
    )


async def _one(tx: Tx, sql: str, **params: Any) -> Row:
    """The row a statement always yields (a count, an ``INSERT ... RETURNING``)."""
    row = await tx.one(sql, **params)
    if row is None:
        raise LookupError(f"no row from {sql!r}")
    return row


def who(tx: Tx, caller: Caller) -> dict[str, Any]:
    """The parameters ``visible`` and ``in_scope`` refer to."""
    scope = tx.dialect.to_list(sorted(caller.scope)) if caller.scope is not None else None
    return {"me": caller.agent_id, "my_name": caller.name, "scope": scope}


def in_scope(tx: Tx, caller: Caller) -> str:
    """SQL: channel ``c`` is within the caller's key scope (its DMs always are)."""
    if caller.scope is None:
        return "TRUE"
    return f"(c.type = 'dm' OR {tx.dialect.in_list('c.name', 'scope')})"


def visible(tx: Tx, caller: Caller) -> str:
    """SQL: the caller may see channel ``c``: public or a member, and within its key scope."""
    member = "c.id IN (SELECT channel_id FROM memberships WHERE agent_id = :me)"
    return f"(NOT c.private OR {member}) AND {in_scope(tx, caller)}"


async def high_water(tx: Tx) -> int:
    """The newest message id this snapshot sees."""
    row = await _one(tx, "SELECT coalesce(max(id), 0) AS n FROM messages")
    return int(row["n"])


async def _join(tx: Tx, agent_id: int, channel_id: int, now: float) -> bool:
    joined = await tx.run(
        "INSERT INTO memberships (agent_id, channel_id, joined_at) VALUES (:agent, :channel, :now)"
        " ON CONFLICT DO NOTHING",
        agent=agent_id,
        channel=channel_id,
        now=now,
    )
    if joined == 1:  # an invitation is answered by joining
        await tx.run(
            "DELETE FROM invitations WHERE agent_id = :agent AND channel_id = :channel",
            agent=agent_id,
            channel=channel_id,
        )
    return joined == 1


async def _invited(tx: Tx, caller: Caller, channel: Channel) -> bool:
    row = await tx.one(
        "SELECT 1 FROM invitations WHERE agent_id = :me AND channel_id = :channel",
        me=caller.agent_id,
        channel=channel.id,
    )
    return row is not None


def known_agents(tx: Tx, caller: Caller) -> str:
    """SQL: the caller may know of agent ``a``. A channel-limited key knows itself and the members of the
    channels it may see (its DM partners among them), so no agent outside its scope is revealed."""
    if caller.scope is None:
        return "TRUE"
    shared = (
        f"SELECT ms.agent_id FROM memberships ms JOIN channels c ON c.id = ms.channel_id WHERE {visible(tx, caller)}"
    )
    return f"(a.id = :me OR a.id IN ({shared}))"


async def _agent_id(tx: Tx, caller: Caller, name: str) -> int:
    """The id of an agent the caller may know of."""
    row = await tx.one(
        f"SELECT a.id FROM agents a WHERE a.name = :name AND {known_agents(tx, caller)}", **who(tx, caller), name=name
    )
    if row is None:
        raise NotFound(f"no agent named '{name}'", code="agent_not_found")
    return int(row["id"])


async def _load_message(tx: Tx, message_id: int) -> Message:
    return message(tx, await _one(tx, f"SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id = :id", id=message_id))


async def _lookup(tx: Tx, caller: Caller, name: str) -> Channel | None:
    """The channel named ``name`` and whether the caller is a member, visible to it or not."""
    row = await tx.one(_LOOKUP, me=caller.agent_id, name=name)
    return _channel(row, member=bool(row["member"])) if row is not None else None


def _may_see(caller: Caller, channel: Channel) -> bool:
    granted = caller.scope is not None and channel.name in caller.scope
    return not channel.private or channel.member or granted


def _no_channel(name: str) -> NotFound:
    return NotFound(f"no channel named '{name}'", code="channel_not_found")


async def channel(tx: Tx, caller: Caller, name: str) -> Channel:
    """The channel ``name`` (``@bob``: the DM with bob) if the caller may see it; a private channel it may not
    see does not exist."""
    name = rules.resolve_channel(caller.name, name)
    access.check_scope(caller, name)
    found = await _lookup(tx, caller, name)
    if found is None or not _may_see(caller, found):
        raise _no_channel(name)
    return found
