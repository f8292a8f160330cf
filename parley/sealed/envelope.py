"""The sealed formats, as the relay checks them and clients build them. Standard library only.

A sealed message carries ``{"v": 1, "kid", "nonce", "ciphertext"}`` instead of ``content``: AES-256-GCM
under the channel's key ``kid`` with a fresh 96-bit nonce. Its associated data binds the version, the key,
the channel, the author, the parent message and the ``client_msg_id``, so a ciphertext moved to another
channel, thread or author fails to open. The plaintext is JSON ``{"b": binding, "content", "metadata"}``;
the binding repeated inside lets a reader say *what* was moved once a failed open is diagnosed.

A sealed file is one blob: ``PE2F``, version byte, a 2-byte length and a JSON header ``{"kid", "file"}``,
then chunks of ``nonce (12) | length (4) | ciphertext``. Chunk 0 holds ``{"name", "content_type"}``, the
rest the bytes, 64 KiB each; every chunk's associated data names the file, its index and whether it is
the last, so chunks cannot be reordered, dropped, spliced from another file or moved to another channel.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import struct
from typing import Any

from parley import limits

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
CHUNK_BYTES = 65_536
FILE_MAGIC = b"PE2F"
#: A key id is derived from its key (``key_id``), so a wrong key for an id is recognised as wrong.
KID_RE = re.compile(r"^[A-Za-z0-9_-]{12}$")
_FILE_TAG_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
_CHUNK_HEAD = struct.Struct(">12sI")


class MalformedEnvelope(ValueError):
    """Not a well-formed sealed message or file (the relay refuses it; a client cannot open it)."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    if not isinstance(text, str):
        raise MalformedEnvelope("not base64url text")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEnvelope("not base64url text") from exc


def key_id(key: bytes) -> str:
    """The id a key is known by: a keyed hash of the key itself (it reveals nothing of it)."""
    return b64(hmac.new(key, b"parley key id", hashlib.sha256).digest()[:9])


def check_envelope(envelope: Any) -> tuple[str, bytes, bytes]:
    """A sealed message's envelope, checked for shape and sizes (not opened: the relay has no key), as its
    kid, nonce and ciphertext."""
    if not isinstance(envelope, dict) or set(envelope) != {"v", "kid", "nonce", "ciphertext"}:
        raise MalformedEnvelope("a sealed envelope is exactly {v, kid, nonce, ciphertext}")
    if envelope["v"] != VERSION or isinstance(envelope["v"], bool):
        raise MalformedEnvelope(f"unknown envelope version {envelope['v']!r}; this relay speaks v{VERSION}")
    if not isinstance(envelope["kid"], str) or not KID_RE.fullmatch(envelope["kid"]):
        raise MalformedEnvelope("kid must be a 12-character key id")
    nonce, ciphertext = unb64(envelope["nonce"]), unb64(envelope["ciphertext"])
    if len(nonce) != NONCE_BYTES:
        raise MalformedEnvelope(f"nonce must be {NONCE_BYTES} bytes, base64url")
    if not TAG_BYTES < len(ciphertext) <= limits.MAX_SEALED_BYTES:
        raise MalformedEnvelope(f"ciphertext must be {TAG_BYTES + 1}-{limits.MAX_SEALED_BYTES} bytes, base64url")
    return envelope["kid"], nonce, ciphertext


def binding(channel: str, author: str, parent: int | None, client_msg_id: str | None) -> list[Any]:
    return [channel, author, parent, client_msg_id]


def associated_data(kid: str, bound: list[Any]) -> bytes:
    """What a message's tag covers besides its ciphertext. Names never hold a newline and the
    ``client_msg_id`` comes last, so the joined form is unambiguous."""
    channel, author, parent, client_msg_id = bound
    parts = ["parley-e2e", str(VERSION), kid, channel, author, "" if parent is None else str(parent)]
    return "\n".join([*parts, client_msg_id or ""]).encode()


def file_header(kid: str, file_tag: str) -> bytes:
    header = json.dumps({"kid": kid, "file": file_tag}, separators=(",", ":")).encode()
    return FILE_MAGIC + bytes([VERSION]) + struct.pack(">H", len(header)) + header


def chunk_data(kid: str, file_tag: str, channel: str, uploader: str, index: int, last: bool) -> bytes:
    parts = ["parley-e2e-file", str(VERSION), kid, file_tag, channel, uploader, str(index), "1" if last else "0"]
    return "\n".join(parts).encode()


def parse_file(blob: bytes) -> tuple[str, str, list[tuple[bytes, bytes]]]:
    """A sealed file's key id, file tag and ``(nonce, ciphertext)`` chunks, checked for shape."""
    if blob[:4] != FILE_MAGIC or len(blob) < 7:
        raise MalformedEnvelope("a sealed file starts with PE2F; seal it with a parley client that holds the key")
    if blob[4] != VERSION:
        raise MalformedEnvelope(f"unknown sealed-file version {blob[4]}; this relay speaks v{VERSION}")
    (length,) = struct.unpack(">H", blob[5:7])
    try:
        header = json.loads(blob[7 : 7 + length])
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEnvelope("the sealed file's header is not JSON") from exc
    if not isinstance(header, dict) or set(header) != {"kid", "file"}:
        raise MalformedEnvelope("the sealed file's header is exactly {kid, file}")
    kid, tag = header["kid"], header["file"]
    if not (isinstance(kid, str) and KID_RE.fullmatch(kid) and isinstance(tag, str) and _FILE_TAG_RE.fullmatch(tag)):
        raise MalformedEnvelope("the sealed file's header has a malformed kid or file tag")
    chunks, at = [], 7 + length
    while at < len(blob):
        if at + _CHUNK_HEAD.size > len(blob):
            raise MalformedEnvelope("the sealed file ends inside a chunk header")
        nonce, size = _CHUNK_HEAD.unpack_from(blob, at)
        at += _CHUNK_HEAD.size
        if not TAG_BYTES <= size <= CHUNK_BYTES + TAG_BYTES or at + size > len(blob):
            raise MalformedEnvelope("a chunk of the sealed file has an impossible length")
        chunks.append((nonce, blob[at : at + size]))
        at += size
    if not chunks:
        raise MalformedEnvelope("a sealed file has at least one chunk")
    return kid, tag, chunks


def chunk(nonce: bytes, ciphertext: bytes) -> bytes:
    return _CHUNK_HEAD.pack(nonce, len(ciphertext)) + ciphertext
