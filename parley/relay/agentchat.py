"""AgentChat's file routes, so that its SDK, MCP server and LangChain tools work unchanged: ``PUT /api/files``
and ``GET /api/files?path=`` (``&url=true``). As in AgentChat, these answers are not enveloped.

A file's ``path`` is its parley id. The rest of AgentChat's API (``/api/v1``) is parley's own.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import Field
from starlette.responses import JSONResponse

from parley import limits
from parley.relay import openapi as doc
from parley.relay.api import file_response
from parley.relay.context import Reader, Writer
from parley.relay.schemas import Body, ChannelName, PlainText, UploadFile
from parley.relay.store import sql
from parley.relay.uploads import from_json

router = APIRouter(prefix="/api")
BUCKET = "parley"


class AgentChatUpload(Body):
    filename: Annotated[str, Field(min_length=1, max_length=limits.MAX_FILENAME_CHARS)]
    content: str
    channel: ChannelName
    content_type: Annotated[str | None, Field(max_length=limits.MAX_REFERENCE_CHARS)] = None
    encoding: Literal["utf-8", "base64"] = "utf-8"
    post_message: bool = True


@router.put("/files", operation_id="agentchat_upload_file", status_code=201, responses=doc.raw(doc.AgentChatUploaded))
async def upload(agent: Writer, body: AgentChatUpload) -> JSONResponse:
    """AgentChat's upload: JSON {filename, content, channel, content_type?, encoding?, post_message?}."""
    fields = body.model_dump(exclude={"post_message"})
    channel, file = from_json(UploadFile(**fields, announce=body.post_message))
    stored = await agent.relay.store.save_file(agent.caller, channel, file)
    described = {**stored.to_dict(), "path": stored.id, "bucket": BUCKET}
    return JSONResponse({"file": described}, status_code=201, headers=agent.budget.headers())


@router.get("/files", operation_id="agentchat_download_file", responses=doc.raw(doc.FileUrl, file=True))
async def download(
    request: Request,
    agent: Reader,
    path: Annotated[PlainText, Query(min_length=1, max_length=64, description="the file's id")],
    url: bool = False,
) -> Response:
    """AgentChat's download: the bytes, or with ?url=true where to fetch them (with your key: parley has no
    signed URLs, so the link works only with the same headers)."""
    if not url:
        return await file_response(agent, path)
    await agent.relay.store.read(sql.file, agent.caller, path)  # exists, and the caller may see it
    link = f"{str(request.base_url).rstrip('/')}/api/v1/files/{path}"
    return JSONResponse({"signed_url": link, "url": link, "expires_in": None, "needs_key": True})
