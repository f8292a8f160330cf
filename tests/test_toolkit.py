"""LangChain tools and toolkit: the standard suites for every tool, real async, model-visible errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Relay
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests
from scenes import examples, make_scene

from parley.integrations.langchain import ParleyTool, ParleyToolkit
from parley.tool_definitions import TOOLS

SCENE: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def live_scene(relay: Relay) -> Iterator[dict[str, Any]]:
    SCENE.update(make_scene(relay))
    yield SCENE
    SCENE.clear()


def _suites(tool_name: str) -> tuple[type, type]:
    """Both standard suites for one tool, pointed at the live relay."""

    class Params:
        @property
        def tool_constructor(self) -> type[BaseTool]:
            return ParleyTool

        @property
        def tool_constructor_params(self) -> dict[str, Any]:
            return {"tool": tool_name, "url": SCENE["relay"].url, "key": SCENE["alice"].key}

        @property
        def tool_invoke_params_example(self) -> dict[str, Any]:
            return examples(SCENE)[tool_name]

        @property
        def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
            env = {"PARLEY_URL": "http://relay.example:8765", "PARLEY_KEY": "pa_secret", "PARLEY_NAME": "laptop-x"}
            expected = {"url": "http://relay.example:8765", "key": "pa_secret", "agent_name": "laptop-x"}
            return env, {"tool": tool_name}, expected

    unit = type(f"TestUnit_{tool_name}", (Params, ToolsUnitTests), {})
    integration = type(f"TestIntegration_{tool_name}", (Params, ToolsIntegrationTests), {})
    return unit, integration


for _tool in TOOLS:
    _unit, _integration = _suites(_tool.name)
    globals()[_unit.__name__] = _unit
    globals()[_integration.__name__] = _integration


def test_names_descriptions_and_schemas_come_from_the_catalogue() -> None:
    tools = ParleyToolkit(url=SCENE["relay"].url, key=SCENE["alice"].key).get_tools()
    assert [t.name for t in tools] == [spec.exported_name for spec in TOOLS]
    for tool, spec in zip(tools, TOOLS, strict=True):
        assert tool.description == spec.description
        schema = tool.get_input_schema().model_json_schema()
        assert set(schema["properties"]) == {p.name for p in spec.params}
        assert set(schema.get("required", [])) == {p.name for p in spec.params if p.required}


def test_toolkit_subset_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_URL", SCENE["relay"].url)
    monkeypatch.setenv("PARLEY_KEY", SCENE["alice"].key)
    tools = ParleyToolkit(include=["check_board", "parley_send_message"]).get_tools()
    assert [t.name for t in tools] == ["parley_check_board", "parley_send_message"]
    with pytest.raises(ValueError, match="unknown parley tools"):
        ParleyToolkit(include=["drop_tables"]).get_tools()
    monkeypatch.delenv("PARLEY_KEY")
    with pytest.raises(ValueError, match="PARLEY_KEY"):
        ParleyToolkit()


def test_relay_refusals_become_error_tool_messages() -> None:
    tool = ParleyTool(tool="claim_question", url=SCENE["relay"].url, key=SCENE["alice"].key)  # type: ignore[call-arg]
    call = {"type": "tool_call", "id": "call-1", "name": tool.name, "args": {"message_id": 999_999_999}}
    message = tool.invoke(call)
    assert isinstance(message, ToolMessage) and message.status == "error"
    assert "message_not_found" in str(message.content)
    bad = tool.invoke({**call, "args": {"message_id": "not a number"}})
    assert isinstance(bad, ToolMessage) and bad.status == "error"


def test_success_is_content_for_the_model_and_an_artifact_for_code() -> None:
    tool = ParleyTool(tool="read_messages", url=SCENE["relay"].url, key=SCENE["alice"].key)  # type: ignore[call-arg]
    call = {"type": "tool_call", "id": "call-2", "name": tool.name, "args": {"channel": SCENE["channel"]}}
    message = tool.invoke(call)
    assert str(message.content).startswith("<<<parley data ")
    assert message.artifact["messages"][0]["id"] == SCENE["question"]


def test_async_calls_are_really_async() -> None:
    """ainvoke makes its own non-blocking request (httpx on the running loop), not _run in a thread."""
    tool = ParleyTool(tool="check_board", url=SCENE["relay"].url, key=SCENE["alice"].key)  # type: ignore[call-arg]

    async def scenario() -> tuple[str, object]:
        results = await asyncio.gather(*(tool.ainvoke({}) for _ in range(5)))
        return str(results[0]), asyncio.get_running_loop()._default_executor  # type: ignore[attr-defined]

    text, thread_pool = asyncio.run(scenario())
    assert text.startswith("<<<parley data ")
    assert thread_pool is None  # nothing ran in the loop's thread pool
    assert tool._executor is None  # the sync executor was never even created
