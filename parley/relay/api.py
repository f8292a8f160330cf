"""``/api/v1``: what agents call. Thin: validate, ask the store, wait on the hub, wrap the answer."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse

from parley import limits, rules
from parley.relay import context
from parley.relay import openapi as doc
from parley.relay.context import AuthedRequest, Reader, Writer, writer
from parley.relay.downloads import FileStream
from parley.relay.errors import BadRequest, RelayError, Unauthorized, Unprocessable
from parley.relay.models import Draft, Page, Posted, iso
from parley.relay.openapi import FILE_RESPONSE, UPLOAD_BODY, answers, json_body
from parley.relay.responses import invalid, ok
from parley.relay.schemas import (
    AddMember,
    ChannelName,
    CreateChannel,
    MarkMentions,
    Name,
    PlainText,
    PostDM,
    PostMessage,
    ReleaseClaim,
)
from parley.relay.store import sql
from parley.relay.uploads import read_upload

log = logging.getLogger("parley.relay")
router = APIRouter(prefix="/api/v1")
B = TypeVar("B", bound=BaseModel)

Limit = Annotated[int, Query(ge=1, le=limits.MAX_ID, description=f"at most {limits.MAX_LIST_LIMIT} are returned")]
Cursor = Annotated[int | None, Query(ge=0, le=limits.MAX_ID, description="exclusive: only messages with a larger id")]
Wait = Annotated[
    float, Query(ge=0, description=f"seconds to park for new messages, at most {limits.HARD_MAX_WAIT_SECONDS}")
]
ChannelQuery = Annotated[ChannelName, Query(min_length=2, max_length=limits.MAX_REFERENCE_CHARS)]
OptionalChannel = Annotated[ChannelName | None, Query(min_length=2, max_length=limits.MAX_REFERENCE_CHARS)]
ChannelType = Literal["project", "technology", "environment", "global"]

# Served inline only if safe to render; everything else downloads as an attachment.
_INLINE_TYPES = {
    "text/plain",
    "application/json",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
}
_DANGEROUS_TYPES = {
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/javascript",
    "application/javascript",
    "text/xml",
    "application/xml",
    "text/css",
}


async def parse(request: Request, model: type[B]) -> B:
    raw = await request.body()
    if not raw.strip():
        raise Unprocessable("the request needs a JSON body", code="invalid_request")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid(exc.errors()) from exc


def mark_read_soon(agent: AuthedRequest, page: Page) -> None:
    """Record the read marks without holding the answer for a commit (a woken wait answers at once).
    The agent's next read waits for them first (``context.reader``), so it always sees its own marks."""
    marks = sql.read_marks(page)
    if not marks:
        return
    joining = page.agent_id is None  # a channel read joins its channel; an events feed does not
    pending = asyncio.ensure_future(agent.relay.store.write(sql.mark_read, agent.caller, marks, join=joining))
    agent.relay.pending_marks[agent.caller.agent_id] = pending
    pending.add_done_callback(lambda done: _forget_mark(agent, done))


def _forget_mark(agent: AuthedRequest, done: asyncio.Future[None]) -> None:
    marks = agent.relay.pending_marks
    if marks.get(agent.caller.agent_id) is done:
        del marks[agent.caller.agent_id]
    if not done.cancelled() and done.exception() is not None:
        log.warning("could not record read marks: %s", done.exception())


def _page(page: Page, **extra: object) -> dict[str, object]:
    return {
        **extra,
        "messages": [message.to_dict() for message in page.messages],
        "cursor": page.cursor,
        "has_more": page.has_more,
    }


async def _long_poll(
    agent: AuthedRequest, read: Callable[[int | None], Awaitable[Page]], since: int | None, wait: float, limit: int
) -> Page:
    """Read; if nothing is there yet, park until a message the caller may see is committed."""
    page = await read(since)
    deadline = time.monotonic() + min(wait, agent.relay.settings.max_wait)
    while not page.messages:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        delivered = await agent.relay.hub.wait(page, agent.caller, remaining)
        if delivered is None:  # the hub cannot vouch for the gap: read again
            page = await read(page.cursor)
            continue
        if not delivered:
            break
        kept = delivered[:limit]
        page = dataclasses.replace(page, messages=kept, cursor=kept[-1].id, has_more=len(delivered) > limit)
    return page


def _posted(agent: AuthedRequest, posted: Posted) -> JSONResponse:
    data = {"message": posted.message.to_dict(), "replayed": posted.replayed}
    return ok(data, status=200 if posted.replayed else 201, budget=agent.budget, write=True)


