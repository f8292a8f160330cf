"""Every relay call as data (sans-IO): the request, how to read the answer, and the one retry rule.

``Client`` (standard library) and ``AsyncClient`` (httpx) only drive these, and the executor shares the same
``exchange`` and transport, so retries, ``client_msg_id`` and errors behave identically on every surface.
Standard library only.
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
import json
import uuid
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar
from urllib.parse import quote, urlencode

from parley import __version__
from parley.client import records as r
from parley.client.errors import ParleyError, RelayUnreachable
from parley.client.retry import MAX_RETRY_AFTER, NOT_ACTED_STATUSES, backoff, parse_retry_after, should_retry
from parley.client.transport import Response, Transport, TransportError

if TYPE_CHECKING:
    from parley.sealed.sealer import Sealer

T = TypeVar("T")
M = TypeVar("M", bound=Callable[..., Any])

#: What a call asks that sealing may apply to (``parley.sealed.sealer``): a post, creating or joining a channel,
#: an upload, a download. The sealer acts on this, never on a request's path.
Sealing = Literal["post", "join", "upload", "download"]

#: Seconds a request may take beyond the time the relay is asked to wait.
DEFAULT_TIMEOUT = 30.0


def agent_headers(key: str | None, agent_name: str | None = None, *, admin_token: str | None = None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": f"parley/{__version__}"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if agent_name:
        headers["x-agent-name"] = agent_name
    if admin_token:
        headers["X-Admin-Token"] = admin_token
    return headers


@dataclasses.dataclass(frozen=True)
class Send:
    """A step: send this request, then pass back the Response or TransportError."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    timeout: float


@dataclasses.dataclass(frozen=True)
class Sleep:
    """A step: wait this long, then pass back None."""

    seconds: float


Steps = Generator[Send | Sleep, "Response | TransportError | None", T]


def exchange(send: Send, *, retries: int, retry_safe: bool = True) -> Steps[tuple[Response | TransportError, int]]:
    """Send until answered: connection failures, timeouts, 408/429/5xx are retried with backoff and jitter,
    honouring Retry-After. A call that is not safe to repeat (an upload) is retried only when the relay surely
    did not act. Returns the last outcome and the number of attempts."""
    attempt = 0
    while True:
        attempt += 1
        outcome = yield send
        if isinstance(outcome, TransportError):
            if attempt > retries or (outcome.sent and not retry_safe):
                return outcome, attempt
            yield Sleep(backoff(attempt - 1, None))
            continue
        assert outcome is not None
        retry_after = parse_retry_after(outcome.headers.get("retry-after"))
        retryable = should_retry(outcome.status) and (retry_safe or outcome.status in NOT_ACTED_STATUSES)
        if retryable and (retry_after is None or retry_after <= MAX_RETRY_AFTER) and attempt <= retries:
            yield Sleep(backoff(attempt - 1, retry_after))
            continue
        return outcome, attempt


def drive(steps: Steps[T], transport: Transport, sleep: Callable[[float], None]) -> T:
    """Run steps with a blocking transport (the standard-library client and the executor)."""
    try:
        step = next(steps)
        while True:
            if isinstance(step, Sleep):
                sleep(step.seconds)
                step = steps.send(None)
                continue
            outcome: Response | TransportError
            try:
                outcome = transport.handle(step.method, step.path, step.headers, step.body, step.timeout)
            except TransportError as exc:
                outcome = exc
            step = steps.send(outcome)
    except StopIteration as done:
        result: T = done.value
        return result


def refusal(response: Response) -> ParleyError:
    """The relay's error as an exception (its code and message, whatever shape came back)."""
    try:
        error = json.loads(response.body)["error"]
        code, message = str(error.pop("code")), str(error.pop("message"))
    except (ValueError, KeyError, TypeError, AttributeError):
        code, message, error = f"http_{response.status}", response.body[:300].decode("utf-8", "replace"), {}
    return ParleyError(code, message, status=response.status, **error)


@dataclasses.dataclass(frozen=True)
class Call(Generic[T]):
    """One relay call: the request, and how to read a successful answer."""

    method: str
    path: str
    read: Callable[[Response], T]
    query: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    json: Mapping[str, Any] | None = None
    content: bytes | None = None
    content_type: str | None = None
    wait: float = 0.0
    retry_safe: bool = True
    sealing: Sealing | None = None

    def send(self, headers: dict[str, str], timeout: float) -> Send:
        query = {k: _text(v) for k, v in self.query.items() if v is not None}
        path = f"{self.path}?{urlencode(query)}" if query else self.path
        body, headers = self.content, dict(headers)
        if self.json is not None:
            body = json.dumps({k: v for k, v in self.json.items() if v is not None}).encode()
            headers["Content-Type"] = "application/json"
        elif self.content_type is not None:
            headers["Content-Type"] = self.content_type
        return Send(self.method, path, headers, body, timeout + self.wait)

    def steps(self, headers: dict[str, str], timeout: float, retries: int, sealer: Sealer | None = None) -> Steps[T]:
        """The call's I/O; with a ``sealer``, sends to sealed channels are sealed and answers opened."""
        send = self.send(headers, timeout)
        if sealer is None:
            outcome, _ = yield from exchange(send, retries=retries, retry_safe=self.retry_safe)
        else:
            body = json.loads(send.body) if self.json is not None and send.body else None
            outcome, _ = yield from sealer.exchange(
                send, body, self.sealing, retries=retries, retry_safe=self.retry_safe
            )
        if isinstance(outcome, TransportError):
            raise RelayUnreachable(str(outcome), sent=outcome.sent)
        if outcome.status >= 400:
            raise refusal(outcome)
        return self.read(outcome)


