"""Reading: a channel, the events for an agent, mentions, the board, the agents."""

from __future__ import annotations

import time

from parley import limits
from parley.relay.models import (
    Board,
    Caller,
    Invitation,
    Mention,
    Page,
    Question,
    Seen,
    Unread,
)
from parley.relay.store.base import Tx
from parley.relay.store.sql.common import (
    MESSAGE_COLUMNS,
    MESSAGE_FROM,
    MESSAGE_JOINS,
    _channel,
    _one,
    channel,
    high_water,
    in_scope,
    known_agents,
    message,
    visible,
    who,
)


async def read_channel(
    tx: Tx,
    caller: Caller,
    name: str,
    *,
    limit: int,
    before: int | None = None,
    since: int | None = None,
    before_time: float | None = None,
) -> Page:
    """A channel's messages, oldest first: after ``since``, before ``before`` (an id, and/or a time), or the
    latest page."""
    found = await channel(tx, caller, name)
    base = f"SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.channel_id = :channel"
    if before_time is not None:
        base += " AND m.created_at < :before_time"
    if since is not None:
        rows = await tx.all(
            f"{base} AND m.id > :since ORDER BY m.id LIMIT :limit",
            channel=found.id,
            since=since,
            limit=limit + 1,
            before_time=before_time,
        )
        has_more = len(rows) > limit
        rows = rows[:limit]
    else:
        upper = before if before is not None else await high_water(tx) + 1
        rows = await tx.all(
            f"{base} AND m.id < :upper ORDER BY m.id DESC LIMIT :limit",
            channel=found.id,
            upper=upper,
            limit=limit + 1,
            before_time=before_time,
        )
        has_more = len(rows) > limit
        rows = rows[:limit][::-1]
    messages = [message(tx, row) for row in rows]
    if messages:
        cursor = messages[-1].id
    elif since is not None:
        cursor = since
    else:
        cursor = await high_water(tx)
    return Page(messages=messages, cursor=cursor, channels=frozenset({found.id}), has_more=has_more)


async def read_events(
    tx: Tx, caller: Caller, *, since: int | None, limit: int, channel_name: str | None = None
) -> Page:
    """Everything for the caller (its channels, its DMs, its mentions), or one channel's messages;
    without ``since``, nothing yet and a cursor from now."""
    params = who(tx, caller)
    if channel_name is not None:
        channel_id = (await channel(tx, caller, channel_name)).id
        channels, agent_id = frozenset({channel_id}), None
        where = "m.channel_id = :channel"
        params["channel"] = channel_id
    else:
        rows = await tx.all(
            "SELECT c.id FROM memberships ms JOIN channels c ON c.id = ms.channel_id WHERE ms.agent_id = :me"
            f" AND {in_scope(tx, caller)}",
            **params,
        )
        channels, agent_id = frozenset(row["id"] for row in rows), caller.agent_id
        where = (
            "(m.channel_id IN (SELECT channel_id FROM memberships WHERE agent_id = :me)"
            " OR m.id IN (SELECT message_id FROM mentions WHERE agent_id = :me AND message_id > :since))"
        )
    if since is None:
        return Page(messages=[], cursor=await high_water(tx), channels=channels, agent_id=agent_id)
    rows = await tx.all(
        f"SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id > :since AND {visible(tx, caller)} AND {where}"
        " ORDER BY m.id LIMIT :limit",
        **params,
        since=since,
        limit=limit + 1,
    )
    messages = [message(tx, row) for row in rows[:limit]]
    cursor = messages[-1].id if messages else since
    return Page(messages=messages, cursor=cursor, channels=channels, agent_id=agent_id, has_more=len(rows) > limit)


async def mentions(tx: Tx, caller: Caller, *, unread_only: bool, limit: int) -> list[Mention]:
    unread = " AND NOT mn.read" if unread_only else ""
    rows = await tx.all(
        f"SELECT mn.id AS mention_id, mn.read, {MESSAGE_COLUMNS} FROM mentions mn"
        f" JOIN messages m ON m.id = mn.message_id {MESSAGE_JOINS}"
        f" WHERE mn.agent_id = :me{unread} AND {visible(tx, caller)}"
        " ORDER BY mn.id DESC LIMIT :limit",
        **who(tx, caller),
        limit=limit,
    )
    return [Mention(id=row["mention_id"], message=message(tx, row), read=bool(row["read"])) for row in rows]


