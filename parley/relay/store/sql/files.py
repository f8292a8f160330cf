"""Files: checked before a byte is kept, recorded, and found again only by those who may see them."""

from __future__ import annotations

import dataclasses
import secrets
import time

from parley import rules
from parley.relay.errors import Forbidden, NotFound, Unprocessable
from parley.relay.models import (
    Caller,
    Channel,
    Draft,
    StoredFile,
    Upload,
)
from parley.relay.store.base import Tx
from parley.relay.store.sql.channels import _channel_for_post, _postable
from parley.relay.store.sql.common import (
    channel,
)
from parley.relay.store.sql.posting import _insert_message
from parley.sealed import envelope


def _sealed_upload(channel: Channel, upload: Upload) -> Upload:
    """A file for a sealed channel must be sealed (``parley.sealed``); it is kept under a neutral name and
    type, and never announced in the clear (its sharer announces it with a sealed message)."""
    if not channel.encrypted:
        return upload
    try:
        envelope.parse_file(upload.data)
    except envelope.MalformedEnvelope as exc:
        raise Unprocessable(
            f"'{channel.name}' is a sealed channel: it takes only sealed files ({exc})", code="sealed_channel"
        ) from exc
    if upload.announce:
        raise Unprocessable(
            "an announcement in a sealed channel would be plaintext: upload with announce=false and post a sealed"
            " message about the file",
            code="sealed_channel",
        )
    return dataclasses.replace(upload, filename="sealed.bin", content_type="application/octet-stream", announce=None)


async def upload_for(tx: Tx, caller: Caller, channel: str, upload: Upload) -> Upload:
    """The upload as it will be stored, checked (channel, access, sealing) before its bytes are written
    anywhere; ``insert_file`` checks again in the write that records it."""
    _, found = await _postable(tx, caller, channel)
    return _sealed_upload(found, upload) if found is not None else upload


async def file_digests(tx: Tx) -> list[str]:
    """The digests of every file's bytes."""
    return [row["sha256"] for row in await tx.all("SELECT DISTINCT sha256 FROM files")]


async def insert_file(tx: Tx, caller: Caller, channel: str, upload: Upload) -> StoredFile:
    """A file's record (its bytes are stored already, or in this transaction), and its announcement."""
    now = time.time()
    found = await _channel_for_post(tx, caller, channel, now)
    upload = _sealed_upload(found, upload)
    stored = StoredFile(
        id=secrets.token_urlsafe(12).replace("-", "_"),  # never starting with "-": a CLI would take it for an option
        channel=channel,
        filename=upload.filename,
        content_type=upload.content_type,
        size=len(upload.data),
        sha256=upload.sha256,
        uploader=caller.name,
        created_at=now,
    )
    if upload.announce is not None:
        text = upload.announce or rules.file_announcement(stored.filename, stored.size)
        posted = await _insert_message(tx, caller, found, Draft(text, metadata={"files": [stored.to_dict()]}), now)
        stored = dataclasses.replace(stored, message_id=posted.message.id)
    await tx.run(
        "INSERT INTO files (id, sha256, channel_id, uploader_id, filename, content_type, size, message_id, created_at)"
        " VALUES (:id, :sha256, :channel, :me, :filename, :content_type, :size, :message, :now)",
        id=stored.id,
        sha256=stored.sha256,
        channel=found.id,
        me=caller.agent_id,
        filename=stored.filename,
        content_type=stored.content_type,
        size=stored.size,
        message=stored.message_id,
        now=now,
    )
    return stored


async def file(tx: Tx, caller: Caller, file_id: str) -> StoredFile:
    """A file's record, if it was shared in a channel the caller may see."""
    row = await tx.one(
        "SELECT f.*, c.name AS channel, a.name AS uploader FROM files f JOIN channels c ON c.id = f.channel_id"
        " JOIN agents a ON a.id = f.uploader_id WHERE f.id = :id",
        id=file_id,
    )
    missing = NotFound(f"no file '{file_id}' that you can see", code="file_not_found")
    if row is None:
        raise missing
    try:
        await channel(tx, caller, row["channel"])
    except (NotFound, Forbidden) as exc:
        raise missing from exc
    return StoredFile(
        id=row["id"],
        channel=row["channel"],
        filename=row["filename"],
        content_type=row["content_type"],
        size=row["size"],
        sha256=row["sha256"],
        uploader=row["uploader"],
        created_at=row["created_at"],
        message_id=row["message_id"],
    )
