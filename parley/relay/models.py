"""Plain records that pass between the stores, the hub and the HTTP layer."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
from typing import Any

from parley.limits import DM_PREFIX


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    moment = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclasses.dataclass(frozen=True)
class KeyRecord:
    """A machine key or an agent key; only its SHA-256 is stored."""

    id: int
    kind: str  # "machine" | "agent"
    prefix: str
    machine: str | None
    agent_name: str | None
    channels: tuple[str, ...] | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    def usable_at(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "prefix": self.prefix,
            "machine": self.machine,
            "name": self.agent_name,
            "channels": list(self.channels) if self.channels is not None else None,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
        }


@dataclasses.dataclass(frozen=True)
class AgentRow:
    id: int
    name: str
    key_id: int | None  # the machine key a machine-registered name is bound to


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who is making a request: an agent, and the channels its key limits it to (None: no limit)."""

    agent_id: int
    name: str
    key_id: int
    scope: frozenset[str] | None = None
    #: The rate buckets this request pays from: the agent's own, or (negative) its machine key's, which
    #: every name on that machine shares.
    bucket: int = 0
    #: When the key stops working (None: never): a parked wait ends then.
    expires_at: float | None = None

    def may_use(self, channel: str) -> bool:
        """DMs are the agent's own; a channel-limited key reaches only its channels."""
        return self.scope is None or channel in self.scope or channel.startswith(DM_PREFIX)


@dataclasses.dataclass(frozen=True)
class Message:
    id: int
    channel_id: int
    channel: str
    author: str
    content: str
    metadata: dict[str, Any] | None
    parent_id: int | None
    expects_reply: str
    created_at: float
    mentions: tuple[str, ...] = ()
    #: A sealed message's envelope (its ``content`` is empty), and the client_msg_id its seal binds.
    sealed: dict[str, Any] | None = None
    client_msg_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        stamp = iso(self.created_at)
        shown = {
            "id": self.id,
            "channel": self.channel,
            "author": self.author,
            "content": self.content,
            "metadata": self.metadata or {},
            "parent_message_id": self.parent_id,
            "expects_reply": self.expects_reply,
            "mentions": list(self.mentions),
            "created_at": stamp,
            "timestamp": stamp,  # the AgentChat field name, kept for its clients
        }
        if self.sealed is not None:
            shown |= {"sealed": self.sealed, "client_msg_id": self.client_msg_id}
        return shown


@dataclasses.dataclass(frozen=True)
class Draft:
    """A message as its author sends it."""

    content: str
    parent_id: int | None = None
    metadata: dict[str, Any] | None = None
    expects_reply: str | None = None
    client_msg_id: str | None = None
    #: A reply answers the open question it replies to, unless it hands the question back (release_claim).
    answers: bool = True
    #: In a sealed channel: the envelope (``content`` is then empty) and the names it @mentions.
    sealed: dict[str, Any] | None = None
    mentions: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Posted:
    """A stored message, whether this request stored it, and who must be woken beyond its channel."""

    message: Message
    replayed: bool
    notify_agents: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Page:
    """A chronological slice and the cursor to pass back as ``since``.

    ``channels`` and ``agent_id`` say what a parked wait must subscribe to so that it wakes
    for exactly what this read could have returned.
    """

    messages: list[Message]
    cursor: int
    channels: frozenset[int] = frozenset()
    agent_id: int | None = None
    has_more: bool = False


@dataclasses.dataclass(frozen=True)
class Channel:
    """A channel as the store holds it; ``member`` and ``members`` as seen by the caller that asked."""

    id: int
    name: str
    type: str
    description: str
    private: bool
    archived: bool
    created_at: float
    member: bool = False
    members: int = 0
    encrypted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "private": self.private,
            "encrypted": self.encrypted,
            "archived": self.archived,
            "created_at": iso(self.created_at),
        }


@dataclasses.dataclass(frozen=True)
class Unread:
    """One of the caller's channels on its board."""

    channel: Channel
    unread: int
    last_read_id: int
    latest: Message | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel.name,
            "type": self.channel.type,
            "private": self.channel.private,
            "encrypted": self.channel.encrypted,
            "unread": self.unread,
            "last_read_id": self.last_read_id,
            "latest": self.latest.to_dict() if self.latest else None,
        }


@dataclasses.dataclass(frozen=True)
class Question:
    """An open question for the caller, and who holds a live claim on it."""

    message: Message
    claimed_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.message.to_dict(), "claimed_by": self.claimed_by}


@dataclasses.dataclass(frozen=True)
class Mention:
    id: int
    message: Message
    read: bool

    def to_dict(self) -> dict[str, Any]:
        """The AgentChat field names."""
        return {
            "mention_id": self.id,
            "message_id": self.message.id,
            "channel": self.message.channel,
            "from": self.message.author,
            "content": self.message.content,
            "parent_message_id": self.message.parent_id,
            "expects_reply": self.message.expects_reply,
            "timestamp": iso(self.message.created_at),
            "read": self.read,
            **(
                {"sealed": self.message.sealed, "client_msg_id": self.message.client_msg_id}
                if self.message.sealed
                else {}
            ),
        }


@dataclasses.dataclass(frozen=True)
class Board:
    agent: str
    channels: list[Unread]
    open_questions: list[Question]
    unread_mentions: int
    mentions: list[Mention]
    cursor: int
    #: More channels follow: pass this as ``after`` for the next page (None: this was the last).
    next_after: str | None = None
    invitations: list[Invitation] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "channels": [channel.to_dict() for channel in self.channels],
            "next_after": self.next_after,
            "open_questions": [question.to_dict() for question in self.open_questions],
            "unread_mentions": self.unread_mentions,
            "mentions": [mention.to_dict() for mention in self.mentions],
            "invitations": [invitation.to_dict() for invitation in self.invitations],
            "cursor": self.cursor,
        }


@dataclasses.dataclass(frozen=True)
class Invitation:
    """An invitation to a channel, waiting for its agent to join (accept) or leave (decline) it."""

    channel: str
    inviter: str
    created_at: float
    encrypted: bool

    def to_dict(self) -> dict[str, Any]:
        when = iso(self.created_at)
        return {"channel": self.channel, "from": self.inviter, "created_at": when, "encrypted": self.encrypted}


@dataclasses.dataclass(frozen=True)
class SearchHit:
    message: Message
    snippet: str
    rank: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.message.to_dict(), "snippet": self.snippet, "rank": self.rank}


@dataclasses.dataclass(frozen=True)
class Seen:
    """An agent and when the database last saw it (presence in memory may know better)."""

    id: int
    name: str
    last_seen: float | None
    human: bool = False


@dataclasses.dataclass(frozen=True)
class Claim:
    message_id: int
    holder: str
    expires_at: float


@dataclasses.dataclass(frozen=True)
class Upload:
    """A file as its uploader sends it; ``announce`` (not None) also posts a message about it."""

    filename: str
    content_type: str
    data: bytes
    announce: str | None = None

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclasses.dataclass(frozen=True)
class StoredFile:
    id: str
    channel: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploader: str
    created_at: float
    message_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "name": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "uploader": self.uploader,
            "created_at": iso(self.created_at),
            "message_id": self.message_id,
            "url": f"/api/v1/files/{self.id}",
        }
