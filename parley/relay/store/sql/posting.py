"""Posting: a message to a channel or a DM, stored once however often it is retried."""

from __future__ import annotations

import dataclasses
import json
import time

from parley import rules
from parley.relay.errors import Conflict, NotFound, Unprocessable
from parley.relay.models import (
    Caller,
    Channel,
    Draft,
    Message,
    Posted,
)
from parley.relay.store.base import Tx
from parley.relay.store.sql.channels import _channel_for_post
from parley.relay.store.sql.common import (
    _agent_id,
    _join,
    _load_message,
    _one,
)

_INSERT_MESSAGE = (
    "INSERT INTO messages (channel_id, author_id, content, metadata, parent_id, expects_reply, client_msg_id,"
    " mentions, created_at, sealed) VALUES (:channel, :me, :content, :metadata, :parent, :expects, :client_msg_id,"
    " :mentions, :now, :sealed) RETURNING id"
)


async def _expects_reply(tx: Tx, caller: Caller, value: str) -> str:
    if value in ("none", "anyone"):
        return value
    if value == caller.name:
        raise Unprocessable(
            "expects_reply cannot name yourself; use 'anyone' or another agent", code="invalid_expects_reply"
        )
    await _agent_id(tx, caller, value)
    return value


async def _mentioned(tx: Tx, caller: Caller, channel: Channel, draft: Draft) -> list[tuple[int, str]]:
    """The agents a message @mentions that can read it, in the order they are mentioned (a sealed message
    names them beside its envelope)."""
    said = list(dict.fromkeys(draft.mentions)) if draft.sealed is not None else rules.parse_mentions(draft.content)
    names = [name for name in said if name != caller.name]
    if not names:
        return []
    rows = await tx.all(
        "SELECT a.id, a.name, EXISTS (SELECT 1 FROM memberships WHERE agent_id = a.id AND channel_id = :channel)"
        f" AS member FROM agents a WHERE {tx.dialect.in_list('a.name', 'names')}",
        channel=channel.id,
        names=tx.dialect.to_list(names),
    )
    found = [(row["id"], row["name"]) for row in rows if not channel.private or row["member"]]
    return sorted(found, key=lambda pair: names.index(pair[1]))


async def _insert_message(tx: Tx, caller: Caller, channel: Channel, draft: Draft, now: float) -> Posted:
    parent_id, content = draft.parent_id, draft.content
    if parent_id is not None:
        parent = await tx.one("SELECT channel_id FROM messages WHERE id = :id", id=parent_id)
        if parent is None or parent["channel_id"] != channel.id:
            raise NotFound(f"no message {parent_id} in '{channel.name}' to reply to", code="parent_not_found")
    _check_sealing(channel, draft)
    expects = await _expects_reply(tx, caller, draft.expects_reply or "none")
    mentioned = await _mentioned(tx, caller, channel, draft)
    inserted = await _one(
        tx,
        _INSERT_MESSAGE,
        channel=channel.id,
        me=caller.agent_id,
        content=content,
        metadata=tx.dialect.to_json(draft.metadata) if draft.metadata else None,
        parent=parent_id,
        expects=expects,
        client_msg_id=draft.client_msg_id,
        mentions=",".join(name for _, name in mentioned),
        now=now,
        sealed=json.dumps(draft.sealed, separators=(",", ":")) if draft.sealed is not None else None,
    )
    message_id = int(inserted["id"])
    notify = {agent_id for agent_id, _ in mentioned}
    if mentioned:
        await tx.run(
            "INSERT INTO mentions (message_id, agent_id)"
            f" SELECT :message, id FROM agents WHERE {tx.dialect.in_list('id', 'ids')} ON CONFLICT DO NOTHING",
            message=message_id,
            ids=tx.dialect.to_list(sorted(notify)),
        )
    if parent_id is not None and draft.answers:
        await tx.run(
            "UPDATE messages SET answered_by = :me WHERE id = :parent AND answered_by IS NULL AND author_id <> :me"
            " AND expects_reply IN ('anyone', :my_name) AND NOT EXISTS (SELECT 1 FROM claims WHERE"
            " message_id = :parent AND agent_id <> :me AND expires_at > :now)",  # a live claim protects the answer
            me=caller.agent_id,
            parent=parent_id,
            my_name=caller.name,
            now=now,
        )
    if channel.type == "dm":
        members = await tx.all("SELECT agent_id FROM memberships WHERE channel_id = :channel", channel=channel.id)
        notify.update(row["agent_id"] for row in members)
    stored = stored_message(
        message_id, channel.id, channel.name, caller, draft, now, expects, tuple(name for _, name in mentioned)
    )
    posted = Posted(message=stored, replayed=False, notify_agents=tuple(sorted(notify)))
    tx.publish(posted)
    return posted