def like(build: Callable[..., Any], method: M) -> M:
    """``method`` as help() and IDEs should show it: the call builder's name, docstring and parameters."""
    signature = inspect.signature(build)
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    answer = str(signature.return_annotation).removeprefix("Call[").removesuffix("]")
    method.__name__, method.__doc__ = build.__name__, build.__doc__
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self, *signature.parameters.values()], return_annotation=answer
    )
    return method


def _text(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def answer(response: Response) -> Any:
    """What a successful answer's envelope carries (``data``)."""
    return json.loads(response.body)["data"]


def _seg(value: str | int) -> str:
    return quote(str(value), safe="")


def _as(build: Callable[[Any], T], *keys: str) -> Callable[[Response], T]:
    def read(response: Response) -> T:
        data = answer(response)
        for key in keys:
            data = data[key]
        return build(data)

    return read


# -- the API, one function per call ------------------------------------------------------------------


def me() -> Call[r.Me]:
    return Call("GET", "/api/v1/me", _as(r.Me.from_dict))


def board(after: str | None = None) -> Call[r.Board]:
    return Call("GET", "/api/v1/board", _as(r.Board.from_dict), {"after": after})


def channels(type: str | None = None) -> Call[list[r.Channel]]:
    listed = _as(lambda cs: [r.Channel.from_dict(c) for c in cs], "channels")
    return Call("GET", "/api/v1/channels", listed, {"type": type})


def join(
    channel: str, *, private: bool = False, description: str | None = None, encrypted: bool = False
) -> Call[r.Channel]:
    """Join a channel, created if new (``private``: named ``<you>~<channel>``, members only; ``encrypted``:
    sealed end to end, its key made here and kept in your keyring; share it with ``link``)."""
    body = {"name": channel, "private": private, "description": description, "encrypted": encrypted or None}
    return Call("POST", "/api/v1/channels", _as(r.Channel.from_dict, "channel"), json=body, sealing="join")


def leave(channel: str) -> Call[bool]:
    return Call("POST", f"/api/v1/channels/{_seg(channel)}/leave", _as(bool, "left"))


def add_member(channel: str, agent: str) -> Call[bool]:
    """Invite ``agent`` (True: a new invitation); it is a member once it joins the channel."""
    return Call("POST", f"/api/v1/channels/{_seg(channel)}/members", _as(bool, "invited"), json={"agent": agent})


def post(
    channel: str,
    content: str,
    *,
    reply_to: int | None = None,
    expects_reply: str | None = None,
    metadata: dict[str, Any] | None = None,
    client_msg_id: str | None = None,
) -> Call[r.Posted]:
    """A send carries a ``client_msg_id`` (one is made when not given): its retries are stored once."""
    body = {
        "channel": channel,
        "content": content,
        "parent_message_id": reply_to,
        "expects_reply": expects_reply,
        "metadata": metadata,
        "client_msg_id": client_msg_id or uuid.uuid4().hex,
    }
    return Call("POST", "/api/v1/messages", _as(r.Posted.from_dict), json=body, sealing="post")


def dm(
    agent: str,
    content: str,
    *,
    reply_to: int | None = None,
    expects_reply: str | None = None,
    client_msg_id: str | None = None,
) -> Call[r.Posted]:
    """A direct message only you and ``agent`` read: a post to ``@agent`` (it expects their reply by default)."""
    return post(f"@{agent}", content, reply_to=reply_to, expects_reply=expects_reply, client_msg_id=client_msg_id)


def read(
    channel: str, *, since: int | None = None, before: int | None = None, limit: int | None = None, wait: float = 0
) -> Call[r.Page]:
    """A channel (or ``@agent``: your DM with them), oldest first; reading joins it and marks it read."""
    query = {"channel": channel, "since": since, "before": before, "limit": limit, "wait": wait or None}
    return Call("GET", "/api/v1/messages", _as(r.Page.from_dict), query, wait=wait)


def events(
    since: int | None = None,
    *,
    wait: float = 0,
    channel: str | None = None,
    limit: int | None = None,
    peek: bool = False,
) -> Call[r.Page]:
    """Everything for you after ``since`` (your channels, DMs, mentions), waiting up to ``wait`` seconds."""
    query = {"since": since, "wait": wait or None, "channel": channel, "limit": limit, "peek": peek or None}
    return Call("GET", "/api/v1/events", _as(r.Page.from_dict), query, wait=wait)


def claim(message_id: int) -> Call[r.Claim]:
    def read(response: Response) -> r.Claim:
        d = answer(response)
        return r.Claim(int(d["message_id"]), d["claimed_by"], d["expires_at"])

    return Call("POST", f"/api/v1/messages/{int(message_id)}/claim", read)


def release(message_id: int, reason: str | None = None) -> Call[r.Released]:
    def read(response: Response) -> r.Released:
        d = answer(response)
        note = r.Message.from_dict(d["note"]) if d.get("note") else None
        return r.Released(int(d["message_id"]), bool(d["released"]), note)

    body = {"reason": reason} if reason else None
    return Call("POST", f"/api/v1/messages/{int(message_id)}/release", read, json=body)


def mentions(*, unread_only: bool = True, limit: int | None = None, mark_read: bool = False) -> Call[list[r.Mention]]:
    query = {"unread": unread_only, "limit": limit, "mark_read": mark_read or None}
    return Call("GET", "/api/v1/mentions", _as(lambda ms: [r.Mention.from_dict(m) for m in ms], "mentions"), query)


def mark_mentions_read(mention_ids: list[int]) -> Call[int]:
    body = {"mention_ids": list(mention_ids)}
    return Call("POST", "/api/v1/mentions", _as(int, "marked_read"), json=body)


def search(query: str, *, channel: str | None = None, limit: int | None = None) -> Call[list[r.Hit]]:
    def hits(results: list[dict[str, Any]]) -> list[r.Hit]:
        return [r.Hit(r.Message.from_dict(h), h.get("snippet", ""), float(h.get("rank", 0))) for h in results]

    return Call("GET", "/api/v1/search", _as(hits, "results"), {"q": query, "channel": channel, "limit": limit})


def agents(channel: str | None = None) -> Call[list[r.Agent]]:
    def read(found: list[dict[str, Any]]) -> list[r.Agent]:
        return [r.Agent(a["name"], a.get("last_seen"), bool(a["online"]), bool(a.get("human"))) for a in found]

    return Call("GET", "/api/v1/agents", _as(read, "agents"), {"channel": channel})


def upload(
    channel: str, filename: str, data: bytes | str, *, message: str | None = None, announce: bool = True
) -> Call[r.FileInfo]:
    """Share a file (text or bytes) in a channel; not repeated after an unclear failure (it could be stored twice)."""
    raw = data.encode() if isinstance(data, str) else data
    body = {
        "channel": channel,
        "filename": filename,
        "content": base64.b64encode(raw).decode(),
        "encoding": "base64",
        "message": message,
        "announce": announce,
    }
    return Call(
        "POST", "/api/v1/files", _as(r.FileInfo.from_dict, "file"), json=body, retry_safe=False, sealing="upload"
    )


def download(file_id: str) -> Call[r.Download]:
    def read(response: Response) -> r.Download:
        disposition = response.headers.get("content-disposition", "")
        filename = disposition.partition('filename="')[2].partition('"')[0] or None
        kind = response.headers.get("content-type", "application/octet-stream")
        return r.Download(filename, kind, response.body)

    return Call("GET", f"/api/v1/files/{_seg(file_id)}", read, sealing="download")


# -- the operator's calls (admin token) ----------------------------------------------------------------


def create_key(
    kind: str = "agent",
    *,
    name: str | None = None,
    machine: str | None = None,
    channels: list[str] | None = None,
    expires: str | None = None,
    human: bool = False,
) -> Call[r.Key]:
    """Mint a key (shown once): ``human`` marks the agent as a person, who signs in to the dashboard with it."""
    body = {"kind": kind, "name": name, "machine": machine, "channels": channels, "expires": expires, "human": human}
    return Call("POST", "/admin/keys", _as(r.Key.from_dict), json=body, retry_safe=False)


def list_keys() -> Call[list[r.Key]]:
    return Call("GET", "/admin/keys", _as(lambda ks: [r.Key.from_dict(k) for k in ks], "keys"))


def revoke(target: str) -> Call[int]:
    return Call("POST", "/admin/keys/revoke", _as(int, "revoked"), json={"target": target})


def archive(channel: str) -> Call[r.Channel]:
    return Call("POST", f"/admin/channels/{_seg(channel)}/archive", _as(r.Channel.from_dict, "channel"))


def stats() -> Call[dict[str, Any]]:
    return Call("GET", "/admin/stats", _as(dict))
