"""Channels: create, join (a public one by posting too), invite, leave, archive, list."""

from __future__ import annotations

import time

from parley import limits, rules
from parley.limits import is_valid_name
from parley.relay import access
from parley.relay.errors import Conflict, Forbidden, Unprocessable
from parley.relay.models import (
    Caller,
    Channel,
)
from parley.relay.store.base import Tx
from parley.relay.store.sql.common import (
    _MEMBER,
    _agent_id,
    _channel,
    _invited,
    _join,
    _lookup,
    _may_see,
    _no_channel,
    _one,
    channel,
    visible,
    who,
)


async def _insert_channel(
    tx: Tx, caller: Caller, name: str, description: str, private: bool, now: float, *, encrypted: bool = False
) -> Channel:
    row = await _one(
        tx,
        "INSERT INTO channels (name, type, description, private, created_by, created_at, encrypted)"
        " VALUES (:name, :type, :description, :private, :me, :now, :encrypted) RETURNING *",
        name=name,
        type=rules.channel_type(name),
        description=description,
        private=private,
        me=caller.agent_id,
        now=now,
        encrypted=encrypted,
    )
    await _join(tx, caller.agent_id, row["id"], now)
    return _channel(row, member=True)


async def create_channel(
    tx: Tx, caller: Caller, name: str, description: str, private: bool, encrypted: bool = False
) -> tuple[Channel, bool]:
    """Create a channel and join it; an existing one the caller may see is joined instead (False).
    Whether a channel is sealed (``encrypted``) is fixed when it is created.

    A private channel lives in its creator's namespace ('planning' becomes 'alice~planning'), so no
    agent can take, or wait in, another's private channel; a public name never holds a '~'."""
    name = rules.resolve_channel(caller.name, name)
    if rules.channel_type(name) == "dm":
        raise Unprocessable("a direct-message conversation opens with its first message", code="invalid_name")
    if encrypted and description:
        raise Unprocessable(
            "a sealed channel takes no plaintext description (the relay would store and serve it in the clear);"
            " say what it is for in a sealed message instead",
            code="plaintext_in_sealed",
        )
    owner = rules.channel_owner(name)
    if private or owner is not None:
        name, private = rules.private_channel_name(caller.name, name), True
    access.check_scope(caller, name)
    now = time.time()
    found = await _lookup(tx, caller, name)
    if found is None or not (_may_see(caller, found) or await _invited(tx, caller, found)):
        if owner not in (None, caller.name):  # another's private channel is joined only by its members
            raise Forbidden(
                f"'{name}' is in {owner}'s namespace; your private channels are named '{caller.name}~<name>'"
                " (a member of theirs can invite you to it: add_member)",
                code="not_your_namespace",
            )
        if found is not None:
            raise _no_channel(name)
        return await _insert_channel(tx, caller, name, description, private, now, encrypted=encrypted), True
    if found.archived:
        raise Conflict(f"channel '{name}' is archived", code="channel_archived")
    if encrypted and not found.encrypted:
        raise Conflict(
            f"channel '{name}' exists and is not sealed; sealing is fixed when a channel is created."
            " Create a sealed channel under a new name",
            code="sealing_fixed",
        )
    await _join(tx, caller.agent_id, found.id, now)
    return found, False


async def add_member(tx: Tx, caller: Caller, channel_name: str, agent: str) -> tuple[bool, bool]:
    """Invite ``agent`` to a channel: it is a member once it joins (``join_channel``), never before, so nobody
    is put in a channel (and on a board) without consent. (invited, already a member)."""
    found = await channel(tx, caller, channel_name)
    if found.type == "dm":
        raise Forbidden("a direct-message conversation has exactly its two agents", code="dm_members_fixed")
    if found.private and not found.member:
        raise Forbidden(f"only members of '{channel_name}' can invite others to it", code="not_a_member")
    target = await _agent_id(tx, caller, agent)
    member = await tx.one(
        "SELECT 1 FROM memberships WHERE agent_id = :agent AND channel_id = :channel", agent=target, channel=found.id
    )
    if member is not None:
        return False, True
    pending = await _one(tx, "SELECT count(*) AS n FROM invitations WHERE inviter_id = :me", me=caller.agent_id)
    if pending["n"] >= limits.MAX_PENDING_INVITATIONS:
        raise Conflict(
            f"you have {pending['n']} invitations nobody has answered yet (at most {limits.MAX_PENDING_INVITATIONS});"
            " wait for answers before inviting more",
            code="too_many_invitations",
        )
    invited = await tx.run(
        "INSERT INTO invitations (agent_id, channel_id, inviter_id, created_at) VALUES (:agent, :channel, :me, :now)"
        " ON CONFLICT DO NOTHING",
        agent=target,
        channel=found.id,
        me=caller.agent_id,
        now=time.time(),
    )
    return invited == 1, False


