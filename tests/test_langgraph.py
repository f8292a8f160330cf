"""A LangGraph react agent on a live relay, the status callback handler, and the two examples.

The chat model is langchain-core's fake model, scripted to call parley's tools (no provider is reachable).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from conftest import Relay, unique
from faults import HOLD, FaultProxy
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableLambda

from parley.executors import Executor
from parley.integrations.langchain import AsyncParleyCallbackHandler, ParleyCallbackHandler, ParleyToolkit

EXAMPLES = Path(__file__).parent.parent / "examples"


class ScriptedModel(GenericFakeChatModel):
    """A fake chat model that plays a fixed list of replies, tool calls included."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self


def _answering_script(channel: str, question_id: int) -> ScriptedModel:
    def call(n: int, name: str, **args: Any) -> AIMessage:
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call-{n}"}])

    return ScriptedModel(
        messages=iter(
            [
                call(1, "parley_check_board"),
                call(2, "parley_claim_question", message_id=question_id),
                call(3, "parley_send_message", channel=channel, content="Use --release.", reply_to=question_id),
                AIMessage(content="I answered the build-flag question in its thread."),
            ]
        )
    )


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _status_posts(relay: Relay, channel: str) -> list[dict[str, Any]]:
    return list(relay.agent().read(channel)["messages"])


def test_react_agent_answers_a_question_and_reports_its_status(relay: Relay) -> None:
    asker, helper = relay.agent(), relay.agent()
    channel, status_channel = unique("project"), unique("status")
    question = asker.post(channel, "Which flag builds the release binary?", expects_reply="anyone")
    helper.read(channel)  # the helper is in the channel
    toolkit = ParleyToolkit(url=relay.url, key=helper.key)
    agent = create_agent(_answering_script(channel, question["id"]), toolkit.get_tools())
    status = ParleyCallbackHandler(status_channel, url=relay.url, key=helper.key, min_interval=0.05)

    result = agent.invoke({"messages": [("user", "Answer the open questions.")]}, {"callbacks": [status]})

    tool_results = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert [m.status for m in tool_results] == ["success"] * 3
    assert "Which flag builds the release binary?" in str(tool_results[0].content)  # it read the board
    thread = [m for m in asker.read(channel)["messages"] if m["parent_message_id"] == question["id"]]
    assert [(m["author"], m["content"]) for m in thread] == [(helper.name, "Use --release.")]
    assert status.flush()
    posts = _status_posts(relay, status_channel)
    assert posts[0]["content"].startswith("▶") and posts[0]["metadata"]["events"] == ["run_start"]
    assert posts[-1]["content"] == "✔ I answered the build-flag question in its thread."
    assert posts[-1]["parent_message_id"] == posts[0]["id"]
    assert posts[-1]["metadata"]["events"] == ["final_answer"] and posts[-1]["metadata"]["elapsed"] >= 0
    assert len(posts) == 2 and status.stats["failed"] == 0
    status.close()


def _tool_heavy_run(relay: Relay, channel: str, handler: Any, calls: int = 6) -> dict[str, Any]:
    agent_key = relay.agent().key
    script = [
        AIMessage(content="", tool_calls=[{"name": "parley_list_agents", "args": {}, "id": f"c{i}"}])
        for i in range(calls)
    ]
    model = ScriptedModel(messages=iter([*script, AIMessage(content="done")]))
    agent = create_agent(model, ParleyToolkit(url=relay.url, key=agent_key, include=["list_agents"]).get_tools())
    result: dict[str, Any] = agent.invoke({"messages": [("user", "go")]}, {"callbacks": [handler]})
    return result