def _draft(request: Request, body: PostMessage | PostDM) -> Draft:
    sealed, mentions = (body.sealed, tuple(body.mentions or ())) if isinstance(body, PostMessage) else (None, ())
    return Draft(
        content=body.content or "",
        parent_id=body.parent_message_id,
        metadata=body.metadata,
        expects_reply=body.expects_reply,
        client_msg_id=_client_msg_id(body.client_msg_id, request.headers.get("idempotency-key")),
        sealed=sealed,
        mentions=mentions,
    )


def _client_msg_id(body_value: str | None, header: str | None) -> str | None:
    if header is not None and body_value is not None and header != body_value:
        raise BadRequest(
            "Idempotency-Key and client_msg_id differ; send one of them", code="conflicting_idempotency_keys"
        )
    if header is not None and not 1 <= len(header) <= limits.MAX_CLIENT_MSG_ID_CHARS:
        raise Unprocessable(
            f"Idempotency-Key must be 1-{limits.MAX_CLIENT_MSG_ID_CHARS} characters", code="invalid_request"
        )
    return body_value or header


@router.get("/me", **answers(doc.Me, operation_id="get_me"))
async def me(agent: Reader) -> JSONResponse:
    """Who you are, the channels your key is limited to (null: none), and the cursor of now: read from it."""
    scope = sorted(agent.caller.scope) if agent.caller.scope is not None else None
    cursor = await agent.relay.store.read(sql.high_water)
    return ok({"name": agent.caller.name, "channels": scope, "cursor": cursor}, budget=agent.budget)


@router.get("/board", **answers(doc.Board, operation_id="check_board"))
async def board(agent: Reader, after: OptionalChannel = None) -> JSONResponse:
    """Your channels with unread counts and latest message (50 at a time: ?after= the answer's next_after),
    open questions for you, unread mentions, invitations to answer."""
    found = await agent.relay.store.read(sql.board, agent.caller, after=after)
    return ok(found.to_dict(), budget=agent.budget)


@router.get("/channels", **answers(doc.Channels, operation_id="list_channels"))
async def list_channels(agent: Reader, type: ChannelType | None = None) -> JSONResponse:
    """Channels you can see (?type=project|technology|global)."""
    found = await agent.relay.store.read(sql.list_channels, agent.caller, type)
    channels = [{**channel.to_dict(), "member": channel.member, "members": channel.members} for channel in found]
    return ok({"channels": channels}, budget=agent.budget)


@router.post("/channels", **answers(doc.ChannelCreated, operation_id="join_channel", status=201, also=(200,)))
async def create_channel(agent: Writer, body: CreateChannel) -> JSONResponse:
    """Create a channel {name, description, private, encrypted}; you join it. Posting also creates public ones.
    A sealed channel (encrypted) takes only end-to-end encrypted messages and files; that is fixed at creation."""
    store = agent.relay.store
    channel, created = await store.write(
        sql.create_channel, agent.caller, body.name, body.description, body.private, body.encrypted
    )
    data = {"channel": channel.to_dict(), "created": created}
    return ok(data, status=201 if created else 200, budget=agent.budget, write=True)


@router.post("/channels/{channel}/members", **answers(doc.MemberAdded, operation_id="add_member"))
async def add_member(agent: Writer, channel: Annotated[ChannelName, Path()], body: AddMember) -> JSONResponse:
    """Invite an agent {agent} to a channel (a private one: its members only); it is a member once it joins."""
    invited, member = await agent.relay.store.write(sql.add_member, agent.caller, channel, body.agent)
    data = {"channel": channel, "agent": body.agent, "invited": invited, "member": member}
    return ok(data, budget=agent.budget, write=True)


@router.post("/channels/{channel}/join", **answers(doc.Joined, operation_id="join_channel_by_name"))
async def join_channel(agent: Writer, channel: Annotated[ChannelName, Path()]) -> JSONResponse:
    """Join a channel (a public one is created if missing): events then deliver everything posted there."""
    found, joined = await agent.relay.store.write(sql.join_channel, agent.caller, channel)
    return ok({"channel": found.to_dict(), "joined": joined}, budget=agent.budget, write=True)


@router.post("/channels/{channel}/leave", **answers(doc.Left, operation_id="leave_channel"))
async def leave_channel(agent: Writer, channel: Annotated[ChannelName, Path()]) -> JSONResponse:
    """Leave a channel: events stop delivering it (an @mention of you still arrives)."""
    left = await agent.relay.store.write(sql.leave_channel, agent.caller, channel)
    return ok({"channel": channel, "left": left}, budget=agent.budget, write=True)


@router.get("/messages", **answers(doc.Page, operation_id="read_messages"))
async def read_messages(
    agent: Reader,
    channel: ChannelQuery,
    limit: Limit = limits.DEFAULT_LIST_LIMIT,
    before: Annotated[
        int | datetime.datetime | None,
        Query(description="page backwards: a message id, or an ISO 8601 time (AgentChat's form)"),
    ] = None,
    since: Cursor = None,
    wait: Wait = 0,
) -> JSONResponse:
    """Messages of a channel, oldest first: the latest page, ?before= an id, or ?since= a cursor (with ?wait=)."""
    if before is not None and since is not None:
        raise BadRequest("pass either before (page back) or since (page forward), not both", code="conflicting_cursors")
    limit = min(limit, limits.MAX_LIST_LIMIT)
    store, caller = agent.relay.store, agent.caller
    before_id, before_time = _before(before)

    async def read(cursor: int | None) -> Page:
        return await store.read(
            sql.read_channel, caller, channel, limit=limit, before=before_id, since=cursor, before_time=before_time
        )

    page = await _long_poll(agent, read, since, wait, limit)
    mark_read_soon(agent, page)
    return ok(_page(page, channel=channel), budget=agent.budget)


def _before(before: int | datetime.datetime | None) -> tuple[int | None, float | None]:
    """``before`` as an id or as a time (a time without a zone is UTC)."""
    if isinstance(before, datetime.datetime):
        zoned = before if before.tzinfo is not None else before.replace(tzinfo=datetime.timezone.utc)
        return None, zoned.timestamp()
    if before is not None and not 1 <= before <= limits.MAX_ID:
        raise Unprocessable(
            f"before must be a message id (1-{limits.MAX_ID}) or an ISO 8601 time", code="invalid_request"
        )
    return before, None


@router.post(
    "/messages",
    openapi_extra=json_body(PostMessage),
    **answers(doc.Posted, operation_id="send_message", status=201, also=(200,)),
)
async def post_message(request: Request) -> JSONResponse:
    """Post {channel, content, parent_message_id?, metadata?, expects_reply?, client_msg_id?}; retries store once."""
    # The hottest route: authentication and the body are handled here rather than by FastAPI's
    # dependency machinery, which costs more than the rest of the request (bench/, docs/performance.md).
    agent = await writer(request)
    body = await parse(request, PostMessage)
    posted = await agent.relay.store.write(sql.post, agent.caller, body.channel, _draft(request, body))
    return _posted(agent, posted)


@router.post("/messages/{message_id}/claim", **answers(doc.Claimed, operation_id="claim_question"))
async def claim(agent: Writer, message_id: Annotated[int, Path(ge=1, le=limits.MAX_ID)]) -> JSONResponse:
    """Claim an open question before answering it: 200 to exactly one agent, 409 (with the holder) to the rest."""
    result = await agent.relay.store.write(sql.claim, agent.caller, message_id, ttl=agent.relay.settings.claim_ttl)
    data = {
        "won": True,
        "message_id": result.message_id,
        "claimed_by": result.holder,
        "expires_at": iso(result.expires_at),
    }
    return ok(data, budget=agent.budget, write=True)


@router.post("/messages/{message_id}/release", **answers(doc.Released, operation_id="release_claim"))
async def release_claim(
    agent: Writer, message_id: Annotated[int, Path(ge=1, le=limits.MAX_ID)], body: ReleaseClaim | None = None
) -> JSONResponse:
    """Give back a question you claimed or cannot answer {reason}, so another agent can claim it at once;
    the reason is posted in its thread and the question stays open."""
    reason = body.reason if body is not None else None
    released, note = await agent.relay.store.write(sql.release_claim, agent.caller, message_id, reason)
    data = {"message_id": message_id, "released": released, "note": note.message.to_dict() if note else None}
    return ok(data, budget=agent.budget, write=True)


@router.get("/events", **answers(doc.Page, operation_id="wait_for_messages"))
async def events(
    agent: Reader,
    since: Cursor = None,
    wait: Wait = 0,
    limit: Limit = limits.MAX_LIST_LIMIT,
    channel: OptionalChannel = None,
    peek: Annotated[bool, Query(description="leave what is returned unread (for notifiers and hooks)")] = False,
) -> JSONResponse:
    """Everything for you (channels, DMs, mentions; or one ?channel=) after ?since=, parking up to ?wait= s;
    ?peek=true leaves it unread."""
    limit = min(limit, limits.MAX_LIST_LIMIT)
    store, caller = agent.relay.store, agent.caller

    async def read(cursor: int | None) -> Page:
        return await store.read(sql.read_events, caller, since=cursor, limit=limit, channel_name=channel)

    page = await _long_poll(agent, read, since, wait, limit)
    if page.messages and not peek:
        mark_read_soon(agent, page)
    return ok(_page(page), budget=agent.budget)


@router.get("/events/stream", include_in_schema=False)
async def event_stream(
    request: Request, agent: Reader, since: Cursor = None, channel: OptionalChannel = None
) -> StreamingResponse:
    """``events`` as Server-Sent Events, forever: each message once (``id`` is its id), resuming after
    ``Last-Event-ID`` on a reconnect, so nothing is skipped or repeated. A revoked key gets ``signed-out``."""
    resume = request.headers.get("last-event-id")
    cursor = _event_id(resume) if resume else since
    if cursor is None:
        cursor = await agent.relay.store.read(sql.high_water)
    return StreamingResponse(_stream(request, agent, cursor, channel), media_type="text/event-stream", headers=_SSE)


_SSE = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
_SIGNED_OUT = "event: signed-out\ndata: {}\n\n"


def _event_id(value: str) -> int:
    """``Last-Event-ID``: a message id as ASCII digits (``str.isdigit`` also takes '²' and '١'), within range."""
    if value.isascii() and value.isdigit() and len(value) <= 19 and int(value) <= limits.MAX_ID:
        return int(value)
    raise BadRequest(
        f"Last-Event-ID must be a message id (0-{limits.MAX_ID}, ASCII digits); drop the header to start from now",
        code="invalid_last_event_id",
    )


async def _stream(request: Request, agent: AuthedRequest, cursor: int, channel: str | None) -> AsyncIterator[str]:
    store, relay = agent.relay.store, agent.relay
    yield "retry: 1000\n\n"
    while not (relay.hub.closed or await request.is_disconnected()):  # a stopping relay ends the stream
        try:
            _, caller = await context.authenticate(request)
        except RelayError:
            yield _SIGNED_OUT
            return
        current = dataclasses.replace(agent, caller=caller)

        async def read(since: int | None, who: AuthedRequest = current) -> Page:
            limit = limits.MAX_LIST_LIMIT
            return await store.read(sql.read_events, who.caller, since=since, limit=limit, channel_name=channel)

        try:
            page = await _long_poll(current, read, cursor, relay.settings.max_wait, limits.MAX_LIST_LIMIT)
        except Unauthorized:  # revoked or expired while parked: nothing more, not one message
            yield _SIGNED_OUT
            return
        for message in page.messages:
            yield f"id: {message.id}\nevent: message\ndata: {json.dumps(message.to_dict())}\n\n"
        cursor = page.cursor
        if not page.messages:
            yield ": still here\n\n"


@router.post("/dm", **answers(doc.Posted, operation_id="send_dm", status=201, also=(200,)))
async def send_dm(request: Request, agent: Writer, body: PostDM) -> JSONResponse:
    """Send a direct message {target_agent, content}; only you two can ever read it."""
    posted = await agent.relay.store.write(sql.post_dm, agent.caller, body.target_agent, _draft(request, body))
    return _posted(agent, posted)


@router.get("/dm", **answers(doc.Page, operation_id="read_dm"))
async def read_dm(
    agent: Reader,
    agent_name: Annotated[Name, Query(alias="agent")],
    limit: Limit = limits.DEFAULT_LIST_LIMIT,
    since: Cursor = None,
    wait: Wait = 0,
) -> JSONResponse:
    """Your direct-message conversation with one agent (?agent=), like reading its dm: channel."""
    channel = rules.dm_channel_name(agent.caller.name, agent_name)
    return await read_messages(agent, channel, limit=limit, before=None, since=since, wait=wait)


@router.get("/mentions", **answers(doc.Mentions, operation_id="check_mentions"))
async def mentions(agent: Reader, unread: str = "true", limit: Limit = 20, mark_read: bool = False) -> JSONResponse:
    """Messages that @mention you (?unread=false for all); ?mark_read=true marks the returned ones read."""
    found = await agent.relay.store.read(
        sql.mentions, agent.caller, unread_only=unread.lower() != "false", limit=min(limit, limits.MAX_LIST_LIMIT)
    )
    data: dict[str, Any] = {"mentions": [mention.to_dict() for mention in found]}
    if mark_read:
        unread_ids = [mention.id for mention in found if not mention.read]
        marked = await agent.relay.store.write(sql.mark_mentions_read, agent.caller, unread_ids) if unread_ids else 0
        data["marked_read"] = marked
    return ok(data, budget=agent.budget)


@router.post("/mentions", **answers(doc.MarkedRead, operation_id="mark_mentions_read"))
async def mark_mentions(agent: Writer, body: MarkMentions) -> JSONResponse:
    """Mark mentions read {mention_ids}; returns how many were really marked."""
    marked = await agent.relay.store.write(sql.mark_mentions_read, agent.caller, body.mention_ids)
    return ok({"marked_read": marked}, budget=agent.budget, write=True)


@router.get("/search", **answers(doc.SearchResults, operation_id="search_messages"))
async def search(
    agent: Reader,
    q: Annotated[PlainText, Query(min_length=1, max_length=limits.MAX_SEARCH_CHARS)],
    channel: OptionalChannel = None,
    limit: Limit = 20,
) -> JSONResponse:
    """Full-text search, ranked, with snippets, over what you can see (?q=, ?channel=)."""
    hits = await agent.relay.store.search(agent.caller, q, channel=channel, limit=min(limit, limits.MAX_LIST_LIMIT))
    return ok({"query": q, "results": [hit.to_dict() for hit in hits]}, budget=agent.budget)


@router.get("/agents", **answers(doc.Agents, operation_id="list_agents"))
async def list_agents(agent: Reader, channel: OptionalChannel = None) -> JSONResponse:
    """Agents (?channel= for its members), when each was last seen, and who is online."""
    presence = agent.relay.presence
    found = []
    for seen in await agent.relay.store.read(sql.agents, agent.caller, channel_name=channel):
        last_seen, online = presence.describe(seen.id, seen.last_seen)
        found.append({"name": seen.name, "last_seen": iso(last_seen), "online": online, "human": seen.human})
    return ok({"agents": found}, budget=agent.budget)


@router.post("/files", openapi_extra=UPLOAD_BODY, **answers(doc.Uploaded, operation_id="upload_file", status=201))
async def upload_file(
    request: Request,
    agent: Writer,
    channel: Annotated[str | None, Query()] = None,
    filename: Annotated[str | None, Query(max_length=limits.MAX_FILENAME_CHARS)] = None,
    message: Annotated[str | None, Query(max_length=limits.MAX_CONTENT_CHARS)] = None,
    announce: bool = True,
) -> JSONResponse:
    """Share a file (at most 10 MB): JSON {channel, filename, content, encoding}, a multipart form with a file
    part, or raw bytes with ?channel=&filename=."""
    channel, upload = await read_upload(request, channel, filename, message, announce)
    stored = await agent.relay.store.save_file(agent.caller, channel, upload)
    return ok({"file": stored.to_dict()}, status=201, budget=agent.budget, write=True)


@router.get("/files/{file_id}", operation_id="download_file", responses=FILE_RESPONSE)
async def download_file(agent: Reader, file_id: Annotated[PlainText, Path(max_length=64)]) -> Response:
    """Download a file shared in a channel you can see."""
    return await file_response(agent, file_id)


async def file_response(agent: AuthedRequest, file_id: str) -> Response:
    """A file's bytes, safe to open: dangerous types download as octet-stream, names encoded per RFC 6266."""
    end = agent.relay.downloads.start(agent.caller.bucket)
    try:
        stored, chunks = await agent.relay.store.open_file(agent.caller, file_id)
    except BaseException:
        end()
        raise
    name = rules.safe_filename(stored.filename)  # names stored before they were cleaned on upload
    content_type = rules.content_type(stored.content_type, name)
    inline = content_type in _INLINE_TYPES
    media_type = "application/octet-stream" if content_type in _DANGEROUS_TYPES else content_type
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    disposition = "inline" if inline else "attachment"
    headers = {
        "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        # What a sealed file's chunks are bound to, for the client that opens it.
        "X-Parley-Channel": quote(stored.channel, safe="~:+@"),
        "X-Parley-Uploader": stored.uploader,
        **agent.budget.headers(),
    }
    stall = agent.relay.settings.download_stall_seconds
    return FileStream(
        chunks, size=stored.size, media_type=media_type, headers=headers, on_close=end, stall_seconds=stall
    )
