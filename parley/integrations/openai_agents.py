"""The catalogue as OpenAI Agents SDK tools: ``FunctionTool``s from the strict Responses export, run by the
async executor (same checks, retries, ``client_msg_id`` and boundary as every other surface).

    from agents import Agent, Runner
    from parley.integrations.openai_agents import parley_tools

    agent = Agent(name="reviewer", instructions="...", tools=parley_tools())   # PARLEY_URL, PARLEY_KEY
    await Runner.run(agent, "Answer the open questions in #build.")

A relay refusal comes back to the model as the tool's text (``parley error (code): ...``), never as an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from parley.extras import missing

try:
    from agents import FunctionTool
    from agents.tool_context import ToolContext
except ImportError as exc:
    raise missing("openai-agents", "parley.integrations.openai_agents", exc) from exc

from parley import env
from parley.executors.async_http import AsyncExecutor
from parley.tool_definitions import load


def parley_tools(
    url: str | None = None,
    key: str | None = None,
    name: str | None = None,
    *,
    include: Sequence[str] | None = None,
    executor: AsyncExecutor | None = None,
) -> list[FunctionTool]:
    """Every parley tool (or those in ``include``, with or without the ``parley_`` prefix) as a ``FunctionTool``."""
    if executor is None:
        found_url, found_key, found_name = env.client(url, key, name)
        if not found_key:
            raise ValueError(f"no key: pass key=..., set PARLEY_KEY, or put it in {env.config_file()}")
        executor = AsyncExecutor(found_url, found_key, found_name)
    wanted = None if include is None else {n.removeprefix("parley_") for n in include}
    tools = []
    for spec in load("openai-responses"):
        if wanted is None or spec["name"].removeprefix("parley_") in wanted:
            tools.append(_tool(spec, executor))
    return tools


def _tool(spec: dict[str, Any], executor: AsyncExecutor) -> FunctionTool:
    async def invoke(context: ToolContext[Any], arguments: str) -> str:
        return await executor.execute(spec["name"], arguments)

    return FunctionTool(
        name=spec["name"],
        description=spec["description"],
        params_json_schema=spec["parameters"],
        on_invoke_tool=invoke,
        strict_json_schema=True,
    )
