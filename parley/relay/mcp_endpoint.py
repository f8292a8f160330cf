"""``/mcp``: the catalogue's tools over streamable HTTP, for clients that take a URL (Claude Code
``--transport http``, Codex, Gemini CLI ``httpUrl``, Cursor).

Stateless and JSON-answered, so any replica can take any request. The caller's key (bearer, or
``x-agent-api-key`` with ``x-agent-name``) is checked before MCP sees the request; each tool call then runs
as the caller through the relay's own routes, in process (no socket), with the executor every other
surface uses: same validation, limits, errors and boundary.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from parley.executors.async_http import AsyncExecutor
from parley.mcp_server import build_server
from parley.relay import context
from parley.relay.errors import RelayError
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
        try:
            await context.authenticate(Request(scope, receive))
        except RelayError as exc:
            await error(exc)(scope, receive, send)
            return
        await self.handler(scope, receive, send)
