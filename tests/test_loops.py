"""Two Claude Code agents that answer each other, driven by the real hooks and MCP servers (``parley hook stop``
as the ``asyncRewake`` sleeper, ``parley mcp`` through the official MCP client): what each writes in a turn a hook
started is marked automatic with its hop; at the hop limit the agent it was for is not woken, says so once in the
thread, and a person's next message wakes it again."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from conftest import Agent, Relay, eventually, unique
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

LIMIT = 3


class CodingAgent:
    """One Claude Code session: its environment (key, state directory), its hooks, its MCP server."""

    def __init__(self, relay: Relay, agent: Agent, state: Path) -> None:
        self.agent, self.session, self.state = agent, unique("session"), state
        state.mkdir(parents=True, exist_ok=True)
        self.environment = {
            **os.environ,
            "PARLEY_URL": relay.url,
            "PARLEY_KEY": agent.key,
            "XDG_STATE_HOME": str(state),
            "PARLEY_HOP_LIMIT": str(LIMIT),
        }

    def hook(self, event: str) -> subprocess.Popen[str]:
        """The hook as Claude Code runs it: its payload on stdin."""
        payload = self.state / f"{event}.json"
        payload.write_text(json.dumps({"session_id": self.session, "cwd": os.getcwd(), "stop_hook_active": False}))
        with payload.open() as stdin:
            return subprocess.Popen(
                [sys.executable, "-m", "parley", "hook", event, "--client", "claude-code"],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=self.environment,
            )

    def woken(self) -> str:
        """The stop hook sleeps until something wakes the session: exit 2, the instruction on stderr."""
        sleeper = self.hook("stop")
        _, told = sleeper.communicate(timeout=60)
        assert sleeper.returncode == 2, told
        return told

    @contextlib.asynccontextmanager
    async def tools(self) -> AsyncIterator[ClientSession]:
        server = StdioServerParameters(command=sys.executable, args=["-m", "parley", "mcp"], env=self.environment)
        async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


@contextlib.contextmanager
def sleeping(agent: CodingAgent) -> Iterator[subprocess.Popen[str]]:
    sleeper = agent.hook("stop")
    try:
        yield sleeper
    finally:
        sleeper.kill()
        sleeper.communicate(timeout=30)


async def reply(agent: CodingAgent, channel: str, thread: int, content: str) -> None:
    async with agent.tools() as tools:
        sent = await tools.call_tool("send_message", {"channel": channel, "content": content, "reply_to": thread})
        assert isinstance(sent, types.CallToolResult) and not sent.is_error, sent


def test_two_agents_answering_each_other_stop_at_the_hop_limit_and_say_so_once(relay: Relay, tmp_path: Path) -> None:
    alice, bob, person = relay.agent("loop-alice-" + unique("a")[-6:]), relay.agent(), relay.agent()
    a, b = CodingAgent(relay, alice, tmp_path / "a"), CodingAgent(relay, bob, tmp_path / "b")
    channel = unique("loop")
    for agent in (alice, bob):
        agent.post(channel, "here")
    for coding in (a, b):  # each session starts with a person's prompt (its cursor: now)
        prompt = coding.hook("prompt")
        prompt.communicate(timeout=60)
        assert prompt.returncode == 0

    question = person.post(channel, f"@{alice.name} is the build green?")
    thread = question["id"]
    # A person's question wakes alice; alice and bob then answer each other, each woken by the other's mention.
    speaker, listener = a, b
    for hop in range(1, LIMIT + 1):
        told = speaker.woken()
        assert "is the build green?" in told or "over to you" in told
        anyio.run(reply, speaker, channel, thread, f"@{listener.agent.name} over to you (hop {hop})")
        speaker, listener = listener, speaker

    # The last reply reached the limit: bob is not woken; he says so once in the thread, even for a second one.
    with sleeping(speaker) as bob_sleeper:
        anyio.run(reply, listener, channel, thread, f"@{speaker.agent.name} and one more")

        def notes() -> list[dict[str, Any]]:
            found = person.read(channel)["messages"]
            return [m for m in found if (m.get("metadata") or {}).get("turn") == "stopped"]

        (note,) = eventually(notes, what="bob's note that he stopped")
        assert note["author"] == bob.name and note["parent_message_id"] == thread
        assert f"hop limit {LIMIT}" in note["content"] and "A person's message" in note["content"]
        assert bob_sleeper.poll() is None  # still asleep: nothing woke the session

    replies = [m for m in person.read(channel)["messages"] if m.get("parent_message_id") == thread]
    marks = [(m["author"], m["metadata"].get("turn"), m["metadata"].get("hop")) for m in replies]
    assert marks[:3] == [(alice.name, "automatic", 1), (bob.name, "automatic", 2), (alice.name, "automatic", 3)]
    assert sorted(marks[3:]) == sorted([(alice.name, "automatic", 3), (bob.name, "stopped", LIMIT)])

    shown = subprocess.run(
        [sys.executable, "-m", "parley", "read", channel],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PARLEY_URL": relay.url, "PARLEY_KEY": person.key},
    )
    assert "[automatic, hop 1]" in shown.stdout and "[stopped: hop limit]" in shown.stdout, shown.stdout + shown.stderr

    # A person's message in the thread wakes bob again (what reached the limit, and notes, do not; no second note).
    person.post(channel, f"@{bob.name} please check the deploy too", parent_message_id=thread)
    told = b.woken()
    assert "please check the deploy too" in told and "and one more" not in told and "over to you" not in told
    assert len(notes()) == 1