def test_events_are_throttled_and_coalesced(relay: Relay) -> None:
    poster = relay.agent()
    channel = unique("status")
    handler = ParleyCallbackHandler(channel, url=relay.url, key=poster.key, min_interval=0.5, post_tool_calls=True)
    _tool_heavy_run(relay, channel, handler)
    assert handler.flush()
    assert handler.stats["queued"] == 8  # start, six tool calls, the final answer
    posts = _status_posts(relay, channel)
    assert len(posts) < 8  # coalesced: at most one post per run every 0.5 s after the first
    assert sum(p["content"].count("→ parley_list_agents") for p in posts) == 6
    assert posts[-1]["content"].endswith("✔ done")
    assert all(p["parent_message_id"] == posts[0]["id"] for p in posts[1:])
    handler.close()


def test_a_relay_that_is_down_costs_the_run_nothing(relay: Relay) -> None:
    down = Executor("http://127.0.0.1:9", "pa_nobody", retries=0)
    handler = ParleyCallbackHandler("status", executor=down, min_interval=0)
    result = _tool_heavy_run(relay, "status", handler, calls=2)
    assert result["messages"][-1].content == "done"
    assert handler.flush() and handler.stats["failed"] >= 1 and handler.stats["posted"] == 0
    handler.close()


def test_a_slow_relay_never_blocks_the_run(relay: Relay) -> None:
    poster = relay.agent()
    proxy = FaultProxy(relay.url)
    proxy.faults.append(HOLD)
    channel = unique("status")
    handler = ParleyCallbackHandler(
        channel, url=proxy.url, key=poster.key, min_interval=0, max_queue=3, post_tool_calls=True
    )
    result = _tool_heavy_run(relay, channel, handler)
    assert result["messages"][-1].content == "done"  # finished while the relay still holds the first post
    assert proxy.holding.is_set() and handler.stats["posted"] == 0
    assert handler.stats["dropped"] > 0  # the bounded queue shed load instead of growing or blocking
    proxy.release()
    assert handler.flush()
    assert handler.stats["posted"] >= 1
    handler.close()
    proxy.close()


def test_a_refusing_relay_costs_the_run_nothing(relay: Relay) -> None:
    poster = relay.agent()
    with relay.admin() as admin:
        admin.post("/admin/keys/revoke", json={"target": poster.name})
    handler = ParleyCallbackHandler("status", url=relay.url, key=poster.key, min_interval=0)
    result = _tool_heavy_run(relay, "status", handler, calls=1)
    assert result["messages"][-1].content == "done"
    assert handler.flush() and handler.stats["failed"] >= 1
    handler.close()


def test_errors_are_reported(relay: Relay) -> None:
    poster = relay.agent()
    channel = unique("status")
    handler = ParleyCallbackHandler(channel, url=relay.url, key=poster.key, min_interval=0)

    def explode(_: Any) -> None:
        raise RuntimeError("disk full")

    chain = RunnableLambda(lambda x: x, name="prepare") | RunnableLambda(explode, name="write")
    with contextlib.suppress(RuntimeError):
        chain.invoke("input", {"callbacks": [handler]})
    assert handler.flush()
    texts = [p["content"] for p in _status_posts(relay, channel)]
    assert texts[0].startswith("▶") and any("run failed: RuntimeError: disk full" in t for t in texts)
    handler.close()


def test_async_handler_in_an_async_run(relay: Relay) -> None:
    asker, helper = relay.agent(), relay.agent()
    channel, status_channel = unique("project"), unique("status")
    question = asker.post(channel, "Async question?", expects_reply="anyone")
    helper.read(channel)
    agent = create_agent(
        _answering_script(channel, question["id"]), ParleyToolkit(url=relay.url, key=helper.key).get_tools()
    )
    handler = AsyncParleyCallbackHandler(status_channel, url=relay.url, key=helper.key, min_interval=0)

    async def run() -> dict[str, Any]:
        return await agent.ainvoke({"messages": [("user", "go")]}, {"callbacks": [handler]})

    result = asyncio.run(run())
    assert result["messages"][-1].content.startswith("I answered")
    assert handler.flush()
    assert [p["content"][0] for p in _status_posts(relay, status_channel)] == ["▶", "✔"]
    assert any(m["content"] == "Use --release." for m in asker.read(channel)["messages"])
    handler.close()


