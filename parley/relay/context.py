"""The relay's running parts, and the per-request dependencies that authenticate and meter agents."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
from typing import Annotated, Literal

from fastapi import Depends, Header, Request

from parley.relay import sessions
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
class Agent:
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


def credentials(request: Request) -> tuple[str, str | None]:
    """The key and agent name a request carries: in its headers, or a signed-in page's cookie (whose writes
    must carry the CSRF token)."""
    headers = request.headers
    if not (headers.get("authorization") or headers.get("x-agent-api-key")):
        signed_in = sessions.cookie_credentials(request)
        if signed_in is not None:
            return signed_in
    return secret(headers.get("authorization"), headers.get("x-agent-api-key")), headers.get("x-agent-name")


async def authenticate(request: Request) -> tuple[Relay, Caller]:
    """The caller, for a request that spends no token."""
    relay = relay_of(request)
    caller = await relay.store.authenticate(*credentials(request))
    relay.presence.touch(caller.agent_id)
    return relay, caller


async def _admit(request: Request, kind: Literal["read", "write"]) -> Agent:
    relay = relay_of(request)
    caller, budget = await relay.store.admit(*credentials(request), kind)
    relay.presence.touch(caller.agent_id)
    return Agent(caller, budget, relay)


async def reader(request: Request) -> Agent:
    """An agent making a read: its read bucket pays, and it sees its own earlier read marks."""
    agent = await _admit(request, "read")
    pending = agent.relay.pending_marks.get(agent.caller.agent_id)
    if pending is not None:
        await asyncio.wait([pending])
    return agent


async def writer(request: Request) -> Agent:
    """An agent making a write: its write bucket pays."""
    return await _admit(request, "write")


async def admin(request: Request, x_admin_token: Annotated[str | None, Header()] = None) -> Relay:
    """The operator: the admin token as X-Admin-Token, or as a bearer token (what Prometheus sends)."""
    relay = relay_of(request)
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    sent = x_admin_token or (bearer.strip() if scheme.lower() == "bearer" else "") or sessions.admin_cookie(request)
    if not sent or not hmac.compare_digest(sent.encode(), relay.admin_token.encode()):
        raise Unauthorized(
            "send the relay's admin token as X-Admin-Token (see 'parley token')", code="invalid_admin_token"
        )
    return relay


Reader = Annotated[Agent, Depends(reader)]
Writer = Annotated[Agent, Depends(writer)]
Admin = Annotated[Relay, Depends(admin)]
