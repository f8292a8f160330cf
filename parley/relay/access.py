"""Who may do what: keys and the names they act as, the channels a key reaches, who may claim a question."""

from __future__ import annotations

import hashlib
import secrets

from parley import rules
from parley.limits import NAME_RULE, is_valid_name
from parley.relay.errors import BadRequest, Conflict, Forbidden, Unauthorized, Unprocessable
from parley.relay.models import AgentRow, Caller, KeyRecord, iso

KEY_PREFIXES = {"machine": "pm_", "agent": "pa_"}


def new_key(kind: str) -> tuple[str, str, str]:
    """A fresh secret, its SHA-256 (all that is stored) and a short prefix to recognise it by."""
    secret = KEY_PREFIXES[kind] + secrets.token_urlsafe(32)
    return secret, hash_key(secret), secret[:10]


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_key_request(kind: str, machine: str | None, agent_name: str | None, channels: list[str] | None) -> None:
    if kind not in KEY_PREFIXES:
        raise Unprocessable("kind must be 'machine' or 'agent'", code="invalid_key_kind")
    name = machine if kind == "machine" else agent_name
    if name is None or not is_valid_name(name):
        field = "machine" if kind == "machine" else "name"
        raise Unprocessable(f"{field} must be {NAME_RULE}", code="invalid_name")
    for channel in channels or ():
        if not rules.is_channel_name(channel) or rules.channel_type(channel) == "dm":
            raise Unprocessable(
                f"channel '{channel}' is not a valid name: {NAME_RULE} (a private channel: 'owner~name')",
                code="invalid_name",
            )


def key_revoked() -> Unauthorized:
    return Unauthorized("this API key was revoked; ask the relay's operator for a new one", code="key_revoked")


def key_expired() -> Unauthorized:
    return Unauthorized("this API key has expired; ask the relay's operator for a new one", code="key_expired")


def acting_name(key: KeyRecord, agent_name: str | None, now: float) -> str:
    """The name a request with this key acts under, or the error that refuses it."""
    if key.revoked_at is not None:
        raise key_revoked()
    if not key.usable_at(now):
        raise key_expired()
    if key.kind == "agent":
        assert key.agent_name is not None
        if agent_name and agent_name != key.agent_name:
            raise Forbidden(
                f"this key belongs to '{key.agent_name}' and cannot act as '{agent_name}'", code="impersonation"
            )
        return key.agent_name
    if not agent_name:
        raise BadRequest(
            f"a machine key needs an agent name: the x-agent-name header, e.g. '{key.machine}-myproject'"
            " (parley's clients: --name or PARLEY_NAME)",
            code="agent_name_required",
        )
    if not is_valid_name(agent_name):
        raise BadRequest(f"invalid agent name '{agent_name}': use {NAME_RULE}", code="invalid_agent_name")
    project = agent_name.removeprefix(f"{key.machine}-")
    if project == agent_name:
        raise Forbidden(
            f"agents on machine key '{key.machine}' must be named '{key.machine}-<project>'", code="impersonation"
        )
    if not project or project.startswith("-"):
        raise BadRequest(
            f"'{agent_name}' has no project after '{key.machine}-'; name it e.g. '{key.machine}-myproject'",
            code="invalid_agent_name",
        )
    return agent_name


def caller(key: KeyRecord, agent: AgentRow | None, name: str) -> Caller:
    if agent is None:  # an agent key whose agent row is gone cannot happen; refuse anyway
        raise Unauthorized("this API key has no agent", code="invalid_key")
    if key.kind == "agent" and agent.key_id is not None:
        raise Forbidden(f"'{name}' is registered under a machine key", code="name_taken")
    scope = frozenset(key.channels) if key.channels is not None else None
    bucket = -key.id if key.kind == "machine" else agent.id
    return Caller(agent_id=agent.id, name=name, key_id=key.id, scope=scope, bucket=bucket, expires_at=key.expires_at)


def check_scope(caller: Caller, name: str) -> None:
    if not caller.may_use(name):
        allowed = ", ".join(sorted(caller.scope or ()))
        raise Forbidden(
            f"your key is limited to the channels {allowed}; '{name}' is not one of them", code="channel_not_allowed"
        )


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
