"""Turn any model's tool call into a relay request, and the answer into text for the model.

Standard library only, so any Python >= 3.10 agent loop can use it without parley's dependencies::

    executor = Executor("http://127.0.0.1:8765", key="pa_...")
    text = executor.execute("parley_send_message", '{"channel": "build", "content": "done"}')

Nothing a model can get wrong raises: an unknown tool, bad arguments or a relay refusal come back
as a short error the model can act on. Connection failures, timeouts and 5xx are retried with
backoff and jitter (honouring Retry-After); every send carries a client_msg_id, so a retry is
stored once.

Sealed channels are transparent: with the channel's key in the keyring (``parley.sealed``), sends are
sealed and reads opened; without it, the model is told which key is missing and how to get it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from parley.boundary import wrap
from parley.client import calls
from parley.client.calls import DEFAULT_TIMEOUT, Send, Steps, exchange
from parley.client.errors import SealError
from parley.client.sync import Client
from parley.client.transport import KeepAliveTransport, Response, Transport, TransportError
from parley.sealed.keyring import Keyring
from parley.sealed.sealer import Sealer
from parley.tool_definitions.catalog import TOOLS, find
from parley.tool_definitions.spec import ArgumentError, Request, Tool, build_request, check_arguments


@dataclasses.dataclass(frozen=True)
class ToolResult:
    """What a call produced: ``text`` for the model, ``data`` or ``error`` for code."""

    tool: str
    ok: bool
    text: str
    data: Any = None
    error: dict[str, Any] | None = None
    status: int | None = None
    attempts: int = 0


class ToolCaller:
    """What the sync and async executors share: who calls, how patiently, and the sealer (None: no sealing,
    as in the relay's own /mcp endpoint, which holds no key)."""

    def __init__(
        self,
        base_url: str,
        key: str,
        agent_name: str | None,
        *,
        timeout: float,
        retries: int,
        keyring: Keyring | None,
        sealing: bool,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self._identity = (key, agent_name)
        self._headers = calls.agent_headers(key, agent_name)
        self.sealer = Sealer(keyring or Keyring(), me=agent_name) if sealing else None

    def flow(
        self, name: str, arguments: Mapping[str, Any] | str | None, extra: Mapping[str, Any] | None
    ) -> Steps[ToolResult]:
        """One call as I/O steps, for a driver."""
        return tool_call(
            name,
            arguments,
            headers=self._headers,
            timeout=self.timeout,
            retries=self.retries,
            extra=extra,
            sealer=self.sealer,
        )


class Executor(ToolCaller):
    def __init__(
        self,
        base_url: str,
        key: str,
        agent_name: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 4,
        transport: Transport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        keyring: Keyring | None = None,
        sealing: bool = True,
    ) -> None:
        super().__init__(base_url, key, agent_name, timeout=timeout, retries=retries, keyring=keyring, sealing=sealing)
        self.transport = transport or KeepAliveTransport(self.base_url)
        self._sleep = sleep

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def client(self) -> Client:
        """A typed client for the same agent, over this executor's connection and keyring: for code's own
        dealings with the relay (the model's go through ``execute``)."""
        key, name = self._identity
        keyring = self.sealer.keyring if self.sealer is not None else None
        return Client(
            self.base_url,
            key,
            name,
            timeout=self.timeout,
            retries=self.retries,
            transport=self.transport,
            sleep=self._sleep,
            keyring=keyring,
        )

    def execute(self, name: str, arguments: Mapping[str, Any] | str | None = None) -> str:
        """Run one tool call and return the text to hand back to the model. Never raises for the model's mistakes."""
        return self.execute_json(name, arguments).text

    def execute_json(
        self, name: str, arguments: Mapping[str, Any] | str | None = None, *, extra: Mapping[str, Any] | None = None
    ) -> ToolResult:
        """Run one tool call and return the structured result as well as the model's text.

        ``extra`` adds relay fields that code sets but models never see (e.g. a message's ``metadata``).
        """
        return calls.drive(self.flow(name, arguments, extra), self.transport, self._sleep)


def tool_call(
    name: str,
    arguments: Mapping[str, Any] | str | None,
    *,
    headers: dict[str, str],
    timeout: float,
    retries: int,
    extra: Mapping[str, Any] | None = None,
    sealer: Sealer | None = None,
) -> Steps[ToolResult]:
    """One tool call as a generator of I/O steps (sans-IO), so a sync and an async driver share every rule:
    argument checks, request mapping, client_msg_id, retries with backoff, and the rendering for the model."""
    tool = find(name)
    if tool is None:
        known = ", ".join(t.name for t in TOOLS)
        return _failure(name, "unknown_tool", f"there is no tool '{name}'. The parley tools are: {known}")
    try:
        checked = check_arguments(tool, _parse_arguments(arguments))
    except ArgumentError as exc:
        return _failure(tool.name, "invalid_arguments", f"{exc}. Fix the arguments and call {tool.name} again.")
    request = build_request(tool, checked)
    if extra and request.body is not None:
        request.body.update(extra)
    if tool.idempotent and request.body is not None:
        request.body["client_msg_id"] = uuid.uuid4().hex
    wait = float(checked.get(tool.wait_param, 0)) if tool.wait_param else 0.0
    send = _send_step(request, headers, timeout + wait)
    if sealer is None:
        outcome, attempts = yield from exchange(send, retries=retries, retry_safe=tool.retry_safe)
    else:
        try:
            outcome, attempts = yield from sealer.exchange(
                send, request.body, tool.sealing, retries=retries, retry_safe=tool.retry_safe
            )
        except SealError as exc:
            return _failure(tool.name, exc.code, exc.message)
    if isinstance(outcome, TransportError):
        return _failure(tool.name, "relay_unreachable", f"{outcome}; try again later", attempts=attempts)
    return _render(tool, outcome, attempts)


def _send_step(request: Request, headers: dict[str, str], timeout: float) -> Send:
    path = f"{request.path}?{urlencode(request.query)}" if request.query else request.path
    if request.body is None:
        return Send(request.method, path, headers, None, timeout)
    body = json.dumps(request.body).encode()
    return Send(request.method, path, {**headers, "Content-Type": "application/json"}, body, timeout)


def _parse_arguments(arguments: Mapping[str, Any] | str | None) -> Mapping[str, Any]:
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ArgumentError(f"the arguments are not valid JSON ({exc.msg} at character {exc.pos})") from exc
    if not isinstance(arguments, Mapping):
        raise ArgumentError("the arguments must be a JSON object")
    return arguments


def _failure(tool: str, code: str, message: str, *, status: int | None = None, attempts: int = 0) -> ToolResult:
    return ToolResult(
        tool=tool,
        ok=False,
        text=f"parley error ({code}): {message}",
        error={"code": code, "message": message},
        status=status,
        attempts=attempts,
    )


def _render(tool: Tool, response: Response, attempts: int) -> ToolResult:
    """The relay's answer as the model reads it; the envelope and refusals read as the client reads them."""
    if response.status >= 400:
        refused = calls.refusal(response)
        return _failure(tool.name, refused.code, refused.message, status=response.status, attempts=attempts)
    data = _file_data(response) if tool.returns_file else calls.answer(response)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if tool.untrusted:
        text = wrap(text)
    return ToolResult(tool=tool.name, ok=True, text=text, data=data, status=response.status, attempts=attempts)


def _file_data(response: Response) -> dict[str, Any]:
    disposition = response.headers.get("content-disposition", "")
    filename = disposition.partition('filename="')[2].partition('"')[0] or None
    info: dict[str, Any] = {
        "filename": filename,
        "content_type": response.headers.get("content-type"),
        "size": len(response.body),
    }
    try:
        info["content"] = response.body.decode("utf-8")
        info["encoding"] = "utf-8"
    except UnicodeDecodeError:
        info["content"] = base64.b64encode(response.body).decode()
        info["encoding"] = "base64"
    return info
