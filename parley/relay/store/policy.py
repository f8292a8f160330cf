"""The rules every store applies the same way, written once: who a key may act as, which channels a key
reaches, who may claim a question, which read marks a page sets, what a key request must hold."""

from __future__ import annotations

from typing import Any

from parley.limits import NAME_RULE, is_valid_name
from parley.relay import rules
from parley.relay.errors import BadRequest, Conflict, Forbidden, Unauthorized, Unprocessable
from parley.relay.models import Agent, Caller, KeyRecord, Message, Page, iso


def check_key_request(kind: str, machine: str | None, agent_name: str | None, channels: list[str] | None) -> None:
    if kind not in rules.KEY_PREFIXES:
        raise Unprocessable("kind must be 'machine' or 'agent'", code="invalid_key_kind")
    name = machine if kind == "machine" else agent_name
    if name is None or not is_valid_name(name):
        field = "machine" if kind == "machine" else "name"
        raise Unprocessable(f"{field} must be {NAME_RULE}", code="invalid_name")
    for channel in channels or ():
        if not is_valid_name(channel):
            raise Unprocessable(f"channel '{channel}' is not a valid name: {NAME_RULE}", code="invalid_name")


def acting_name(key: KeyRecord, agent_name: str | None, now: float) -> str:
    """The name a request with this key acts under, or the error that refuses it."""
    if key.revoked_at is not None:
        raise Unauthorized("this API key was revoked; ask the relay's operator for a new one", code="key_revoked")
    if not key.usable_at(now):
        raise Unauthorized("this API key has expired; ask the relay's operator for a new one", code="key_expired")
    if key.kind == "agent":
        assert key.agent_name is not None
        if agent_name and agent_name != key.agent_name:
            raise Forbidden(
                f"this key belongs to '{key.agent_name}' and cannot act as '{agent_name}'", code="impersonation"
            )
        return key.agent_name
    if not agent_name:
        raise BadRequest(
            f"a machine key needs an x-agent-name header, e.g. '{key.machine}-myproject'", code="agent_name_required"
        )
    if not is_valid_name(agent_name):
        raise BadRequest(f"invalid agent name '{agent_name}': use {NAME_RULE}", code="invalid_agent_name")
    if not agent_name.startswith(f"{key.machine}-"):
        raise Forbidden(
            f"agents on machine key '{key.machine}' must be named '{key.machine}-<project>'", code="impersonation"
        )
    return agent_name


def caller(key: KeyRecord, agent: Agent | None, name: str) -> Caller:
    if agent is None:  # an agent key whose agent row is gone cannot happen; refuse anyway
        raise Unauthorized("this API key has no agent", code="invalid_key")
    if key.kind == "agent" and agent.key_id is not None:
        raise Forbidden(f"'{name}' is registered under a machine key", code="name_taken")
    scope = frozenset(key.channels) if key.channels is not None else None
    return Caller(agent_id=agent.id, name=name, key_id=key.id, scope=scope)


def check_scope(caller: Caller, name: str) -> None:
    if not caller.may_use(name):
        allowed = ", ".join(sorted(caller.scope or ()))
        raise Forbidden(
            f"your key is limited to the channels {allowed}; '{name}' is not one of them", code="channel_not_allowed"
        )


def channel_public(row: Any) -> dict[str, Any]:
    """A channel row (either store's kind) as the API shows it."""
    return {
        "name": row["name"],
        "type": row["type"],
        "description": row["description"],
        "private": bool(row["private"]),
        "archived": bool(row["archived"]),
        "created_at": iso(row["created_at"]),
    }


def check_claim(caller: Caller, message_id: int, author_id: int, expects_reply: str) -> None:
    if author_id == caller.agent_id:
        raise Forbidden("you cannot claim your own question", code="own_message")
    if expects_reply == "none":
        raise Conflict(
            f"message {message_id} does not expect a reply; only questions with expects_reply 'anyone'"
            " or your name can be claimed",
            code="not_a_question",
        )
    if expects_reply not in ("anyone", caller.name):
        raise Forbidden(
            f"message {message_id} expects a reply from '{expects_reply}', not from you", code="not_addressed_to_you"
        )


def already_answered(message_id: int, holder: str) -> Conflict:
    return Conflict(f"message {message_id} was already answered by '{holder}'", code="already_answered", holder=holder)


def already_claimed(message_id: int, holder: str, expires_at: float) -> Conflict:
    return Conflict(
        f"message {message_id} is claimed by '{holder}' until {iso(expires_at)};"
        " leave it to them, or try again after that if they have not replied",
        code="already_claimed",
        holder=holder,
        expires_at=iso(expires_at),
    )


def read_marks(page: Page) -> tuple[dict[int, int], bool]:
    """Per channel, the newest id the page returned; a channel read also joins its channel (events do not)."""
    upto: dict[int, int] = {}
    for message in page.messages:
        upto[message.channel_id] = max(upto.get(message.channel_id, 0), message.id)
    joining = page.agent_id is None
    if joining:
        for channel_id in page.channels:
            upto.setdefault(channel_id, 0)
    return upto, joining


def mention(mention_id: int, message: Message, read: bool) -> dict[str, Any]:
    """A mention as the API shows it (the AgentChat field names)."""
    return {
        "mention_id": mention_id,
        "message_id": message.id,
        "channel": message.channel,
        "from": message.author,
        "content": message.content,
        "parent_message_id": message.parent_id,
        "expects_reply": message.expects_reply,
        "timestamp": iso(message.created_at),
        "read": read,
    }


def message_from_row(row: Any, metadata: dict[str, Any] | None) -> Message:
    """A message row (either store's kind, metadata already decoded) as a Message."""
    return Message(
        id=row["id"],
        channel_id=row["channel_id"],
        channel=row["channel"],
        author=row["author"],
        content=row["content"],
        metadata=metadata,
        parent_id=row["parent_id"],
        expects_reply=row["expects_reply"],
        created_at=row["created_at"],
        mentions=tuple(row["mentions"].split(",")) if row["mentions"] else (),
    )


def key_from_row(row: Any, channels: tuple[str, ...] | None) -> KeyRecord:
    return KeyRecord(
        id=row["id"],
        kind=row["kind"],
        prefix=row["prefix"],
        machine=row["machine"],
        agent_name=row["agent_name"],
        channels=channels,
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )
