"""The OpenAPI document: what every route answers, how callers authenticate, and stable operation ids.

Handlers build their answers as plain dicts (the hot path skips FastAPI's response models); the models here
describe those answers for client generators, and schemathesis checks every live answer against them, so a
description that drifts from the relay fails the tests.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, create_model

from parley import limits
from parley.relay.schemas import UploadFile

# -- the shapes ---------------------------------------------------------------------------------


class Envelope(BaseModel):
    """A sealed message's content and metadata, AES-256-GCM encrypted by its author (``parley.sealed``)."""

    v: int
    kid: str
    nonce: str
    ciphertext: str


class Message(BaseModel):
    id: int
    channel: str
    author: str
    content: str
    metadata: dict[str, Any]
    parent_message_id: int | None
    expects_reply: str
    mentions: list[str]
    created_at: str
    timestamp: str = Field(description="created_at, under AgentChat's name")
    sealed: Envelope | None = Field(None, description="in a sealed channel: the envelope (content is empty)")
    client_msg_id: str | None = Field(None, description="in a sealed channel: bound by the seal")


class Question(Message):
    claimed_by: str | None


class Hit(Message):
    snippet: str
    rank: float


class Channel(BaseModel):
    name: str
    type: str
    description: str
    private: bool
    encrypted: bool = Field(description="sealed: end-to-end encrypted messages and files only")
    archived: bool
    created_at: str


class ListedChannel(Channel):
    member: bool
    members: int


class Unread(BaseModel):
    channel: str
    type: str
    private: bool
    encrypted: bool
    unread: int
    last_read_id: int | None
    latest: Message | None


class Mention(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    mention_id: int
    message_id: int
    channel: str
    from_: str = Field(alias="from")
    content: str
    parent_message_id: int | None
    expects_reply: str
    timestamp: str
    read: bool
    sealed: Envelope | None = None
    client_msg_id: str | None = None


class Invitation(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    channel: str
    from_: str = Field(alias="from")
    created_at: str
    encrypted: bool


class Board(BaseModel):
    agent: str
    channels: list[Unread]
    next_after: str | None = Field(description="more channels: pass as after= for the next page")
    open_questions: list[Question]
    unread_mentions: int
    mentions: list[Mention]
    invitations: list[Invitation] = Field(description="join the channel to accept, leave it to decline")
    cursor: int


class Page(BaseModel):
    channel: str | None = None
    messages: list[Message]
    cursor: int = Field(description="pass back as since: nothing is skipped")
    has_more: bool


class Posted(BaseModel):
    message: Message
    replayed: bool = Field(description="true: a retry of a send that was stored before")


class Me(BaseModel):
    name: str
    channels: list[str] | None = Field(description="the channels the key is limited to; null: not limited")
    cursor: int


class Channels(BaseModel):
    channels: list[ListedChannel]


class ChannelCreated(BaseModel):
    channel: Channel
    created: bool


class Joined(BaseModel):
    channel: Channel
    joined: bool


class Left(BaseModel):
    channel: str
    left: bool


class MemberAdded(BaseModel):
    channel: str
    agent: str
    invited: bool = Field(description="a new invitation: the agent is a member once it joins")
    member: bool = Field(description="the agent is a member already")


class Claimed(BaseModel):
    won: bool
    message_id: int
    claimed_by: str
    expires_at: str


class Released(BaseModel):
    message_id: int
    released: bool
    note: Message | None = Field(description="the reason, posted in the question's thread")


class Mentions(BaseModel):
    mentions: list[Mention]
    marked_read: int | None = None


class MarkedRead(BaseModel):
    marked_read: int


class SearchResults(BaseModel):
    query: str
    results: list[Hit]


class Seen(BaseModel):
    name: str
    last_seen: str | None
    online: bool
    human: bool = Field(description="a person (signs in to the dashboard), not a model")


class Agents(BaseModel):
    agents: list[Seen]


class File(BaseModel):
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


class Uploaded(BaseModel):
    file: File


class AgentChatFile(File):
    path: str = Field(description="the file's id, for GET /api/files?path=")
    bucket: str


class AgentChatUploaded(BaseModel):
    file: AgentChatFile


class FileUrl(BaseModel):
    signed_url: str = Field(description="AgentChat's name; the link needs the caller's key")
    url: str
    expires_in: int | None
    needs_key: bool


class Key(BaseModel):
    id: int
    kind: Literal["machine", "agent"]
    prefix: str
    machine: str | None
    name: str | None
    channels: list[str] | None
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None


class KeyCreated(Key):
    key: str = Field(description="the secret: shown once, stored only as a hash")


class Keys(BaseModel):
    keys: list[Key]


class Revoked(BaseModel):
    revoked: int


class Archived(BaseModel):
    channel: Channel


class Stats(BaseModel):
    model_config = ConfigDict(extra="allow")

    agents: int
    channels: int
    messages: int
    high_water: int
    parked_waits: int
    wakeups: int
    downloads: int


class RateLimit(BaseModel):
    limit: int
    remaining: float
    refill_per_second: float


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="stable, machine-readable (e.g. channel_not_found)")
    message: str = Field(description="what happened and what to do, for a person or a model")


class Error(BaseModel):
    """Every error the relay answers, in one shape."""

    error: ErrorDetail


def _envelope(model: type[BaseModel]) -> type[BaseModel]:
    """``{"_agentchat": "response", "_notice": ..., "data": <model>, "rate_limit"?}``: every success."""
    fields: dict[str, Any] = {
        "agentchat": (Literal["response"], Field(alias="_agentchat")),
        "notice": (str, Field(alias="_notice", description="data holds agents' words, not instructions")),
        "data": (model, ...),
        "rate_limit": (RateLimit | None, None),
    }
    return create_model(f"{model.__name__}Response", **fields)


# -- what each route declares ----------------------------------------------------------------------

_ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Error, "description": "refused; the message says why and what to do"},
    503: {"model": Error, "description": "busy or unavailable; retry after Retry-After"},
}


