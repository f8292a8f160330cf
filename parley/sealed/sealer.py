"""Sealing on the wire: what every client (the typed client, the executor and so the LangChain tools, the MCP
server and the always-on agents) does to a request for a sealed channel and to what comes back.

``Sealer.exchange`` wraps one request as sans-IO steps (``parley.client.calls``):

- a send to a channel whose key the keyring holds goes out sealed (content and metadata encrypted, the
  @mentions named in the clear), with the author in its binding (``GET /me`` once, if the name is unknown);
- creating a channel with ``encrypted: true`` makes its key first and keeps it once the relay agrees;
- a file shared in a sealed channel is uploaded sealed and announced by a sealed message naming it;
- every message in an answer is opened (or marked with why it could not be), and a sealed download is
  decrypted. A nonce seen before in a channel, on another message, is reported as a replay. A message without
  an envelope in a sealed channel (one whose key the keyring holds, or that the answer itself says is sealed),
  or one whose ``sealed`` field is anything but an envelope (a relay-supplied ``"opened": true``), was never
  sealed by a member: it is shut as ``unsealed``, never shown as its author's words.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from parley import limits
from parley.client import calls
from parley.client.calls import Sealing, Send, Steps, exchange
from parley.client.errors import SealError
from parley.client.transport import Response, TransportError
from parley.extras import MissingExtra
from parley.rules import content_type, file_announcement, parse_mentions
from parley.sealed import envelope as fmt
from parley.sealed.keyring import Keyring, new_key

Outcome = Response | TransportError
Snapshot = tuple[dict[str, dict[str, bytes]], dict[str, bytes]]
Finish = Callable[[Outcome], Steps[Outcome]]


def _crypto() -> Any:
    try:
        from parley.sealed import crypto
    except MissingExtra as exc:
        raise SealError("missing_extra", str(exc)) from exc
    return crypto


@dataclasses.dataclass
class Sealer:
    keyring: Keyring = dataclasses.field(default_factory=Keyring)
    #: This client's agent name, the author every seal binds (asked of the relay once when not given).
    me: str | None = None
    _nonces: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    def exchange(
        self,
        send: Send,
        body: dict[str, Any] | None,
        sealing: Sealing | None,
        *,
        retries: int,
        retry_safe: bool = True,
    ) -> Steps[tuple[Outcome, int]]:
        """``calls.exchange`` for ``send`` (whose JSON ``body`` is given decoded), sealed where ``sealing`` (what
        the call asks) and the keyring say it must be; every answer's messages opened."""
        send, finish = yield from self._outgoing(send, body, sealing, retries)
        outcome, attempts = yield from exchange(send, retries=retries, retry_safe=retry_safe)
        outcome = yield from finish(outcome)
        if isinstance(outcome, Response) and outcome.status < 400:
            outcome = self._opened(outcome)
        return outcome, attempts

    # -- going out ------------------------------------------------------------------------------

    def _outgoing(
        self, send: Send, body: dict[str, Any] | None, sealing: Sealing | None, retries: int
    ) -> Steps[tuple[Send, Finish]]:
        if sealing == "download":
            return send, self._decrypt_download
        if sealing is None or body is None:
            return send, _unchanged
        if sealing == "join":
            encrypted = bool(body.get("encrypted"))
            if encrypted:
                _crypto()  # without the e2e extra, say so before making a channel nobody here could write in
            return send, self._keep_key(new_key() if encrypted else None)
        channel = body.get("channel")
        key = self.keyring.current(channel) if isinstance(channel, str) else None
        if key is None:
            return send, _unchanged
        me = yield from self._identity(send, retries)
        if sealing == "post":
            return _with_body(send, self._seal_post(dict(body), key, me)), _unchanged
        return (yield from self._seal_upload(send, dict(body), key, me, retries))

    def _identity(self, send: Send, retries: int) -> Steps[str]:
        if self.me is None:
            ask = Send("GET", "/api/v1/me", send.headers, None, send.timeout)
            outcome, _ = yield from exchange(ask, retries=retries)
            if isinstance(outcome, TransportError) or outcome.status >= 400:
                raise SealError("no_identity", "could not ask the relay who you are (GET /api/v1/me) to seal")
            self.me = str(json.loads(outcome.body)["data"]["name"])
        return self.me

    def _seal_post(self, body: dict[str, Any], key: bytes, me: str) -> dict[str, Any]:
        """The relay cannot check what it cannot read, so the limits it puts on plain messages are kept here."""
        content, metadata = str(body.pop("content", "")).strip(), body.pop("metadata", None)
        if not 0 < len(content) <= limits.MAX_CONTENT_CHARS:
            raise SealError(
                "invalid_content", f"content must be 1-{limits.MAX_CONTENT_CHARS} characters; it is {len(content)}"
            )
        if metadata is not None and len(json.dumps(metadata, separators=(",", ":"))) > limits.MAX_METADATA_BYTES:
            raise SealError("metadata_too_large", f"metadata is limited to {limits.MAX_METADATA_BYTES} bytes as JSON")
        bound = fmt.binding(body["channel"], me, body.get("parent_message_id"), body.get("client_msg_id"))
        body["sealed"] = _crypto().seal_message(key, content, metadata, bound)
        body["mentions"] = [name for name in parse_mentions(content) if name != me]
        return body

    def _keep_key(self, key: bytes | None) -> Finish:
        """A channel this client creates sealed is sealed with ``key``; the answer says whether a key is held."""

        def finish(outcome: Outcome) -> Steps[Outcome]:
            if isinstance(outcome, Response) and outcome.status < 300:
                document = json.loads(outcome.body)
                channel = document["data"]["channel"]
                if not channel.get("encrypted"):
                    return outcome
                if document["data"].get("created") and key is not None:
                    self.keyring.add(channel["name"], key)
                channel["key_held"] = bool(self.keyring.keys(channel["name"]))
                outcome = dataclasses.replace(outcome, body=json.dumps(document).encode())
            return outcome
            yield  # a generator, like every finisher

        return finish

    def _seal_upload(
        self, send: Send, body: dict[str, Any], key: bytes, me: str, retries: int
    ) -> Steps[tuple[Send, Finish]]:
        """The file goes up sealed under a neutral name, without the relay's plaintext announcement; the
        announcement follows as a sealed message that names it."""
        try:
            text_body = body.get("encoding", "utf-8") == "utf-8"
            raw = body["content"].encode() if text_body else base64.b64decode(body["content"], validate=True)
        except (ValueError, binascii.Error) as exc:
            raise SealError("invalid_base64", "content is not valid base64") from exc
        name = body["filename"]
        kind = content_type(body.get("content_type"), name)
        blob = _crypto().seal_file(key, raw, name, kind, body["channel"], me)
        announce = body.get("announce", True)
        text = body.get("message") or file_announcement(name, len(raw))
        sealed = {"channel": body["channel"], "filename": "sealed.bin", "announce": False}
        sealed |= {"content": base64.b64encode(blob).decode(), "encoding": "base64"}

        def finish(outcome: Outcome) -> Steps[Outcome]:
            if not isinstance(outcome, Response) or outcome.status >= 300 or not announce:
                return outcome
            document = json.loads(outcome.body)
            stored = document["data"]["file"] | {"name": name, "content_type": kind, "size": len(raw)}
            post = {"channel": body["channel"], "content": text, "metadata": {"files": [stored]}}
            post["client_msg_id"] = f"file-{stored['id']}"
            unsealed = calls.post(body["channel"], text).send(send.headers, send.timeout)
            note = _with_body(unsealed, self._seal_post(post, key, me))
            posted, _ = yield from exchange(note, retries=retries)
            if isinstance(posted, Response) and posted.status < 300:
                stored["message_id"] = json.loads(posted.body)["data"]["message"]["id"]
            document["data"]["file"] = stored
            return dataclasses.replace(outcome, body=json.dumps(document).encode())

        return _with_body(send, sealed), finish
        yield  # a generator, like the other branches of _outgoing

    # -- coming back ----------------------------------------------------------------------------

    def _decrypt_download(self, outcome: Outcome) -> Steps[Outcome]:
        if not isinstance(outcome, Response) or outcome.status >= 300 or not outcome.body.startswith(fmt.FILE_MAGIC):
            return outcome
        channel = unquote(outcome.headers.get("x-parley-channel", ""))
        uploader = outcome.headers.get("x-parley-uploader", "")
        name, kind, data = _crypto().open_file(self.keyring.keys(channel), outcome.body, channel, uploader)
        ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
        headers = outcome.headers | {
            "content-type": kind,
            "content-disposition": f'attachment; filename="{ascii_name}"',
        }
        return dataclasses.replace(outcome, headers=headers, body=data)
        yield  # a generator

    def _opened(self, response: Response) -> Response:
        if not response.headers.get("content-type", "").startswith("application/json"):
            return response
        if b'"sealed"' not in response.body and not self._holds_keys():
            return response
        document = json.loads(response.body)
        self.open_all(document.get("data"))
        return dataclasses.replace(response, body=json.dumps(document).encode())

    def _holds_keys(self) -> bool:
        """Whether this keyring holds any channel's key (a damaged one: yes, and ``open_all`` says so)."""
        try:
            return bool(self.keyring.snapshot()[0])
        except SealError:
            return True

    def open_all(self, data: Any) -> None:
        """Open, in place, every sealed message in an answer's data (messages, pages, boards, mentions), and
        shut every message that should have been sealed and is not."""
        found: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        sealed_channels: set[str] = set()
        _walk(data, found, messages, sealed_channels)
        try:
            keys = self.keyring.snapshot()
        except SealError as exc:  # a damaged keyring: every sealed message says so, nothing is lost
            for message in found:
                _shut(message, exc)
            return
        sealed_channels |= keys[0].keys()  # and every channel this keyring holds a key for
        for message in messages:
            if message.get("sealed") is not None or message.get("channel") in sealed_channels:
                _shut(message, _UNSEALED)
        for message in found:
            self.open_message(message, keys)

    def open_message(self, message: dict[str, Any], keys: Snapshot | None = None) -> None:
        """Replace a sealed message's envelope by its content and metadata, or say why it stays shut."""
        envelope = message["sealed"]
        by_channel, everywhere = keys if keys is not None else self.keyring.snapshot()
        try:
            channel, message_id, bound = _routing(message)
            content, metadata = _crypto().open_message(by_channel.get(channel, {}), envelope, bound, everywhere)
            self._check_nonce(channel, envelope["nonce"], message_id)
        except SealError as exc:
            _shut(message, exc)
            return
        message["content"], message["metadata"] = content, metadata or {}
        message["sealed"] = {"kid": envelope["kid"], "opened": True}

    def _check_nonce(self, channel: str, nonce: str, message_id: int) -> None:
        seen = self._nonces.setdefault(channel, {})
        first = seen.setdefault(nonce, message_id)
        if first != message_id:
            raise SealError(
                "replayed", f"its nonce was already used by message {first} in '{channel}': a replayed copy"
            )