def stored_message(
    message_id: int,
    channel_id: int,
    channel: str,
    caller: Caller,
    draft: Draft,
    now: float,
    expects: str,
    mentions: tuple[str, ...] = (),
) -> Message:
    """The message a post stored, as its author gets it back."""
    return Message(
        id=message_id,
        channel_id=channel_id,
        channel=channel,
        author=caller.name,
        content=draft.content,
        metadata=draft.metadata or None,
        parent_id=draft.parent_id,
        expects_reply=expects,
        created_at=now,
        mentions=mentions,
        sealed=draft.sealed,
        client_msg_id=draft.client_msg_id if draft.sealed is not None else None,
    )


def _check_sealing(channel: Channel, draft: Draft) -> None:
    """A sealed channel takes envelopes only; a plain one takes none."""
    if channel.encrypted and draft.sealed is None:
        raise Unprocessable(
            f"'{channel.name}' is a sealed channel: the relay takes only sealed envelopes there, never plaintext."
            " Post with a parley client that holds its key (get the channel's join link from a member and run"
            " parley join LINK)",
            code="sealed_channel",
        )
    if draft.sealed is not None and not channel.encrypted:
        raise Unprocessable(
            f"'{channel.name}' is not a sealed channel; send plain content (channels are sealed when created)",
            code="not_sealed",
        )


async def _replay(tx: Tx, caller: Caller, channel: str, draft: Draft) -> Posted | None:
    """The message an earlier attempt of this send stored, if any."""
    if draft.client_msg_id is None:
        return None
    row = await tx.one(
        "SELECT id FROM messages WHERE author_id = :me AND client_msg_id = :client_msg_id",
        me=caller.agent_id,
        client_msg_id=draft.client_msg_id,
    )
    if row is None:
        return None
    original = await _load_message(tx, row["id"])
    if original.channel != channel or (original.content, original.sealed) != (draft.content, draft.sealed):
        raise Conflict(
            f"client_msg_id '{draft.client_msg_id}' was already used for message {original.id} with different"
            " content or channel; use a new client_msg_id for a new message",
            code="client_msg_id_reused",
            message_id=original.id,
        )
    return Posted(message=original, replayed=True)


async def post(tx: Tx, caller: Caller, channel: str, draft: Draft) -> Posted:
    """Post to a channel (created on first post, public; ``@bob`` is a DM to bob); a retried ``client_msg_id``
    stores nothing."""
    if channel.startswith(rules.DM_WITH):
        return await post_dm(tx, caller, channel.removeprefix(rules.DM_WITH), draft)
    replay = await _replay(tx, caller, channel, draft)
    if replay is not None:
        return replay
    now = time.time()
    return await _insert_message(tx, caller, await _channel_for_post(tx, caller, channel, now), draft, now)


def plain_post(caller: Caller, channel: str, draft: Draft) -> str | None:
    """The channel name, if this post asks nothing of ``post`` beyond an existing channel the caller is a member
    of, that takes its kind of content (sealed or plain) and is not archived or a DM: no reply, no question for
    an agent, no mention, no DM to open. A store may write such posts in bulk (``postgres.post_many``) and hand
    every other post, or one those checks refuse, to ``post``."""
    if channel.startswith(rules.DM_WITH) or draft.parent_id is not None or not caller.may_use(channel):
        return None
    if (draft.expects_reply or "none") not in ("none", "anyone"):
        return None
    said = draft.mentions if draft.sealed is not None else rules.parse_mentions(draft.content)
    if any(name != caller.name for name in said):
        return None
    return channel


async def post_dm(tx: Tx, caller: Caller, target: str, draft: Draft) -> Posted:
    """A direct message: a private two-member channel, opened by the first message."""
    if target == caller.name:
        raise Unprocessable("you cannot send a direct message to yourself", code="dm_to_self")
    name = rules.dm_channel_name(caller.name, target)
    target_id = await _agent_id(tx, caller, target)
    now = time.time()
    row = await tx.one("SELECT id FROM channels WHERE name = :name", name=name)
    if row is None:
        row = await _one(
            tx,
            "INSERT INTO channels (name, type, private, created_by, created_at)"
            " VALUES (:name, 'dm', TRUE, :me, :now) RETURNING id",
            name=name,
            me=caller.agent_id,
            now=now,
        )
    await _join(tx, caller.agent_id, row["id"], now)
    await _join(tx, target_id, row["id"], now)
    return await post(tx, caller, name, dataclasses.replace(draft, expects_reply=draft.expects_reply or target))
