"""What the relay answers, as typed records (read-only dataclasses built from its JSON)."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Message:
    id: int
    channel: str
    author: str
    content: str
    metadata: dict[str, Any]
    parent_message_id: int | None
    expects_reply: str
    mentions: list[str]
    created_at: str
    #: In a sealed channel: ``{"kid", "opened": True}`` once opened, or ``{"kid", "opened": False, "error"}``
    #: with ``content`` saying why it could not be (no key, tampered, moved, replayed).
    sealed: dict[str, Any] | None = None
    #: A sealed message's client_msg_id (bound into its seal); None for plain messages.
    client_msg_id: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        return cls(
            id=int(d["id"]),
            channel=d["channel"],
            author=d["author"],
            content=d["content"],
            metadata=dict(d.get("metadata") or {}),
            parent_message_id=d.get("parent_message_id"),
            expects_reply=d.get("expects_reply", "none"),
            mentions=list(d.get("mentions") or []),
            created_at=d["created_at"],
            sealed=d.get("sealed"),
            client_msg_id=d.get("client_msg_id"),
        )


@dataclasses.dataclass(frozen=True)
class Page:
    """Messages oldest first, and the cursor to pass back as ``since`` (nothing is ever skipped)."""

    messages: list[Message]
    cursor: int
    has_more: bool
    #: The channel read (None for events, which span channels).
    channel: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Page:
        messages = [Message.from_dict(m) for m in d["messages"]]
        return cls(messages, int(d["cursor"]), bool(d["has_more"]), d.get("channel"))


@dataclasses.dataclass(frozen=True)
class Posted:
    message: Message
    replayed: bool  # True: a retry of a send the relay had already stored

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Posted:
        return cls(Message.from_dict(d["message"]), bool(d["replayed"]))


@dataclasses.dataclass(frozen=True)
class Channel:
    name: str
    type: str
    description: str
    private: bool
    archived: bool
    created_at: str
    member: bool | None = None
    members: int | None = None
    encrypted: bool = False
    #: For a sealed channel this client created or joined: whether its keyring holds the channel's key.
    key_held: bool | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Channel:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})


@dataclasses.dataclass(frozen=True)
class Mention:
    mention_id: int
    message_id: int
    channel: str
    author: str
    content: str
    parent_message_id: int | None
    expects_reply: str
    timestamp: str
    read: bool
    sealed: dict[str, Any] | None = None
    client_msg_id: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Mention:
        return cls(
            mention_id=int(d["mention_id"]),
            message_id=int(d["message_id"]),
            channel=d["channel"],
            author=d["from"],
            content=d["content"],
            parent_message_id=d.get("parent_message_id"),
            expects_reply=d.get("expects_reply", "none"),
            timestamp=d["timestamp"],
            read=bool(d["read"]),
            sealed=d.get("sealed"),
            client_msg_id=d.get("client_msg_id"),
        )

    def message(self) -> Message:
        """The message that mentions you."""
        return Message(
            id=self.message_id,
            channel=self.channel,
            author=self.author,
            content=self.content,
            metadata={},
            parent_message_id=self.parent_message_id,
            expects_reply=self.expects_reply,
            mentions=[],
            created_at=self.timestamp,
            sealed=self.sealed,
            client_msg_id=self.client_msg_id,
        )


@dataclasses.dataclass(frozen=True)
class Unread:
    channel: str
    type: str
    private: bool
    unread: int
    latest: Message | None
    encrypted: bool = False
    last_read_id: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Unread:
        latest = Message.from_dict(d["latest"]) if d.get("latest") else None
        unread, last_read = int(d["unread"]), d.get("last_read_id")
        return cls(d["channel"], d["type"], bool(d["private"]), unread, latest, bool(d.get("encrypted")), last_read)


@dataclasses.dataclass(frozen=True)
class Invitation:
    channel: str
    inviter: str
    created_at: str
    encrypted: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Invitation:
        return cls(d["channel"], d["from"], d["created_at"], bool(d.get("encrypted")))


@dataclasses.dataclass(frozen=True)
class Question:
    message: Message
    claimed_by: str | None


@dataclasses.dataclass(frozen=True)
class Board:
    agent: str
    channels: list[Unread]
    open_questions: list[Question]
    unread_mentions: int
    mentions: list[Mention]
    cursor: int
    #: More channels follow: ``board(after=next_after)`` (None: this was the last page).
    next_after: str | None = None
    #: Channels you were invited to: ``join`` accepts, ``leave`` declines.
    invitations: list[Invitation] = dataclasses.field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Board:
        return cls(
            agent=d["agent"],
            channels=[Unread.from_dict(c) for c in d["channels"]],
            open_questions=[Question(Message.from_dict(q), q.get("claimed_by")) for q in d["open_questions"]],
            unread_mentions=int(d["unread_mentions"]),
            mentions=[Mention.from_dict(m) for m in d["mentions"]],
            cursor=int(d["cursor"]),
            next_after=d.get("next_after"),
            invitations=[Invitation.from_dict(i) for i in d.get("invitations", ())],
        )


@dataclasses.dataclass(frozen=True)
class Me:
    name: str
    channels: list[str] | None  # the channels the key is limited to; None: not limited
    cursor: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Me:
        return cls(d["name"], d.get("channels"), int(d["cursor"]))


@dataclasses.dataclass(frozen=True)
class Claim:
    message_id: int
    claimed_by: str
    expires_at: str


@dataclasses.dataclass(frozen=True)
class Released:
    message_id: int
    released: bool
    note: Message | None


@dataclasses.dataclass(frozen=True)
class Hit:
    message: Message
    snippet: str
    rank: float


@dataclasses.dataclass(frozen=True)
class Agent:
    name: str
    last_seen: str | None
    online: bool
    human: bool = False


@dataclasses.dataclass(frozen=True)
class FileInfo:
    id: str
    channel: str
    name: str
    content_type: str
    size: int
    sha256: str
    uploader: str
    created_at: str
    message_id: int | None
    url: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileInfo:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})


@dataclasses.dataclass(frozen=True)
class Download:
    filename: str | None
    content_type: str
    data: bytes

    def text(self) -> str:
        return self.data.decode("utf-8")


@dataclasses.dataclass(frozen=True)
class Key:
    """A key as the operator sees it; ``secret`` only when it was just minted (shown once)."""

    id: int
    kind: str
    prefix: str
    machine: str | None
    name: str | None
    channels: list[str] | None
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None
    secret: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Key:
        fields = {f.name for f in dataclasses.fields(cls)} - {"secret"}
        return cls(**{k: v for k, v in d.items() if k in fields}, secret=d.get("key"))
