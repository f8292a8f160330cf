"""The relay's running parts, and the per-request dependencies that authenticate and meter agents."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
from typing import Annotated, Literal

from fastapi import Depends, Header, Request

from parley.relay import access, sessions
from parley.relay.downloads import Downloads
from parley.relay.errors import BadRequest, Unauthorized
from parley.relay.hub import Hub
from parley.relay.models import Caller
from parley.relay.presence import Presence
from parley.relay.ratelimit import Budget
from parley.relay.settings import Settings
from parley.relay.store.base import Store


@dataclasses.dataclass
class Relay:
    settings: Settings
    store: Store
    hub: Hub
    presence: Presence
    admin_token: str
    #: Read marks still being written, per agent: that agent's next read waits for them.
    pending_marks: dict[int, asyncio.Future[None]] = dataclasses.field(default_factory=dict)
    downloads: Downloads = dataclasses.field(default_factory=Downloads)


@dataclasses.dataclass(frozen=True)
class AuthedRequest:
    """An authenticated request: who is calling, and what is left of its budget."""

    caller: Caller
    budget: Budget
    relay: Relay


def relay_of(request: Request) -> Relay:
    relay: Relay = request.app.state.relay
    return relay


def secret(authorization: str | None, api_key: str | None) -> str:
    """The key a request carries: ``Authorization: Bearer`` or ``x-agent-api-key`` (refused if they differ)."""
    bearer = None
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <key>'", code="invalid_authorization")
        bearer = token.strip()
    if bearer and api_key and bearer != api_key:
        raise BadRequest("Authorization and x-agent-api-key carry different keys; send one", code="conflicting_keys")
    secret = bearer or api_key
    if not secret:
        raise Unauthorized(
            "send your key as 'Authorization: Bearer <key>' (or x-agent-api-key with x-agent-name); GET / explains how",
            code="missing_key",
        )
    return secret


async def credentials(request: Request) -> tuple[str, str | None]:
    """The hash of the key a request carries, and the agent name it acts as: from its headers, or from the
    dashboard session it carries instead (``sessions``)."""
    headers = request.headers
    sent = secret(headers.get("authorization"), headers.get("x-agent-api-key"))
    if not sessions.is_session(sent):
        return access.hash_key(sent), headers.get("x-agent-name")
    found = await relay_of(request).store.read(sessions.find, access.hash_key(sent), "person")
    if found is None:
        raise Unauthorized("this page's session has ended (signed out or expired); sign in again", code="session_ended")
    return found.key_hash, found.agent_name


async def authenticate(request: Request) -> tuple[Relay, Caller]:
    """The caller, for a request that spends no token."""
    relay = relay_of(request)
    caller = await relay.store.authenticate(*await credentials(request))
    relay.presence.touch(caller.agent_id)
    return relay, caller


async def _admit(request: Request, kind: Literal["read", "write"]) -> AuthedRequest:
    relay = relay_of(request)
    caller, budget = await relay.store.admit(*await credentials(request), kind)
    relay.presence.touch(caller.agent_id)
    return AuthedRequest(caller, budget, relay)


async def reader(request: Request) -> AuthedRequest:
    """An agent making a read: its read bucket pays, and it sees its own earlier read marks."""
    agent = await _admit(request, "read")
    pending = agent.relay.pending_marks.get(agent.caller.agent_id)
    if pending is not None:
        await asyncio.wait([pending])
    return agent


async def writer(request: Request) -> AuthedRequest:
    """An agent making a write: its write bucket pays."""
    return await _admit(request, "write")


async def admin(request: Request, x_admin_token: Annotated[str | None, Header()] = None) -> Relay:
    """The operator: the admin token as X-Admin-Token, or as a bearer token (what Prometheus sends), or an
    operator view's session (made from the admin token, ended when it changes)."""
    relay = relay_of(request)
    operator = request.headers.get(sessions.OPERATOR_HEADER)
    if operator:
        found = await relay.store.read(sessions.find, access.hash_key(operator), "operator")
        if found is None or not hmac.compare_digest(found.key_hash, access.hash_key(relay.admin_token)):
            raise Unauthorized(
                "this operator view's session has ended; enter the admin token again", code="session_ended"
            )
        return relay
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    sent = x_admin_token or (bearer.strip() if scheme.lower() == "bearer" else "")
    if not sent or not hmac.compare_digest(sent.encode(), relay.admin_token.encode()):
        raise Unauthorized(
            "send the relay's admin token as X-Admin-Token (see 'parley token')", code="invalid_admin_token"
        )
    return relay


Reader = Annotated[AuthedRequest, Depends(reader)]
Writer = Annotated[AuthedRequest, Depends(writer)]
Admin = Annotated[Relay, Depends(admin)]
