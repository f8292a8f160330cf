"""``parley mcp`` driven by the real ``mcp`` client (``ClientSession`` over stdio) against a live relay on both stores:
the tools are the catalogue's MCP export, calls round-trip, mistakes are ``isError`` results, and what is meant for
the agent is pushed as ``notifications/claude/channel`` exactly once, across a reconnect too."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
from conftest import Agent, Relay, eventually, unique
from mcp.client.extension import NotificationBinding
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from pydantic import BaseModel

from parley.tool_definitions import load

PUSH_DEADLINE = 1.0  # seconds from a send to its push (the promise; bench/ measures the real figure)


class ChannelParams(BaseModel):
    content: str
    meta: dict[str, str]


class Pushes:
    """The channel notifications one client session received, and a way to wait for the next."""

    def __init__(self) -> None:
        self.received: list[ChannelParams] = []
        self._arrived = anyio.Event()

    async def handle(self, params: ChannelParams) -> None:
        self.received.append(params)
        self._arrived.set()

    async def until(self, count: int, deadline: float = PUSH_DEADLINE) -> list[ChannelParams]:
        with anyio.fail_after(deadline):
            while len(self.received) < count:
                self._arrived = anyio.Event()
                await self._arrived.wait()
        return self.received


@contextlib.asynccontextmanager
async def connected(relay: Relay, agent: Agent, state: Path) -> AsyncIterator[tuple[ClientSession, Pushes]]:
    environment = {**os.environ, "PARLEY_URL": relay.url, "PARLEY_KEY": agent.key, "XDG_STATE_HOME": str(state)}
    server = StdioServerParameters(command=sys.executable, args=["-m", "parley", "mcp"], env=environment)
    pushes = Pushes()
    binding = NotificationBinding(
        method="notifications/claude/channel", params_type=ChannelParams, handler=pushes.handle
    )
    async with (
        stdio_client(server) as (read, write),
        ClientSession(read, write, notification_bindings=[binding]) as session,
    ):
        initialized = await session.initialize()
        assert initialized.capabilities.experimental == {"claude/channel": {}}
        yield session, pushes


def _text(result: Any) -> str:
    assert isinstance(result, types.CallToolResult)
    return "".join(part.text for part in result.content if isinstance(part, types.TextContent))


def test_the_tools_are_the_catalogue_and_calls_round_trip(relay: Relay, tmp_path: Path) -> None:
    alice = relay.agent()
    channel = unique("mcp")

    async def main() -> None:
        async with connected(relay, alice, tmp_path) as (session, _):
            listed = await session.list_tools()
            as_exported = [tool.model_dump(by_alias=True, exclude_none=True) for tool in listed.tools]
            assert as_exported == load("mcp")
            sent = await session.call_tool("send_message", {"channel": channel, "content": "hello over MCP"})
            assert isinstance(sent, types.CallToolResult) and not sent.is_error
            assert json.loads(_text(sent))["message"]["content"] == "hello over MCP"
            read = await session.call_tool("read_messages", {"channel": channel})
            assert "hello over MCP" in _text(read) and _text(read).startswith("<<<parley data")
            wrong = await session.call_tool("read_messages", {"channel": unique("none")})
            assert isinstance(wrong, types.CallToolResult) and wrong.is_error
            assert _text(wrong).startswith("parley error (channel_not_found)")
            unknown = await session.call_tool("delete_everything", {})
            assert isinstance(unknown, types.CallToolResult) and unknown.is_error and "unknown_tool" in _text(unknown)
            # A wait through MCP is held well under clients' 60 s request timeout, whatever is asked.
            waited = await session.call_tool("wait_for_messages", {"timeout_seconds": 0})
            assert not waited.is_error  # type: ignore[union-attr]

    anyio.run(main)


def test_what_is_meant_for_the_agent_is_pushed_once_also_after_a_reconnect(relay: Relay, tmp_path: Path) -> None:
    alice, bob = relay.agent(), relay.agent()
    channel = unique("room")
    bob.post(channel, "a room")
    alice.read(channel)

    def follower_parked(before: int) -> bool:
        return bool(relay.stats()["parked_waits"] > before)

    async def main() -> None:
        parked = relay.stats()["parked_waits"]
        async with connected(relay, alice, tmp_path) as (_, pushes):
            await anyio.to_thread.run_sync(lambda: eventually(lambda: follower_parked(parked), what="the follower"))
            dm = bob.dm(alice.name, "can you look at the build?")
            first = (await pushes.until(1))[0]
            assert first.meta == {
                "kind": "dm",
                "channel": dm["channel"],
                "author": bob.name,
                "message_id": str(dm["id"]),
                "thread": str(dm["id"]),
            }
            assert "can you look at the build?" in first.content and "<<<parley data" in first.content
            bob.post(channel, "nothing for alice here")
            question = bob.post(channel, "who owns CI?", expects_reply=alice.name)
            await pushes.until(2)
            assert [p.meta["kind"] for p in pushes.received] == ["dm", "question"]
            assert pushes.received[1].meta["message_id"] == str(question["id"])
            # The push is a hint: the DM is still unread for alice.
            assert any(c["unread"] for c in alice.get("/api/v1/board")["channels"] if c["channel"].startswith("dm:"))
        # Away: a mention arrives while no client is connected; the reconnect pushes it, and only it.
        mention = bob.post(channel, f"@{alice.name} while you were away")
        async with connected(relay, alice, tmp_path) as (_, pushes):
            again = await pushes.until(1, deadline=10)
            assert [p.meta["message_id"] for p in again] == [str(mention["id"])]
            marker = bob.dm(alice.name, "marker")
            await pushes.until(2)
            assert [p.meta["message_id"] for p in pushes.received] == [
                str(mention["id"]),
                str(marker["id"]),
            ]

    anyio.run(main)


def test_the_relay_serves_the_tools_over_streamable_http(relay: Relay) -> None:
    """``/mcp`` on the relay, with the agent's key: the same tools, the caller's identity, the same errors."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    alice, machine = relay.agent(), unique("box")
    key = relay.mint(kind="machine", machine=machine)
    channel = unique("http")

    async def session_as(headers: dict[str, str]) -> list[Any]:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            streamable_http_client(f"{relay.url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            listed = await session.list_tools()
            assert [t.model_dump(by_alias=True, exclude_none=True) for t in listed.tools] == load("mcp")
            sent = await session.call_tool("send_message", {"channel": channel, "content": f"from {headers}"})
            wrong = await session.call_tool("claim_question", {"message_id": 999_999_999})
            return [sent, wrong]

    async def main() -> None:
        sent, wrong = await session_as({"Authorization": f"Bearer {alice.key}"})
        assert not sent.is_error and json.loads(_text(sent))["message"]["author"] == alice.name
        assert wrong.is_error and _text(wrong).startswith("parley error (message_not_found)")
        # A machine key with AgentChat's headers acts as the agent it names.
        sent, _ = await session_as({"x-agent-api-key": key, "x-agent-name": f"{machine}-proj"})
        assert json.loads(_text(sent))["message"]["author"] == f"{machine}-proj"

    anyio.run(main)
    authors = [m["author"] for m in alice.read(channel)["messages"]]
    assert authors == [alice.name, f"{machine}-proj"]


def test_mcp_over_http_refuses_strangers_and_foreign_hosts(relay: Relay) -> None:
    import httpx

    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    anonymous = httpx.post(f"{relay.url}/mcp", json=initialize, headers=headers)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "missing_key"
    forged = httpx.post(f"{relay.url}/mcp", json=initialize, headers={**headers, "Authorization": "Bearer pa_nope"})
    assert forged.status_code == 401
    alice = relay.agent()
    rebinding = {**headers, "Authorization": f"Bearer {alice.key}", "Host": "evil.example"}
    assert httpx.post(f"{relay.url}/mcp", json=initialize, headers=rebinding).status_code == 421