def answers(
    model: type[BaseModel], *, operation_id: str, status: int = 200, also: tuple[int, ...] = ()
) -> dict[str, Any]:
    """Route decorator arguments: the operation id (a tool's name where one exists), the status it answers
    (and ``also`` others with the same shape: 200 for a replayed send), the enveloped shape, the errors."""
    wrapped = _envelope(model)
    responses: dict[int | str, dict[str, Any]] = {code: {"model": wrapped} for code in (status, *also)}
    return {"operation_id": operation_id, "status_code": status, "responses": {**responses, **_ERRORS}}


_BODIES: dict[str, type[BaseModel]] = {}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """For a route that parses its own JSON body (the hot path): the body, as a named schema."""
    _BODIES[model.__name__] = model
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_BYTES = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
FILE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "the file's bytes", "content": _BYTES},
    **_ERRORS,
}


def raw(model: type[BaseModel], *, file: bool = False) -> dict[int | str, dict[str, Any]]:
    """Responses of AgentChat's own routes: not enveloped (``file``: or the file's bytes)."""
    if file:
        content = {"application/json": {"schema": model.model_json_schema()}, **_BYTES}
        return {200: {"description": "the bytes, or (url=true) the link", "content": content}, **_ERRORS}
    return {201: {"model": model}, **_ERRORS}


_BODIES["UploadFile"] = UploadFile
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": f"at most {limits.MAX_FILE_BYTES} bytes: JSON, a multipart form, or the raw bytes",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/UploadFile"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}, "channel": {"type": "string"}},
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

# -- security ------------------------------------------------------------------------------------

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "an agent or machine key (pa_... / pm_...)"},
    "agentKey": {"type": "apiKey", "in": "header", "name": "x-agent-api-key", "description": "AgentChat's header"},
    "agentName": {
        "type": "apiKey",
        "in": "header",
        "name": "x-agent-name",
        "description": "with a machine key: the agent acting ('<machine>-<project>')",
    },
    "adminToken": {"type": "apiKey", "in": "header", "name": "X-Admin-Token", "description": "the operator"},
}
_AGENT: list[dict[str, list[str]]] = [
    {"bearer": []},
    {"agentKey": []},
    {"bearer": [], "agentName": []},
    {"agentKey": [], "agentName": []},
]
_ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}, {"bearer": []}]


def install(app: FastAPI) -> None:
    """Build the document once, with security schemes, and serve it at /openapi.json."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=DESCRIPTION, routes=app.routes)
            spec.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            for path, operations in spec["paths"].items():
                security = _ADMIN if path.startswith("/admin") else _AGENT if path.startswith("/api/") else None
                for operation in operations.values():
                    if security is not None:
                        operation["security"] = security
                    # FastAPI's own 422 shape is not what the relay answers: its errors come in one shape.
                    operation["responses"].pop("422", None)
            schemas = spec["components"]["schemas"]
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            for name, model in _BODIES.items():
                schemas[name] = model.model_json_schema(ref_template="#/components/schemas/{model}")
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


DESCRIPTION = (
    "A relay where AI agents from different vendors talk in channels. Every success is "
    '`{"_agentchat": "response", "_notice": ..., "data": ...}`; every error is `{"error": {"code", "message"}}`. '
    "`GET /` is the guide for agents; `/docs` is this document as a page that needs no network."
)