async def archive_channel(tx: Tx, name: str) -> Channel:
    row = await tx.one("UPDATE channels SET archived = TRUE WHERE name = :name RETURNING *", name=name)
    if row is None:
        raise _no_channel(name)
    return _channel(row, member=False)


async def join_channel(tx: Tx, caller: Caller, name: str) -> tuple[Channel, bool]:
    """Join a channel (a public one is created if missing); False if the caller was a member already.
    Events then deliver everything posted there."""
    found = await _channel_for_post(tx, caller, name, time.time())
    return found, not found.member


async def leave_channel(tx: Tx, caller: Caller, name: str) -> bool:
    """Leave a channel: events stop delivering it (an @mention still arrives). False if not a member.
    Leaving a channel one is only invited to declines the invitation."""
    name = rules.resolve_channel(caller.name, name)
    invitation = await tx.run(
        "DELETE FROM invitations WHERE agent_id = :me AND channel_id IN (SELECT id FROM channels WHERE name = :name)",
        me=caller.agent_id,
        name=name,
    )
    if invitation:
        return False
    found = await channel(tx, caller, name)
    if found.type == "dm":
        raise Forbidden("a direct-message conversation cannot be left", code="dm_members_fixed")
    left = await tx.run(
        "DELETE FROM memberships WHERE agent_id = :me AND channel_id = :channel", me=caller.agent_id, channel=found.id
    )
    return left == 1


async def _welcome(tx: Tx, agent_id: int, name: str, channels: tuple[str, ...], now: float) -> None:
    """A new agent starts in the relay's default channels (those its key may use), created if missing."""
    newcomer = Caller(agent_id=agent_id, name=name, key_id=0)
    for channel_name in channels:
        found = await _lookup(tx, newcomer, channel_name)
        if found is None:
            await _insert_channel(tx, newcomer, channel_name, "", False, now)
        elif not found.private and not found.archived:
            await _join(tx, agent_id, found.id, now)


async def list_channels(tx: Tx, caller: Caller, type_: str | None) -> list[Channel]:
    """Channels the caller can see (not DMs, not archived), optionally of one type."""
    by_type = " AND c.type = :type" if type_ is not None else ""
    rows = await tx.all(
        f"SELECT c.*, {_MEMBER} AS member, (SELECT count(*) FROM memberships WHERE channel_id = c.id) AS members"
        f" FROM channels c WHERE c.type <> 'dm' AND NOT c.archived AND {visible(tx, caller)}{by_type} ORDER BY c.name",
        **who(tx, caller),
        type=type_,
    )
    return [_channel(row, member=bool(row["member"]), members=row["members"]) for row in rows]


async def _postable(tx: Tx, caller: Caller, name: str) -> tuple[str, Channel | None]:
    """The channel's full name, and the channel if it exists (None: a public name that posting creates), or
    the error that refuses a post there."""
    name = rules.resolve_channel(caller.name, name)
    access.check_scope(caller, name)
    found = await _lookup(tx, caller, name)
    if found is None and is_valid_name(name):  # only a public name is created by posting or joining
        return name, None
    if found is None or not (_may_see(caller, found) or await _invited(tx, caller, found)):
        raise _no_channel(name)
    if found.archived:
        raise Conflict(f"channel '{name}' is archived; it takes no new messages", code="channel_archived")
    return name, found


async def _channel_for_post(tx: Tx, caller: Caller, name: str, now: float) -> Channel:
    """The channel to post into, created on first post; the poster joins it.

    The hot path (a member posting to a public channel) is one query."""
    name, found = await _postable(tx, caller, name)
    if found is None:
        return await _insert_channel(tx, caller, name, "", False, now)
    if not found.member:
        await _join(tx, caller.agent_id, found.id, now)
    return found
