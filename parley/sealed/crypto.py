"""AES-256-GCM sealing and opening of messages and files (``cryptography``, the ``e2e`` extra).

Opening never returns unauthenticated text. When a message fails to open under the binding it arrived
with, the binding sealed inside it is read and *verified* (its tag must check under that binding), so a
reader learns exactly what happened (moved to another channel or thread, re-attributed, or tampered with)
without trusting a byte the relay could have forged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, NoReturn

from parley.extras import missing
from parley.sealed import envelope as fmt

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError as exc:
    raise missing("e2e", "sealed channels", exc) from exc

from parley.client.errors import SealError

_WHAT_MOVED = (
    (0, "moved_channel", "was sealed for channel '{0}', not '{1}': replayed into another channel"),
    (2, "moved_thread", "was sealed as a reply to {0}, not {1}: replayed into another thread"),
    (1, "reattributed", "was sealed by '{0}', not '{1}': re-attributed to another author"),
    (3, "replayed", "was sealed with client_msg_id {0!r}, not {1!r}: replayed as another message"),
)


def seal_message(key: bytes, content: str, metadata: dict[str, Any] | None, bound: list[Any]) -> dict[str, Any]:
    kid, nonce = fmt.key_id(key), os.urandom(fmt.NONCE_BYTES)
    plaintext = json.dumps({"b": bound, "content": content, "metadata": metadata}, separators=(",", ":"))
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), fmt.associated_data(kid, bound))
    return {"v": fmt.VERSION, "kid": kid, "nonce": fmt.b64(nonce), "ciphertext": fmt.b64(sealed)}


def open_message(
    keys: Mapping[str, bytes], envelope: Any, bound: list[Any], elsewhere: Mapping[str, bytes] | None = None
) -> tuple[str, dict[str, Any] | None]:
    """The content and metadata of a sealed message that arrived with ``bound`` (channel, author, parent,
    client_msg_id), opened with one of its channel's ``keys``, or a SealError that says what is wrong.
    Keys of other channels (``elsewhere``) only ever explain a failure: they never open a message."""
    try:
        kid, nonce, ciphertext = fmt.check_envelope(envelope)
    except fmt.MalformedEnvelope as exc:
        raise SealError("malformed", f"the sealed message is malformed: {exc}") from exc
    key = keys.get(kid)
    if key is None and elsewhere and kid in elsewhere:
        return _refuse_foreign(elsewhere[kid], kid, nonce, ciphertext, bound)
    if key is None:
        raise SealError(
            "missing_key",
            f"no key '{kid}' for channel '{bound[0]}' in your keyring; ask a member for its join link"
            " and run: parley join LINK",
        )
    cipher = AESGCM(key)
    try:
        plaintext = cipher.decrypt(nonce, ciphertext, fmt.associated_data(kid, bound))
    except InvalidTag:
        raise _diagnose(key, kid, nonce, ciphertext, bound) from None
    opened = json.loads(plaintext)
    return opened["content"], opened["metadata"]


def _refuse_foreign(key: bytes, kid: str, nonce: bytes, ciphertext: bytes, bound: list[Any]) -> NoReturn:
    """A message sealed with another channel's key: moved from there, or sealed here by someone holding only
    that other key. Neither is a message of this channel."""
    try:
        AESGCM(key).decrypt(nonce, ciphertext, fmt.associated_data(kid, bound))
    except InvalidTag:
        raise _diagnose(key, kid, nonce, ciphertext, bound) from None
    raise SealError(
        "moved_channel", f"the sealed message uses key '{kid}' of another channel, not a key of '{bound[0]}'"
    )


def _diagnose(key: bytes, kid: str, nonce: bytes, ciphertext: bytes, bound: list[Any]) -> SealError:
    """Why a message failed to open: the binding sealed inside it, if that binding verifies, says what moved."""
    counter = nonce + (2).to_bytes(4, "big")  # GCM encrypts from counter block 2 (a 96-bit nonce's J0 + 1)
    decryptor = Cipher(algorithms.AES(key), modes.CTR(counter)).decryptor()
    candidate = decryptor.update(ciphertext[: -fmt.TAG_BYTES]) + decryptor.finalize()
    try:
        sealed_for = json.loads(candidate)["b"]
        AESGCM(key).decrypt(nonce, ciphertext, fmt.associated_data(kid, sealed_for))
    except (ValueError, KeyError, TypeError, InvalidTag):
        return SealError("tampered", "the sealed message was altered after it was sealed (its tag does not verify)")
    for index, code, text in _WHAT_MOVED:
        if sealed_for[index] != bound[index]:
            return SealError(code, "the sealed message " + text.format(sealed_for[index], bound[index]))
    return SealError("tampered", "the sealed message does not verify")


def seal_file(key: bytes, data: bytes, name: str, content_type: str, channel: str, uploader: str) -> bytes:
    kid, tag = fmt.key_id(key), fmt.b64(os.urandom(16))
    head = json.dumps({"name": name, "content_type": content_type}, separators=(",", ":")).encode()
    pieces = [head] + [data[at : at + fmt.CHUNK_BYTES] for at in range(0, len(data), fmt.CHUNK_BYTES)]
    cipher, out = AESGCM(key), [fmt.file_header(kid, tag)]
    for index, piece in enumerate(pieces):
        nonce = os.urandom(fmt.NONCE_BYTES)
        aad = fmt.chunk_data(kid, tag, channel, uploader, index, index == len(pieces) - 1)
        out.append(fmt.chunk(nonce, cipher.encrypt(nonce, piece, aad)))
    return b"".join(out)


def open_file(keys: Mapping[str, bytes], blob: bytes, channel: str, uploader: str) -> tuple[str, str, bytes]:
    """A sealed file's name, content type and bytes, for a file shared in ``channel`` by ``uploader``."""
    try:
        kid, tag, chunks = fmt.parse_file(blob)
    except fmt.MalformedEnvelope as exc:
        raise SealError("malformed", f"the sealed file is malformed: {exc}") from exc
    key = keys.get(kid)
    if key is None:
        raise SealError("missing_key", f"no key '{kid}' for channel '{channel}' in your keyring; run: parley join LINK")
    cipher, parts = AESGCM(key), []
    for index, (nonce, ciphertext) in enumerate(chunks):
        aad = fmt.chunk_data(kid, tag, channel, uploader, index, index == len(chunks) - 1)
        try:
            parts.append(cipher.decrypt(nonce, ciphertext, aad))
        except InvalidTag:
            raise SealError(
                "tampered",
                f"chunk {index} of the sealed file does not verify: altered, truncated, reordered, or moved"
                f" from another channel or uploader than '{channel}' / '{uploader}'",
            ) from None
    head = json.loads(parts[0])
    return str(head["name"]), str(head["content_type"]), b"".join(parts[1:])