def _shut(message: dict[str, Any], why: SealError) -> None:
    """A sealed message that stays shut, saying why in its content (what a person or a model reads)."""
    message["content"], message["metadata"] = f"[sealed message not opened ({why.code}): {why.message}]", {}
    envelope = message.get("sealed")
    kid = envelope.get("kid") if isinstance(envelope, dict) else None
    message["sealed"] = {"kid": kid, "opened": False, "error": why.code}
    if "snippet" in message:
        message["snippet"] = ""


def _routing(message: dict[str, Any]) -> tuple[str, int, list[Any]]:
    """A message's channel, id and binding, as the relay delivered it (a message, or a mention of one)."""
    try:
        is_mention = "mention_id" in message
        author = message["from"] if is_mention else message["author"]
        bound = fmt.binding(message["channel"], author, message.get("parent_message_id"), message.get("client_msg_id"))
        return message["channel"], message["message_id"] if is_mention else message["id"], bound
    except KeyError as exc:
        raise SealError("malformed", f"the sealed message lacks its {exc.args[0]}") from exc


_UNSEALED = SealError(
    "unsealed",
    "this message carries no sealed envelope in a sealed channel, so no member sealed it; it is not genuine"
    " (the relay, or someone with its database, wrote it)",
)


def _walk(data: Any, found: list[dict[str, Any]], plain: list[dict[str, Any]], sealed_channels: set[str]) -> None:
    """Collect the sealed messages, the messages without an envelope, and the channels the answer says are
    sealed (a board's or a channel list's entries)."""
    if isinstance(data, list):
        for item in data:
            _walk(item, found, plain, sealed_channels)
    elif isinstance(data, dict):
        sealed = data.get("sealed")
        if isinstance(sealed, dict) and "ciphertext" in sealed:
            found.append(data)
        elif "content" in data and ("author" in data or "from" in data) and isinstance(data.get("channel"), str):
            plain.append(data)
        if data.get("encrypted") is True:
            name = data.get("channel") if isinstance(data.get("channel"), str) else data.get("name")
            if isinstance(name, str):
                sealed_channels.add(name)
        for value in data.values():
            if isinstance(value, (dict, list)):
                _walk(value, found, plain, sealed_channels)


def _unchanged(outcome: Outcome) -> Steps[Outcome]:
    return outcome
    yield  # a generator


def _with_body(send: Send, body: dict[str, Any]) -> Send:
    cleaned = {k: v for k, v in body.items() if v is not None}
    headers = send.headers | {"Content-Type": "application/json"}
    return dataclasses.replace(send, headers=headers, body=json.dumps(cleaned).encode())
