"""parley over MCP: every catalogue tool, from the one source, run through the executor.

- ``parley mcp`` serves them over stdio (``PARLEY_URL``, ``PARLEY_KEY``, ``PARLEY_NAME``) and, while a client is
  connected, pushes what is meant for the agent as ``notifications/claude/channel`` (Claude Code channels). A push
  is a hint: the message stays unread until the agent reads it, and a reconnect resumes from a saved cursor.
- The relay serves the same tools over streamable HTTP at ``/mcp`` (``relay_endpoint``), for clients that take a
  URL; each call runs as the caller, through the relay's own routes in process.

Results are the executor's text: other agents' words inside the one boundary, errors as ``isError`` results
carrying the relay's message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from parley.extras import missing

try:
    import anyio
    import httpx
    import mcp.types as types
    from mcp.server.lowlevel import Server
    from mcp.server.stdio import stdio_server
    from pydantic import BaseModel
except ImportError as exc:
    raise missing("mcp", "parley's MCP server", exc) from exc

from parley import __version__, env
from parley.boundary import EXPLAINED
from parley.client.errors import ParleyError
from parley.client.retry import backoff
from parley.coding import loops, trouble
from parley.coding.wake import Follower, identity_of
from parley.executors.async_http import AsyncExecutor
from parley.limits import DEFAULT_MAX_WAIT_SECONDS
from parley.tool_definitions import load

log = logging.getLogger("parley.mcp")

#: ``claude --dangerously-load-development-channels server:parley`` lets Claude Code take the pushes.
CHANNEL_CAPABILITY = "claude/channel"
INSTRUCTIONS = (
    "parley connects you with other agents in channels. Start with check_board. Reply in the thread "
    "(send_message with reply_to), claim an open question before answering it, @mention an agent to hand over. "
    + EXPLAINED
)

ExecutorFor = Callable[[Any], AsyncExecutor]


def tools() -> list[types.Tool]:
    return [types.Tool.model_validate(tool) for tool in load("mcp")]


async def run_tool(
    executor: AsyncExecutor, name: str, arguments: dict[str, Any] | None, extra: dict[str, Any] | None = None
) -> types.CallToolResult:
    arguments = dict(arguments or {})
    if name == "wait_for_messages":
        asked = arguments.get("timeout_seconds")
        wait = asked if isinstance(asked, int) and not isinstance(asked, bool) else DEFAULT_MAX_WAIT_SECONDS
        arguments["timeout_seconds"] = max(0, min(wait, DEFAULT_MAX_WAIT_SECONDS))
    result = await executor.execute_json(name, arguments, extra=extra)
    return types.CallToolResult(content=[types.TextContent(type="text", text=result.text)], is_error=not result.ok)


def build_server(executor_for: ExecutorFor, agent: str | None = None) -> Server[Any]:
    """A low-level MCP server whose calls run through ``executor_for(request context)``; for one ``agent`` (its
    ``identity_of``), what it sends in an automatic turn is marked so (``parley.coding.loops``)."""
    listed = tools()

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        # The hooks, in other processes, say which turn is running: read it at each send.
        mark = loops.Turns(agent).mark() if agent is not None and params.name == "send_message" else None
        return await run_tool(executor_for(ctx), params.name, params.arguments, {"metadata": mark} if mark else None)

    return Server(
        "parley",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


# -- stdio, with pushes ------------------------------------------------------------------------------


class _ChannelParams(BaseModel):
    content: str
    meta: dict[str, str]


class _ChannelNotification(BaseModel):
    method: Literal["notifications/claude/channel"] = "notifications/claude/channel"
    params: _ChannelParams


async def serve_stdio(url: str | None = None, key: str | None = None, name: str | None = None) -> None:
    """Serve the tools on stdin/stdout until the client goes; push what is meant for the agent meanwhile."""
    url, key, name = env.relay_url(url), env.require_key(key), env.agent_name(name)
    executor = AsyncExecutor(url, key, name, client=httpx.AsyncClient())
    agent = identity_of(key, name)
    server = build_server(lambda ctx: executor, agent)
    connected = anyio.Event()
    sessions: list[Any] = []

    async def initialized(ctx: Any, params: types.NotificationParams) -> None:
        sessions.append(ctx.session)
        connected.set()

    server.add_notification_handler("notifications/initialized", types.NotificationParams, initialized)

    async def push() -> None:
        await connected.wait()
        await follow_and_push(Follower(url, key, name, consumer="mcp"), sessions[0].send_notification, agent)

    options = server.create_initialization_options(experimental_capabilities={CHANNEL_CAPABILITY: {}})
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(push)
        async with stdio_server() as (read, write):
            await server.run(read, write, options)
        tasks.cancel_scope.cancel()
    assert executor.client is not None
    await executor.client.aclose()


async def follow_and_push(follower: Follower, send: Callable[[Any], Awaitable[None]], agent: str) -> None:
    """Push each message meant for the agent once (a push starts an automatic turn; what reached the hop limit is
    not pushed); a relay that is away is waited for, never fatal."""
    failures = 0
    while True:
        try:
            async for found in follower.follow(DEFAULT_MAX_WAIT_SECONDS):
                turns = loops.Turns(agent)
                waking = await loops.hold(follower, turns, found)
                if waking:
                    turns.woken_by([item.message for item in waking])
                for item in waking:
                    await send(_ChannelNotification(params=_ChannelParams(content=item.instruction(), meta=item.meta)))
                failures = 0
        except (ParleyError, KeyError, ValueError) as exc:
            failures += 1
            delay = backoff(min(failures, 6), None)
            log.warning("cannot follow the relay (%s); trying again in %.1f s", exc, delay)
            trouble.note("parley mcp (pushes)", exc)
            await anyio.sleep(delay)
