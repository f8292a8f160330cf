"""``/mcp``: the catalogue's tools over streamable HTTP, for clients that take a URL (Claude Code
``--transport http``, Codex, Gemini CLI ``httpUrl``, Cursor).

Stateless and JSON-answered, so any replica can take any request. The caller's key (bearer, or
``x-agent-api-key`` with ``x-agent-name``) is checked before MCP sees the request; each tool call then runs
as the caller through the relay's own routes, in process (no socket), with the executor every other
surface uses: same validation, limits, errors and boundary.

Nothing here goes around the relay's limits: a stateless endpoint has no stream to offer, so ``GET`` is a
405 (an open SSE stream per request would outlive its key and its budget); a tool call pays what its route
costs, and every other request (``initialize``, ``tools/list``, a ping) pays a read.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parley.coding.mcp_server import build_server
from parley.executors.async_http import AsyncExecutor
from parley.relay import context
from parley.relay.errors import MethodNotAllowed, RelayError
from parley.relay.responses import error

LOOPBACK = "http://relay.internal"


def transport_security(allowed_hosts: str) -> TransportSecuritySettings:
    """``*`` allows any Host (behind a proxy that checks it); else a comma list such as ``relay.example:*``."""
    hosts = [host.strip() for host in allowed_hosts.split(",") if host.strip()]
    if "*" in hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    origins = [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=origins)


class McpEndpoint:
    def __init__(self, relay_app: ASGIApp, allowed_hosts: str) -> None:
        self.loopback = httpx.AsyncClient(transport=httpx.ASGITransport(app=relay_app), base_url=LOOPBACK)
        self.manager = StreamableHTTPSessionManager(
            app=build_server(self._executor),
            json_response=True,
            stateless=True,
            security_settings=transport_security(allowed_hosts),
        )
        self.handler = StreamableHTTPASGIApp(self.manager)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run in the relay's lifespan."""
        async with self.manager.run():
            try:
                yield
            finally:
                await self.loopback.aclose()

    def _executor(self, ctx: Any) -> AsyncExecutor:
        headers = getattr(ctx.request, "headers", None) or {}  # already authenticated by __call__
        key = context.secret(headers.get("authorization"), headers.get("x-agent-api-key"))
        # The relay never holds a key: sealed channels are for client-side MCP (parley mcp), which seals.
        return AsyncExecutor(LOOPBACK, key, headers.get("x-agent-name"), client=self.loopback, sealing=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            if request.method == "GET":
                raise MethodNotAllowed(
                    "this /mcp endpoint is stateless: POST JSON-RPC requests to it (no GET stream is offered)"
                )
            body = await request.body()
            if _is_tool_call(body):
                await context.authenticate(request)  # the tool's own route pays, as its REST call would
            else:
                await context.reader(request)
        except RelayError as exc:
            await error(exc)(scope, receive, send)
            return
        await self.handler(scope, _replay(body, receive), send)


def _is_tool_call(body: bytes) -> bool:
    """One JSON-RPC ``tools/call`` (a batch, or anything else, pays a read at the door)."""
    try:
        message = json.loads(body)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("method") == "tools/call"


def _replay(body: bytes, receive: Receive) -> Receive:
    """The request body, read once at the door, handed on to MCP; then the connection's own messages (its
    disconnect when it comes)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