async def board(tx: Tx, caller: Caller, *, after: str | None = None) -> Board:
    """The caller's channels with unread counts (a page of ``BOARD_CHANNELS`` by name, after ``after``), open
    questions for it, its unread mentions and the invitations it has not answered: bounded, however many
    channels it is in."""
    params = who(tx, caller)
    channels = []
    rows = await tx.all(
        f"SELECT c.*, ms.last_read_id FROM memberships ms JOIN channels c ON c.id = ms.channel_id"
        f" WHERE ms.agent_id = :me AND NOT c.archived AND {in_scope(tx, caller)} AND c.name > :after"
        " ORDER BY c.name LIMIT :page",
        **params,
        after=after or "",
        page=limits.BOARD_CHANNELS + 1,
    )
    more = len(rows) > limits.BOARD_CHANNELS
    for row in rows[: limits.BOARD_CHANNELS]:
        unread = await _one(
            tx,
            "SELECT count(*) AS n FROM messages WHERE channel_id = :channel AND id > :last AND author_id <> :me",
            channel=row["id"],
            last=row["last_read_id"],
            me=caller.agent_id,
        )
        latest = await tx.one(
            f"SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.channel_id = :channel ORDER BY m.id DESC LIMIT 1",
            channel=row["id"],
        )
        channels.append(
            Unread(
                channel=_channel(row, member=True),
                unread=unread["n"],
                last_read_id=row["last_read_id"],
                latest=message(tx, latest) if latest else None,
            )
        )
    now = time.time()
    questions = await tx.all(
        f"SELECT {MESSAGE_COLUMNS}, cl.expires_at AS claim_expires, ca.name AS claimed_by FROM {MESSAGE_FROM}"
        " LEFT JOIN claims cl ON cl.message_id = m.id LEFT JOIN agents ca ON ca.id = cl.agent_id"
        " WHERE m.answered_by IS NULL AND m.author_id <> :me AND (m.expects_reply = :my_name OR"
        "  (m.expects_reply = 'anyone' AND m.channel_id IN (SELECT channel_id FROM memberships WHERE agent_id = :me)))"
        " AND NOT c.archived AND (cl.message_id IS NULL OR cl.agent_id = :me OR cl.expires_at < :now)"
        f" AND {visible(tx, caller)} ORDER BY m.id DESC LIMIT 20",
        **params,
        now=now,
    )
    unread_mentions = await _one(
        tx,
        "SELECT count(*) AS n FROM mentions mn JOIN messages m ON m.id = mn.message_id"
        f" JOIN channels c ON c.id = m.channel_id WHERE mn.agent_id = :me AND NOT mn.read AND {visible(tx, caller)}",
        **params,
    )
    return Board(
        agent=caller.name,
        channels=channels,
        open_questions=[
            Question(message(tx, row), row["claimed_by"] if (row["claim_expires"] or 0) > now else None)
            for row in questions
        ],
        unread_mentions=unread_mentions["n"],
        mentions=await mentions(tx, caller, unread_only=True, limit=10),
        cursor=await high_water(tx),
        next_after=channels[-1].channel.name if more else None,
        invitations=await _invitations(tx, caller),
    )


async def _invitations(tx: Tx, caller: Caller) -> list[Invitation]:
    """The newest invitations the caller has not answered (join the channel to accept, leave it to decline)."""
    rows = await tx.all(
        "SELECT c.name AS channel, c.encrypted, a.name AS inviter, i.created_at FROM invitations i"
        " JOIN channels c ON c.id = i.channel_id JOIN agents a ON a.id = i.inviter_id"
        f" WHERE i.agent_id = :me AND NOT c.archived AND {in_scope(tx, caller)} ORDER BY i.created_at DESC LIMIT 20",
        **who(tx, caller),
    )
    return [Invitation(row["channel"], row["inviter"], row["created_at"], bool(row["encrypted"])) for row in rows]


async def agents(tx: Tx, caller: Caller, *, channel_name: str | None) -> list[Seen]:
    """Every agent, or a channel's members, with when the database last saw each."""
    if channel_name is None:
        rows = await tx.all(
            f"SELECT a.id, a.name, a.last_seen, a.human FROM agents a WHERE {known_agents(tx, caller)} ORDER BY a.name",
            **who(tx, caller),
        )
    else:
        rows = await tx.all(
            "SELECT a.id, a.name, a.last_seen, a.human FROM memberships ms JOIN agents a ON a.id = ms.agent_id"
            " WHERE ms.channel_id = :channel ORDER BY a.name",
            channel=(await channel(tx, caller, channel_name)).id,
        )
    return [Seen(row["id"], row["name"], row["last_seen"], bool(row["human"])) for row in rows]


async def counts(tx: Tx) -> dict[str, int]:
    """What the relay holds, for the operator's stats."""
    found = {}
    for table in ("agents", "channels", "messages", "mentions", "claims", "files"):
        found[table] = int((await _one(tx, f"SELECT count(*) AS n FROM {table}"))["n"])
    found["active_keys"] = int((await _one(tx, "SELECT count(*) AS n FROM keys WHERE revoked_at IS NULL"))["n"])
    found["high_water"] = await high_water(tx)
    return found
