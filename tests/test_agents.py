"""Always-on OpenAI and Gemini agents in a channel, against a live relay.

No provider can be reached: the real ``openai`` and ``google-genai`` clients talk HTTP to a scripted
provider (``providers.py``) that answers in each vendor's documented wire format.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import Agent, Relay, data, eventually, unique
from google import genai
from google.genai import types
from providers import ScriptedProvider

from parley.agents import AgentRunner, Guards, ModelUnavailable, ProviderRetry
from parley.agents.gemini_brain import GeminiBrain, classify_gemini
from parley.agents.openai_brain import OpenAIChatBrain, OpenAIResponsesBrain, classify_openai
from parley.executors import Executor

ROOT = Path(__file__).parent.parent


def _no_sleep(_: float) -> None:
    pass


def openai_brain(provider: ScriptedProvider, responses: bool = False) -> OpenAIChatBrain | OpenAIResponsesBrain:
    client = openai.OpenAI(base_url=f"{provider.url}/v1", api_key="test", max_retries=0)
    kind = OpenAIResponsesBrain if responses else OpenAIChatBrain
    return kind(client, "scripted", retry=ProviderRetry(classify_openai, sleep=_no_sleep))


def gemini_brain(provider: ScriptedProvider) -> GeminiBrain:
    client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=provider.url))
    return GeminiBrain(client, "scripted", retry=ProviderRetry(classify_gemini, sleep=_no_sleep))


class Running:
    """A runner on its own thread, stopped and joined at the end of the test."""

    def __init__(self, relay: Relay, agent: Agent, brain: Any, channel: str, **options: Any) -> None:
        self.executor = Executor(relay.url, agent.key)
        self.runner = AgentRunner(self.executor, brain, [channel], wait_seconds=1, **options)
        self.reason: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        parked = relay.stats()["parked_waits"]
        self.thread.start()
        eventually(lambda: relay.stats()["parked_waits"] > parked or not self.thread.is_alive(), what="runner parked")

    def _run(self) -> None:
        self.reason = self.runner.run()

    def stop(self) -> str | None:
        self.runner.stop()
        self.thread.join(timeout=30)
        self.executor.close()
        return self.reason


@pytest.fixture
def running(relay: Relay) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(agent: Agent, brain: Any, channel: str, **options: Any) -> Running:
        started.append(Running(relay, agent, brain, channel, **options))
        return started[-1]

    yield start
    for r in started:
        r.stop()


def _thread(agent: Agent, channel: str, message_id: int) -> list[dict[str, Any]]:
    return [m for m in agent.read(channel)["messages"] if m["parent_message_id"] == message_id]


def test_one_of_two_vendors_claims_an_open_question_and_answers_it(
    relay: Relay, running: Callable[..., Running]
) -> None:
    asker, gpt, gem = relay.agent(), relay.agent(), relay.agent()
    channel = unique("build")
    openai_provider = ScriptedProvider("parley_read_messages", {"channel": channel}, answer="OpenAI: use --release.")
    gemini_provider = ScriptedProvider("parley_read_messages", {"channel": channel}, answer="Gemini: use --release.")
    runners = [
        running(gpt, openai_brain(openai_provider), channel),
        running(gem, gemini_brain(gemini_provider), channel),
    ]

    question = asker.post(channel, "Which flag builds the release binary?", expects_reply="anyone")
    replies = eventually(lambda: _thread(asker, channel, question["id"]), what="an answer in the thread")
    eventually(lambda: all(r.runner.cursor >= question["id"] for r in runners), what="both agents saw the question")
    for r in runners:
        r.stop()

    replies = _thread(asker, channel, question["id"])
    assert len(replies) == 1
    winner = replies[0]["author"]
    provider, loser_provider = (
        (openai_provider, gemini_provider) if winner == gpt.name else (gemini_provider, openai_provider)
    )
    assert replies[0]["content"] == ("OpenAI" if winner == gpt.name else "Gemini") + ": use --release."
    assert loser_provider.requests == []  # the other stayed quiet
    assert len(provider.requests) == 2  # a tool call, then the answer
    second = json.dumps(provider.requests[1][1])
    assert (
        "Which flag builds the release binary?" in second and "<<<parley data " in second
    )  # the tool result went back
    openai_provider.close()
    gemini_provider.close()


def test_responses_api_agent_answers_a_dm(relay: Relay, running: Callable[..., Running]) -> None:
    asker, agent = relay.agent(), relay.agent()
    channel = unique("build")
    provider = ScriptedProvider("parley_list_agents", answer="Here is the list.")
    running(agent, openai_brain(provider, responses=True), channel)
    dm = asker.dm(agent.name, "Who is online?")
    reply = eventually(lambda: _thread(asker, dm["channel"], dm["id"]), what="a DM reply")
    assert reply[0]["content"] == "Here is the list." and reply[0]["author"] == agent.name
    outputs = [i for i in provider.requests[1][1]["input"] if i.get("type") == "function_call_output"]
    assert outputs and outputs[0]["call_id"] == "call_1"
    provider.close()


def test_it_ignores_its_own_messages_and_messages_for_others(relay: Relay, running: Callable[..., Running]) -> None:
    asker, agent, other = relay.agent(), relay.agent(), relay.agent()
    channel = unique("build")
    provider = ScriptedProvider(answer="should not be asked")
    r = running(agent, openai_brain(provider), channel)
    asker.post(channel, f"@{other.name} this is for you", expects_reply=other.name)
    asker.post(channel, "just an update")
    last = agent.post(channel, f"a note from @{agent.name} to itself")
    eventually(lambda: r.runner.cursor >= last["id"], what="the agent saw them all")
    assert provider.requests == []
    provider.close()


def test_tool_rounds_are_capped(relay: Relay, running: Callable[..., Running]) -> None:
    asker, agent = relay.agent(), relay.agent()
    channel = unique("build")
    provider = ScriptedProvider("parley_check_board", answer="Capped answer.", tool_rounds=None)  # never stops calling
    running(agent, openai_brain(provider), channel, guards=Guards(max_tool_rounds=2))
    question = asker.post(channel, f"@{agent.name} loop forever?")
    eventually(lambda: _thread(asker, channel, question["id"]), what="the capped answer")
    assert len(provider.requests) == 3 and provider.requests[-1][1]["tool_choice"] == "none"
    provider.close()


def test_replies_per_minute_are_limited(relay: Relay, running: Callable[..., Running]) -> None:
    asker, agent = relay.agent(), relay.agent()
    channel = unique("build")
    now = [1000.0]
    provider = ScriptedProvider(answer="ok", tool_rounds=0)
    r = running(agent, openai_brain(provider), channel, guards=Guards(max_replies_per_minute=1), clock=lambda: now[0])
    first = asker.post(channel, "first?", expects_reply=agent.name)
    second = asker.post(channel, "second?", expects_reply=agent.name)
    eventually(lambda: _thread(asker, channel, first["id"]), what="the first reply")
    eventually(lambda: r.runner.cursor >= second["id"] and len(r.runner._pending) == 1, what="the second held back")
    assert _thread(asker, channel, second["id"]) == []
    now[0] += 61  # a minute later
    eventually(lambda: _thread(asker, channel, second["id"]), what="the second reply")
    provider.close()


def test_a_spent_budget_stops_the_agent_and_it_says_so(relay: Relay, running: Callable[..., Running]) -> None:
    asker, agent = relay.agent(), relay.agent()
    channel = unique("build")
    provider = ScriptedProvider(answer="one answer", tool_rounds=0)
    r = running(agent, openai_brain(provider), channel, guards=Guards(daily_token_budget=10))
    asker.post(channel, "first", expects_reply=agent.name)
    eventually(lambda: not r.thread.is_alive(), what="the agent to stop")
    assert r.reason == "budget"
    said = [m["content"] for m in asker.read(channel)["messages"] if m["author"] == agent.name]
    assert said[0] == "one answer" and "daily budget is spent" in said[-1]
    assert r.runner.usage.tokens == 15
    provider.close()


def test_budget_resets_the_next_day(relay: Relay) -> None:
    agent = relay.agent()
    day = [datetime.date(2026, 11, 22)]
    with Executor(relay.url, agent.key) as executor:
        runner = AgentRunner(
            executor,
            openai_brain(ScriptedProvider()),
            ["x-budget"],
            guards=Guards(daily_call_budget=1),
            today=lambda: day[0],
        )
        runner.usage.calls = 1
        assert runner._budget_spent()
        day[0] = datetime.date(2026, 11, 23)
        assert not runner._budget_spent()


def test_an_archived_channel_stops_the_agent(relay: Relay, running: Callable[..., Running]) -> None:
    agent = relay.agent()
    channel = unique("build")
    r = running(agent, openai_brain(ScriptedProvider()), channel)
    with relay.admin() as admin:
        data(admin.post(f"/admin/channels/{channel}/archive"))
    eventually(lambda: not r.thread.is_alive(), what="the agent to notice")
    assert r.reason == "archived"


def test_provider_errors_are_retried(relay: Relay, running: Callable[..., Running]) -> None:
    asker, gpt, gem = relay.agent(), relay.agent(), relay.agent()
    channel = unique("build")
    openai_provider = ScriptedProvider(answer="after a 429 and a 503", tool_rounds=0)
    gemini_provider = ScriptedProvider(answer="after a 429 and a 500", tool_rounds=0)
    running(gpt, openai_brain(openai_provider), channel)
    running(gem, gemini_brain(gemini_provider), channel)
    openai_provider.failures.extend([429, 503])
    gemini_provider.failures.extend([429, 500])
    to_gpt = asker.post(channel, "question one", expects_reply=gpt.name)
    to_gem = asker.post(channel, "question two", expects_reply=gem.name)
    assert eventually(lambda: _thread(asker, channel, to_gpt["id"]))[0]["content"] == "after a 429 and a 503"
    assert eventually(lambda: _thread(asker, channel, to_gem["id"]))[0]["content"] == "after a 429 and a 500"
    assert len(openai_provider.requests) == 3 and len(gemini_provider.requests) == 3
    openai_provider.close()
    gemini_provider.close()


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("parley_delete_everything", {}, "parley error (unknown_tool)"),
        ("parley_send_message", {"channel": 5}, "parley error (invalid_arguments)"),
    ],
)
def test_a_bad_tool_call_becomes_an_error_result(
    relay: Relay, running: Callable[..., Running], tool: str, arguments: dict[str, Any], expected: str
) -> None:
    asker, agent = relay.agent(), relay.agent()
    channel = unique("build")
    provider = ScriptedProvider(tool, arguments, answer="I could not do that.")
    running(agent, gemini_brain(provider), channel)
    question = asker.post(channel, f"@{agent.name} please break something")
    assert eventually(lambda: _thread(asker, channel, question["id"]))[0]["content"] == "I could not do that."
    assert expected in json.dumps(provider.requests[1][1])
    provider.close()


def _example(
    relay: Relay, agent: Agent, provider: ScriptedProvider, channel: str, state: Path, *extra: str, cli: bool = False
) -> Any:
    """examples/openai_agent.py (or ``parley agent openai``) as a user runs it, against the scripted provider."""
    env = {**os.environ, "OPENAI_API_KEY": "test", "PYTHONUNBUFFERED": "1", "XDG_STATE_HOME": str(state)}
    program = ["-m", "parley", "agent", "openai"] if cli else [str(ROOT / "examples" / "openai_agent.py")]
    command = [sys.executable, *program, "--relay", relay.url, "--key", agent.key]
    command += ["--channel", channel, "--model", "scripted", "--base-url", f"{provider.url}/v1", *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_the_example_cleanly_and_it_says_so(
    relay: Relay, tmp_path: Path, stop: signal.Signals
) -> None:
    agent = relay.agent()
    channel = unique("build")
    provider = ScriptedProvider(answer="hi")
    parked = relay.stats()["parked_waits"]
    process = _example(relay, agent, provider, channel, tmp_path, "--wait", "20")
    try:
        eventually(lambda: relay.stats()["parked_waits"] > parked, what="the agent to park")
        process.send_signal(stop)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out
    assert "stopped: interrupted" in out
    assert agent.read(channel)["messages"][-1]["content"].endswith("was stopped by its operator.")
    provider.close()


def test_the_example_refuses_to_start_when_its_model_does_not_answer(relay: Relay, tmp_path: Path) -> None:
    agent, watcher = relay.agent(), relay.agent()
    channel = unique("build")
    provider = ScriptedProvider(answer="hi")
    provider.failures.append(401)  # a bad API key: not worth retrying
    process = _example(relay, agent, provider, channel, tmp_path, cli=True)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 1, out
    assert "not starting: openai model 'scripted' does not answer: Error code: 401" in out
    assert channel not in {c["name"] for c in watcher.get("/api/v1/channels")["channels"]}  # it never joined
    provider.close()


def test_a_wrong_or_unreachable_model_stops_the_runner_before_the_relay(relay: Relay) -> None:
    agent = relay.agent()
    provider = ScriptedProvider(answer="hi")
    wrong = openai_brain(provider)
    wrong.model = "gpt-nope"
    gemini_wrong = gemini_brain(provider)
    gemini_wrong.model = "gemini-nope"
    with Executor(relay.url, agent.key) as executor:
        with pytest.raises(ModelUnavailable, match="no model 'gpt-nope' here; it serves scripted"):
            AgentRunner(executor, wrong, [unique("c")]).run()
        with pytest.raises(ModelUnavailable, match="gemini model 'gemini-nope' does not answer: 404"):
            AgentRunner(executor, gemini_wrong, [unique("c")]).run()
        provider.close()
        with pytest.raises(ModelUnavailable, match="Connection error"):
            AgentRunner(executor, openai_brain(provider), [unique("c")]).run()


def test_the_daily_budget_survives_a_restart(relay: Relay, tmp_path: Path, running: Callable[..., Running]) -> None:
    asker, agent = relay.agent(), relay.agent()
    channel = unique("build")
    provider = ScriptedProvider(answer="one answer", tool_rounds=0)
    first = running(agent, openai_brain(provider), channel, state_dir=tmp_path)
    asker.post(channel, "first", expects_reply=agent.name)
    eventually(lambda: _said(asker, channel, agent), what="the answer")
    first.stop()
    state = tmp_path / f"{agent.name}.json"
    assert json.loads(state.read_text())["tokens"] == first.runner.usage.tokens == 15
    assert state.stat().st_mode & 0o777 == 0o600
    # Restarted with a budget that today's usage already spends: it stops at once, without a model call.
    calls, lookups = len(provider.requests), len(provider.lookups)
    again = running(agent, openai_brain(provider), channel, state_dir=tmp_path, guards=Guards(daily_token_budget=15))
    eventually(lambda: not again.thread.is_alive(), what="the agent to stop")
    assert again.reason == "budget"
    assert len(provider.requests) == calls  # no model call: only the start-up check
    assert provider.lookups[lookups:] == ["/v1/models/scripted"]
    provider.close()


def _said(asker: Agent, channel: str, agent: Agent) -> list[str]:
    return [m["content"] for m in asker.read(channel)["messages"] if m["author"] == agent.name]


def test_a_failing_model_gives_the_question_back_and_says_why(relay: Relay, running: Callable[..., Running]) -> None:
    """The scripted provider answers 500 to every call: the agent claims, fails, releases and explains."""
    asker, gpt, other = relay.agent(), relay.agent(), relay.agent()
    channel = unique("build")
    broken = ScriptedProvider(answer="never", tool_rounds=0)
    running(gpt, openai_brain(broken), channel)  # it started: its model answered the start-up check
    broken.failures.extend([500] * 50)
    question = asker.post(channel, "who can take this?", expects_reply="anyone")

    def explained() -> list[dict[str, Any]]:
        return [m for m in asker.read(channel)["messages"] if m["author"] == gpt.name]

    said = eventually(explained, what="the agent to explain")[0]
    # In the question's thread, marked as handing it back: the question is still open, for anyone.
    assert said["parent_message_id"] == question["id"] and said["metadata"] == {"kind": "hand_back"}
    assert "cannot answer this: its model failed (InternalServerError)" in said["content"]
    other.read(channel)
    assert question["id"] in [q["id"] for q in other.get("/api/v1/board")["open_questions"]]
    assert data(other.http.post(f"/api/v1/messages/{question['id']}/claim"))["claimed_by"] == other.name
    broken.close()
