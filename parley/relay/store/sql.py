"""The relay's operations, written once for SQLite and PostgreSQL.

Each operation is ``async def op(tx, ...)`` and runs in one transaction (``base.Tx``): a read in one
snapshot, a write in one savepoint of the writer's group commit, where a raised ``RelayError`` rolls
back that write alone. Writes announce new messages with ``tx.publish``. Operations return records
(``models``); the HTTP layer shapes the JSON. Where the two databases differ, ``tx.dialect`` says how.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from typing import Any

from parley import limits, rules
from parley.limits import is_valid_name
from parley.relay import access
from parley.relay.errors import Conflict, Forbidden, NotFound, Unprocessable
from parley.relay.models import (
    Agent,
    Board,
    Caller,
    Channel,
    Claim,
    Draft,
    Invitation,
    KeyRecord,
    Mention,
    Message,
    Page,
    Posted,
    Question,
    Seen,
    StoredFile,
    Unread,
    Upload,
)
from parley.relay.store.base import Row, Tx
from parley.sealed import envelope

MESSAGE_COLUMNS = (
    "m.id, m.channel_id, c.name AS channel, a.name AS author, m.content, m.metadata, m.parent_id,"
    " m.expects_reply, m.created_at, m.mentions, m.sealed, m.client_msg_id"
)
MESSAGE_JOINS = "JOIN channels c ON c.id = m.channel_id JOIN agents a ON a.id = m.author_id"
MESSAGE_FROM = f"messages m {MESSAGE_JOINS}"
_MEMBER = "EXISTS (SELECT 1 FROM memberships WHERE agent_id = :me AND channel_id = c.id)"
_LOOKUP = f"SELECT c.*, {_MEMBER} AS member FROM channels c WHERE c.name = :name"
_INSERT_MESSAGE = (
    "INSERT INTO messages (channel_id, author_id, content, metadata, parent_id, expects_reply, client_msg_id,"
    " mentions, created_at, sealed) VALUES (:channel, :me, :content, :metadata, :parent, :expects, :client_msg_id,"
    " :mentions, :now, :sealed) RETURNING id"
)


# -- rows to records --------------------------------------------------------------------------


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


# -- small helpers ------------------------------------------------------------------------------


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


# -- channels -----------------------------------------------------------------------------------


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


# -- keys and identity --------------------------------------------------------------------------


async def create_key(
    tx: Tx,
    kind: str,
    *,
    machine: str | None = None,
    agent_name: str | None = None,
    channels: list[str] | None = None,
    expires_in: float | None = None,
    welcome: tuple[str, ...] = (),
    human: bool = False,
) -> tuple[KeyRecord, str]:
    """A new key and its secret (shown once). An agent key's agent is created with it, in the ``welcome``
    channels its key may use."""
    access.check_key_request(kind, machine, agent_name, channels)
    now = time.time()
    if kind == "machine":
        overlapping = await tx.one(
            "SELECT machine FROM keys WHERE machine <> :machine"
            " AND (:machine LIKE machine || '-%' OR machine LIKE :machine || '-%')",
            machine=machine,
        )
        if overlapping:
            raise Conflict(
                f"machine '{machine}' would share agent names with machine '{overlapping['machine']}'"
                " (names are '<machine>-<project>'); pick a machine name that neither starts the other",
                code="machine_name_overlaps",
            )
        active = await tx.one(
            "SELECT 1 FROM keys WHERE machine = :machine AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > :now)",
            machine=machine,
            now=now,
        )
        if active:
            raise Conflict(
                f"machine '{machine}' already has an active key; revoke it first to rotate", code="machine_key_exists"
            )
    else:
        row = await tx.one("SELECT key_id FROM agents WHERE name = :name", name=agent_name)
        if row is not None and row["key_id"] is not None:
            raise Conflict(f"'{agent_name}' is registered under a machine key; pick another name", code="name_taken")
        if row is None:
            created = await _one(
                tx,
                "INSERT INTO agents (name, created_at, human) VALUES (:name, :now, :human) RETURNING id",
                name=agent_name,
                now=now,
                human=human,
            )
            assert agent_name is not None
            allowed = [c for c in welcome if channels is None or c in channels]
            await _welcome(tx, created["id"], agent_name, tuple(allowed), now)
    secret, digest, prefix = access.new_key(kind)
    row = await _one(
        tx,
        "INSERT INTO keys (kind, key_hash, prefix, machine, agent_name, channels, created_at, expires_at)"
        " VALUES (:kind, :digest, :prefix, :machine, :agent_name, :channels, :now, :expires) RETURNING *",
        kind=kind,
        digest=digest,
        prefix=prefix,
        machine=machine,
        agent_name=agent_name,
        channels=tx.dialect.to_list(sorted(set(channels))) if channels is not None else None,
        now=now,
        expires=now + expires_in if expires_in is not None else None,
    )
    return _key(tx, row), secret


async def revoke(tx: Tx, target: str) -> list[tuple[int, str]]:
    """Revoke by key, key prefix, key id, agent name (its agent keys) or machine name; the revoked keys' ids
    and hashes."""
    rows = await tx.all(
        "UPDATE keys SET revoked_at = :now WHERE revoked_at IS NULL AND (key_hash = :digest OR prefix = :target"
        " OR agent_name = :target OR machine = :target OR CAST(id AS TEXT) = :target)"
        " RETURNING id, key_hash, agent_name",
        now=time.time(),
        digest=access.hash_key(target),
        target=target,
    )
    for row in rows:  # a revoked agent holds no question hostage: its claims end with its key
        await tx.run(
            "DELETE FROM claims WHERE agent_id IN (SELECT id FROM agents WHERE key_id = :key OR name = :name)",
            key=row["id"],
            name=row["agent_name"],
        )
    return [(row["id"], row["key_hash"]) for row in rows]


async def revoked_keys(tx: Tx) -> list[int]:
    return [row["id"] for row in await tx.all("SELECT id FROM keys WHERE revoked_at IS NOT NULL")]


async def list_keys(tx: Tx) -> list[KeyRecord]:
    return [_key(tx, row) for row in await tx.all("SELECT * FROM keys ORDER BY id")]


IDENTIFY = (
    "SELECT k.*, a.id AS a_id, a.name AS a_name, a.key_id AS a_key_id FROM keys k"
    " LEFT JOIN agents a ON a.name = coalesce(k.agent_name, :name) WHERE k.key_hash = :digest"
)


async def identify(tx: Tx, digest: str, name: str | None) -> tuple[KeyRecord, Agent | None] | None:
    """The key with this hash, and the agent it acts as (its own, or ``name`` for a machine key)."""
    row = await tx.one(IDENTIFY, name=name, digest=digest)
    return identified(tx, row) if row is not None else None


def identified(tx: Tx, row: Row) -> tuple[KeyRecord, Agent | None]:
    agent = Agent(id=row["a_id"], name=row["a_name"], key_id=row["a_key_id"]) if row["a_id"] is not None else None
    return _key(tx, row), agent


class TooManyAgents(Forbidden):
    code = "too_many_agents"


async def register(tx: Tx, key: KeyRecord, name: str, *, most: int, welcome: tuple[str, ...] = ()) -> Agent:
    """Bind a machine-key name on first use, up to ``most`` names a machine, starting in the ``welcome``
    channels; a name stays with its machine key (or its rotation)."""
    row = await tx.one("SELECT id, key_id FROM agents WHERE name = :name", name=name)
    now = time.time()
    if row is None:
        held = await _one(
            tx,
            "SELECT count(*) AS n FROM agents a JOIN keys k ON k.id = a.key_id WHERE k.machine = :machine",
            machine=key.machine,
        )
        if held["n"] >= most:
            raise TooManyAgents(
                f"machine '{key.machine}' already has {held['n']} agents, its limit; reuse one of their names"
                " (GET /api/v1/agents), or ask the operator to raise PARLEY_MAX_AGENTS_PER_MACHINE"
            )
        created = await _one(
            tx,
            "INSERT INTO agents (name, key_id, created_at) VALUES (:name, :key, :now) RETURNING id",
            name=name,
            key=key.id,
            now=now,
        )
        await _welcome(tx, created["id"], name, welcome, now)
        return Agent(id=created["id"], name=name, key_id=key.id)
    if row["key_id"] == key.id:
        return Agent(id=row["id"], name=name, key_id=key.id)
    if row["key_id"] is not None:
        old = _key(tx, await _one(tx, "SELECT * FROM keys WHERE id = :id", id=row["key_id"]))
        if old.machine == key.machine and not old.usable_at(now):
            await tx.run("UPDATE agents SET key_id = :key WHERE id = :id", key=key.id, id=row["id"])
            return Agent(id=row["id"], name=name, key_id=key.id)
    raise Forbidden(f"'{name}' is registered under another key; choose a different agent name", code="name_taken")


# -- posting ------------------------------------------------------------------------------------


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


def _sealed_upload(channel: Channel, upload: Upload) -> Upload:
    """A file for a sealed channel must be sealed (``parley.sealed``); it is kept under a neutral name and
    type, and never announced in the clear (its sharer announces it with a sealed message)."""
    if not channel.encrypted:
        return upload
    try:
        envelope.parse_file(upload.data)
    except envelope.MalformedEnvelope as exc:
        raise Unprocessable(
            f"'{channel.name}' is a sealed channel: it takes only sealed files ({exc})", code="sealed_channel"
        ) from exc
    if upload.announce:
        raise Unprocessable(
            "an announcement in a sealed channel would be plaintext: upload with announce=false and post a sealed"
            " message about the file",
            code="sealed_channel",
        )
    return dataclasses.replace(upload, filename="sealed.bin", content_type="application/octet-stream", announce=None)


async def upload_for(tx: Tx, caller: Caller, channel: str, upload: Upload) -> Upload:
    """The upload as it will be stored, checked (channel, access, sealing) before its bytes are written
    anywhere; ``insert_file`` checks again in the write that records it."""
    _, found = await _postable(tx, caller, channel)
    return _sealed_upload(found, upload) if found is not None else upload


async def file_digests(tx: Tx) -> list[str]:
    """The digests of every file's bytes."""
    return [row["sha256"] for row in await tx.all("SELECT DISTINCT sha256 FROM files")]


