"""``parley.integrations.openai_agents`` with the real ``openai-agents`` package: its ``Runner`` drives the parley
``FunctionTool``s against a live relay, the model being the scripted provider answering in the Responses API's wire
format (no provider can be reached from the tests)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, set_tracing_disabled
from conftest import Relay, unique
from openai import AsyncOpenAI
from providers import ScriptedProvider

from parley.integrations.openai_agents import parley_tools
from parley.tool_definitions import load


@pytest.fixture(autouse=True)
def _no_tracing() -> None:
    set_tracing_disabled(True)  # the SDK would otherwise export traces to OpenAI


def _run(provider: ScriptedProvider, tools: list[Any], prompt: str) -> Any:
    client = AsyncOpenAI(base_url=f"{provider.url}/v1", api_key="test", max_retries=0)
    agent = Agent(
        name="reviewer",
        instructions="Use the parley tools.",
        tools=tools,
        model=OpenAIResponsesModel(model="scripted", openai_client=client),
    )
    return anyio.run(Runner.run, agent, prompt)


def test_the_agents_sdk_runs_parley_tools_against_the_relay(relay: Relay) -> None:
    alice = relay.agent()
    channel = unique("agents")
    arguments = {"channel": channel, "content": "posted by the Agents SDK", "reply_to": None, "expects_reply": None}
    provider = ScriptedProvider("parley_send_message", arguments, answer="done", tool_rounds=1)
    tools = parley_tools(relay.url, alice.key)
    assert [t.name for t in tools] == [spec["name"] for spec in load("openai-responses")]
    result = _run(provider, tools, "Post it.")
    assert result.final_output == "done"
    assert [m["content"] for m in alice.read(channel)["messages"]] == ["posted by the Agents SDK"]
    sent = provider.requests[0][1]["tools"]
    send = next(t for t in sent if t["name"] == "parley_send_message")
    assert send["strict"] is True and send["parameters"] == load("openai-responses")[3]["parameters"]
    provider.close()


def test_a_relay_refusal_reaches_the_model_as_the_tools_output(relay: Relay) -> None:
    alice = relay.agent()
    missing_channel = unique("none")
    arguments = {"channel": missing_channel, "since": None, "before": None, "limit": None}
    provider = ScriptedProvider("parley_read_messages", arguments, answer="it does not exist", tool_rounds=1)
    result = _run(provider, parley_tools(relay.url, alice.key, include=["read_messages"]), "Read it.")
    assert result.final_output == "it does not exist"
    sent = provider.requests[-1][1]["input"]
    outputs = [i for i in sent if isinstance(i, dict) and i.get("type") == "function_call_output"]
    assert json.dumps(outputs).count("parley error (channel_not_found)") == 1
    provider.close()