def test_langgraph_example_runs(relay: Relay) -> None:
    example = _load("langgraph_agent")
    asker, helper = relay.agent(), relay.agent()
    channel = unique("build")
    question = asker.post(channel, "Who knows the release flag?", expects_reply="anyone")
    helper.read(channel)
    status = ParleyCallbackHandler(unique("status"), url=relay.url, key=helper.key, min_interval=0)
    final = example.answer_open_questions(
        _answering_script(channel, question["id"]),
        channel,
        toolkit=ParleyToolkit(url=relay.url, key=helper.key),
        status=status,
    )
    assert final == "I answered the build-flag question in its thread."
    assert [m["content"] for m in asker.read(channel)["messages"]][-1] == "Use --release."
    status.close()


def test_pipeline_status_example_runs(relay: Relay) -> None:
    example = _load("pipeline_status")
    poster = relay.agent()
    channel = unique("pipeline")
    handler = ParleyCallbackHandler(channel, url=relay.url, key=poster.key, min_interval=0)
    assert example.run(["alpha ", "", " beta gamma"], handler) == "2 rows, longest: 'beta gamma'"
    posts = _status_posts(relay, channel)
    assert posts[0]["content"].startswith("▶ nightly-report started")
    assert (
        posts[-1]["content"] == "✔ 2 rows, longest: 'beta gamma'" and posts[-1]["parent_message_id"] == posts[0]["id"]
    )
    handler.close()


def test_final_answer_is_never_a_state_dump() -> None:
    from parley.integrations.langchain.callbacks import final_answer

    assert (
        final_answer({"messages": [AIMessage(content="first"), AIMessage(content=[{"type": "text", "text": "last"}])]})
        == "last"
    )
    assert final_answer({"output": "done"}) == "done"
    assert len(final_answer({"huge": "x" * 10_000})) <= 1_500


def test_readme_langchain_snippet_runs(relay: Relay, monkeypatch: Any) -> None:
    import re

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    (block,) = re.findall(r"<!-- test: langchain -->\n```python\n(.*?)```", readme, re.DOTALL)
    asker, helper = relay.agent(), relay.agent()
    question = asker.post("build", "README question?", expects_reply="anyone")
    helper.read("build")
    monkeypatch.setenv("PARLEY_URL", relay.url)
    monkeypatch.setenv("PARLEY_KEY", helper.key)
    namespace: dict[str, Any] = {"model": _answering_script("build", question["id"])}
    exec(compile(block, "README.md (langchain)", "exec"), namespace)
    namespace["status"].close()
    assert namespace["result"]["messages"][-1].content.startswith("I answered")
    assert any(m["content"] == "Use --release." for m in asker.read("build")["messages"])
    assert [p["content"][0] for p in _status_posts(relay, "status")][-2:] == ["▶", "✔"]


def test_tool_errors_are_reported_even_when_the_tool_handles_them(relay: Relay) -> None:
    poster = relay.agent()
    channel = unique("status")
    handler = ParleyCallbackHandler(channel, url=relay.url, key=poster.key, min_interval=0)
    model = ScriptedModel(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[{"name": "parley_claim_question", "args": {"message_id": 10**9}, "id": "c1"}],
                ),
                AIMessage(content="gave up"),
            ]
        )
    )
    tools = ParleyToolkit(url=relay.url, key=poster.key, include=["claim_question"]).get_tools()
    result = create_agent(model, tools).invoke({"messages": [("user", "go")]}, {"callbacks": [handler]})
    assert result["messages"][-1].content == "gave up"
    assert handler.flush()
    texts = [p["content"] for p in _status_posts(relay, channel)]
    assert any(t.startswith("✖ tool failed: parley error (message_not_found)") for t in texts), texts
    handler.close()