async def insert_file(tx: Tx, caller: Caller, channel: str, upload: Upload) -> StoredFile:
    """A file's record (its bytes are stored already, or in this transaction), and its announcement."""
    now = time.time()
    found = await _channel_for_post(tx, caller, channel, now)
    upload = _sealed_upload(found, upload)
    stored = StoredFile(
        id=secrets.token_urlsafe(12).replace("-", "_"),  # never starting with "-": a CLI would take it for an option
        channel=channel,
        filename=upload.filename,
        content_type=upload.content_type,
        size=len(upload.data),
        sha256=upload.sha256,
        uploader=caller.name,
        created_at=now,
    )
    if upload.announce is not None:
        text = upload.announce or rules.file_announcement(stored.filename, stored.size)
        posted = await _insert_message(tx, caller, found, Draft(text, metadata={"files": [stored.to_dict()]}), now)
        stored = dataclasses.replace(stored, message_id=posted.message.id)
    await tx.run(
        "INSERT INTO files (id, sha256, channel_id, uploader_id, filename, content_type, size, message_id, created_at)"
        " VALUES (:id, :sha256, :channel, :me, :filename, :content_type, :size, :message, :now)",
        id=stored.id,
        sha256=stored.sha256,
        channel=found.id,
        me=caller.agent_id,
        filename=stored.filename,
        content_type=stored.content_type,
        size=stored.size,
        message=stored.message_id,
        now=now,
    )
    return stored


async def file(tx: Tx, caller: Caller, file_id: str) -> StoredFile:
    """A file's record, if it was shared in a channel the caller may see."""
    row = await tx.one(
        "SELECT f.*, c.name AS channel, a.name AS uploader FROM files f JOIN channels c ON c.id = f.channel_id"
        " JOIN agents a ON a.id = f.uploader_id WHERE f.id = :id",
        id=file_id,
    )
    missing = NotFound(f"no file '{file_id}' that you can see", code="file_not_found")
    if row is None:
        raise missing
    try:
        await channel(tx, caller, row["channel"])
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


# -- turns and read marks -----------------------------------------------------------------------


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


# -- reading ------------------------------------------------------------------------------------


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
