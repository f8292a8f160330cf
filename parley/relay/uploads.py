"""How a file arrives: JSON (text or base64), a multipart form (``curl -F file=@x.png``) or raw bytes.

Each is read into one ``Upload`` with a safe file name and a content type taken from what the file itself
declares (the JSON field, the form part, the raw body's header) or guessed from its name; never from the
form's own type, and never a malformed one.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile as FormFile

from parley import limits, rules
from parley.relay.errors import BadRequest, PayloadTooLarge, Unprocessable
from parley.relay.models import Upload
from parley.relay.responses import invalid
from parley.relay.schemas import UploadFile


async def read_upload(
    request: Request, channel: str | None, filename: str | None, message: str | None, announce: bool
) -> tuple[str, Upload]:
    """The channel to share in, and the file."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return from_json(_json(await request.body()))
    if kind == "multipart/form-data":
        channel, filename, declared, data = await _form(request, channel, filename)
    else:
        declared, data = (None if kind == "application/x-www-form-urlencoded" else kind), await request.body()
    return _upload(channel, filename, declared, data, message, announce)


def from_json(body: UploadFile) -> tuple[str, Upload]:
    """A JSON upload: text, or base64 bytes."""
    return _upload(body.channel, body.filename, body.content_type, _decode(body), body.message, body.announce)


def _upload(
    channel: str | None, filename: str | None, declared: str | None, data: bytes, message: str | None, announce: bool
) -> tuple[str, Upload]:
    if not channel or not filename:
        raise BadRequest(
            "send JSON {channel, filename, content, encoding}, a multipart form with a file part and ?channel=,"
            " or raw bytes with ?channel=...&filename=...",
            code="missing_file_fields",
        )
    _check(channel, filename)
    if len(data) > limits.MAX_FILE_BYTES:
        raise PayloadTooLarge(
            f"the file is {len(data)} bytes; the limit is {limits.MAX_FILE_BYTES}", code="file_too_large"
        )
    name = rules.safe_filename(filename)
    upload = Upload(name, rules.content_type(declared, name), data, (message or "") if announce else None)
    return channel, upload


def _json(raw: bytes) -> UploadFile:
    try:
        return UploadFile.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid(exc.errors()) from exc


def _decode(body: UploadFile) -> bytes:
    if body.encoding == "utf-8":
        return body.content.encode()
    try:
        return base64.b64decode(body.content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unprocessable("content is not valid base64", code="invalid_base64") from exc


async def _form(
    request: Request, channel: str | None, filename: str | None
) -> tuple[str | None, str | None, str | None, bytes]:
    """The form's first file part; ``channel`` may also come as a form field."""
    try:
        form = await request.form(max_files=1, max_fields=10)
    except Exception as exc:  # the multipart parser's own errors: a malformed body
        raise BadRequest(f"the multipart body could not be read: {exc}", code="invalid_multipart") from exc
    try:
        part = next((value for value in form.values() if isinstance(value, FormFile)), None)
        if part is None:
            raise BadRequest("the multipart form has no file part (e.g. -F file=@notes.txt)", code="missing_file")
        field = form.get("channel")
        channel = channel or (field if isinstance(field, str) else None)
        return channel, filename or part.filename, part.content_type, await part.read()
    finally:
        await form.close()


def _check(channel: str, filename: str) -> None:
    try:
        UploadFile(channel=channel, filename=filename, content="")
    except ValidationError as exc:
        raise invalid(exc.errors()) from exc
