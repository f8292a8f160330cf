"""Taking turns and marking read: claims on questions, read marks, mentions read, presence."""

from __future__ import annotations

import time

from parley.relay import access
from parley.relay.errors import Conflict, NotFound
from parley.relay.models import (
    Caller,
    Claim,
    Draft,
    Page,
    Posted,
)
from parley.relay.store.base import Tx
from parley.relay.store.sql.channels import _channel_for_post
from parley.relay.store.sql.common import (
    MESSAGE_FROM,
    _join,
    _one,
    visible,
    who,
)
from parley.relay.store.sql.posting import _insert_message


async def claim(tx: Tx, caller: Caller, message_id: int, *, ttl: float) -> Claim:
    """Claim an open question for ``ttl`` seconds: exactly one agent wins."""
    row = await tx.one(
        f"SELECT m.author_id, m.expects_reply, m.answered_by FROM {MESSAGE_FROM} WHERE m.id = :id"
        f" AND {visible(tx, caller)}",
        **who(tx, caller),
        id=message_id,
    )
    if row is None:
        raise NotFound(f"no message {message_id} that you can see", code="message_not_found")
    access.check_claim(caller, message_id, row["author_id"], row["expects_reply"])
    if row["answered_by"] is not None:
        holder = await _one(tx, "SELECT name FROM agents WHERE id = :id", id=row["answered_by"])
        raise access.already_answered(message_id, holder["name"])
    now = time.time()
    held = await tx.one(
        "SELECT c.agent_id, c.expires_at, a.name FROM claims c JOIN agents a ON a.id = c.agent_id"
        " WHERE c.message_id = :id",
        id=message_id,
    )
    if held is not None and held["agent_id"] != caller.agent_id and held["expires_at"] > now:
        raise access.already_claimed(message_id, held["name"], held["expires_at"])
    await tx.run(
        "INSERT INTO claims (message_id, agent_id, claimed_at, expires_at) VALUES (:id, :me, :now, :expires)"
        " ON CONFLICT (message_id) DO UPDATE SET agent_id = excluded.agent_id, claimed_at = excluded.claimed_at,"
        " expires_at = excluded.expires_at",
        id=message_id,
        me=caller.agent_id,
        now=now,
        expires=now + ttl,
    )
    return Claim(message_id=message_id, holder=caller.name, expires_at=now + ttl)


async def release_claim(tx: Tx, caller: Caller, message_id: int, reason: str | None) -> tuple[bool, Posted | None]:
    """Give a claimed question back (a failing model, a change of plan) so another agent can take it at once;
    ``reason`` is posted in its thread as a reply that hands it back, leaving the question open. Released is
    False if the caller held no live claim on it; someone else's claim is theirs to release."""
    row = await tx.one(
        f"SELECT m.id, c.name AS channel FROM {MESSAGE_FROM} WHERE m.id = :id AND {visible(tx, caller)}",
        **who(tx, caller),
        id=message_id,
    )
    if row is None:
        raise NotFound(f"no message {message_id} that you can see", code="message_not_found")
    now = time.time()
    held = await tx.one(
        "SELECT c.agent_id, c.expires_at, a.name FROM claims c JOIN agents a ON a.id = c.agent_id"
        " WHERE c.message_id = :id AND c.expires_at > :now",
        id=message_id,
        now=now,
    )
    if held is not None and held["agent_id"] != caller.agent_id:
        raise Conflict(
            f"message {message_id} is claimed by '{held['name']}', not you; only they can release it",
            code="not_your_claim",
            holder=held["name"],
        )
    if held is not None:
        await tx.run("DELETE FROM claims WHERE message_id = :id", id=message_id)
    note = None
    if reason is not None:
        draft = Draft(reason, parent_id=message_id, metadata={"kind": "hand_back"}, answers=False)
        note = await _insert_message(tx, caller, await _channel_for_post(tx, caller, row["channel"], now), draft, now)
    return held is not None, note


def read_marks(page: Page) -> dict[int, int]:
    """Per channel, the newest id the page returned; a channel read also marks (and joins) its channel."""
    upto: dict[int, int] = {}
    for item in page.messages:
        upto[item.channel_id] = max(upto.get(item.channel_id, 0), item.id)
    if page.agent_id is None:
        for channel_id in page.channels:
            upto.setdefault(channel_id, 0)
    return upto


async def mark_read(tx: Tx, caller: Caller, marks: dict[int, int], *, join: bool) -> None:
    """Record what a page showed the caller (``read_marks``); reading a channel joins it (``join``)."""
    now = time.time()
    for channel_id, last_id in marks.items():
        if join:
            await _join(tx, caller.agent_id, channel_id, now)
        await tx.run(
            f"UPDATE memberships SET last_read_id = {tx.dialect.greatest}(last_read_id, :last)"
            " WHERE agent_id = :me AND channel_id = :channel",
            last=last_id,
            me=caller.agent_id,
            channel=channel_id,
        )


async def mark_mentions_read(tx: Tx, caller: Caller, mention_ids: list[int]) -> int:
    """Mark the caller's mentions read; how many were unread."""
    return await tx.run(
        f"UPDATE mentions SET read = TRUE WHERE agent_id = :me AND NOT read AND {tx.dialect.in_list('id', 'ids')}",
        me=caller.agent_id,
        ids=tx.dialect.to_list(mention_ids),
    )


async def record_seen(tx: Tx, seen: dict[int, float]) -> None:
    for agent_id, stamp in seen.items():
        await tx.run(
            f"UPDATE agents SET last_seen = {tx.dialect.greatest}(coalesce(last_seen, 0), :stamp) WHERE id = :id",
            stamp=stamp,
            id=agent_id,
        )
