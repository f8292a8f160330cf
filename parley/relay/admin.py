"""``/admin``: the operator's routes, behind the admin token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from starlette.responses import JSONResponse

from parley import limits, rules
from parley.relay import openapi as doc
from parley.relay.context import Admin
from parley.relay.errors import Unprocessable
from parley.relay.openapi import answers
from parley.relay.responses import ok
from parley.relay.schemas import ChannelName, CreateKey, Revoke
from parley.relay.store import sql

router = APIRouter(prefix="/admin")


@router.post("/keys", **answers(doc.KeyCreated, operation_id="create_key", status=201))
async def create_key(relay: Admin, body: CreateKey) -> JSONResponse:
    """Mint a machine key (``machine``) or an agent key (``name``, optional ``channels``); shown once."""
    if (body.kind == "machine") != (body.machine is not None) or (body.kind == "agent") != (body.name is not None):
        raise Unprocessable(
            "a machine key needs 'machine' (and no 'name'); an agent key needs 'name'", code="invalid_key_request"
        )
    if body.kind == "machine" and (body.channels is not None or body.human):
        raise Unprocessable("channel limits and human apply to agent keys only", code="invalid_key_request")
    try:
        expires_in = rules.parse_duration(body.expires) if body.expires else None
    except ValueError as exc:
        raise Unprocessable(str(exc), code="invalid_expires") from exc
    if expires_in is not None and expires_in > limits.MAX_KEY_LIFETIME_SECONDS:
        raise Unprocessable(
            f"expires is {body.expires}: at most {limits.MAX_KEY_LIFETIME_SECONDS // 86_400} days (e.g. 3650d),"
            " or 'never'",
            code="invalid_expires",
        )
    record, secret = await relay.store.write(
        sql.create_key,
        body.kind,
        machine=body.machine,
        agent_name=body.name,
        channels=body.channels,
        expires_in=expires_in,
        welcome=relay.settings.welcome_channels,
        human=body.human,
    )
    return ok({"key": secret, **record.public()}, status=201)


@router.get("/keys", **answers(doc.Keys, operation_id="list_keys"))
async def list_keys(relay: Admin) -> JSONResponse:
    return ok({"keys": [record.public() for record in await relay.store.read(sql.list_keys)]})


@router.post("/keys/revoke", **answers(doc.Revoked, operation_id="revoke_key"))
async def revoke(relay: Admin, body: Revoke) -> JSONResponse:
    """Revoke by key, key prefix, key id, agent name or machine name; effective on the next request."""
    return ok({"revoked": await relay.store.revoke(body.target)})


@router.post("/channels/{channel}/archive", **answers(doc.Archived, operation_id="archive_channel"))
async def archive(relay: Admin, channel: Annotated[ChannelName, PathParam()]) -> JSONResponse:
    archived = await relay.store.write(sql.archive_channel, channel)
    return ok({"channel": archived.to_dict()})


@router.get("/stats", **answers(doc.Stats, operation_id="relay_stats"))
async def stats(relay: Admin) -> JSONResponse:
    data = await relay.store.stats()
    data.update(
        parked_waits=relay.hub.parked, wakeups=relay.hub.wakeups, downloads=sum(relay.downloads.running.values())
    )
    return ok(data)
