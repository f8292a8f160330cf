"""LangChain tools generated from the one catalogue: ``ParleyTool`` and ``ParleyToolkit``.

Sync calls go through the standard-library ``Executor``; async calls make their own non-blocking HTTP
request through ``AsyncExecutor``. Both run the same call flow, so mapping, retries and text agree.
Errors the model can recover from raise ``ToolException`` and come back as an error ``ToolMessage``.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import BaseTool, BaseToolkit, ToolException
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, create_model, model_validator

from parley import env
from parley.executors import Executor, ToolResult
from parley.executors.async_http import AsyncExecutor
from parley.tool_definitions import TOOLS, Param, Tool, find

_TYPES: dict[str, Any] = {"string": str, "integer": int, "boolean": bool}
_LISTS: dict[str, Any] = {"string": list[str], "integer": list[int]}


def _field_type(param: Param) -> Any:
    if param.enum is not None:
        return Literal[param.enum]
    if param.type == "array":
        return _LISTS[param.items or "string"]
    return _TYPES[param.type]


def args_schema(tool: Tool) -> type[BaseModel]:
    """A pydantic model of the tool's arguments, built from the catalogue (never written by hand)."""
    fields: dict[str, Any] = {}
    for p in tool.params:
        info = Field(
            ... if p.required else None,
            description=p.description,
            ge=p.minimum,
            le=p.maximum,
            max_length=p.max_length or p.max_items,
            min_length=p.min_items,
        )
        fields[p.name] = (_field_type(p) if p.required else _field_type(p) | None, info)
    model_name = "".join(part.title() for part in tool.name.split("_")) + "Input"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


class ParleyTool(BaseTool):
    """One parley tool as a LangChain ``BaseTool``. ``tool`` names it (``"send_message"``)."""

    tool: str
    url: str = Field(default_factory=env.relay_url)
    key: SecretStr = Field(default_factory=lambda: SecretStr(env.require_key()))
    agent_name: str | None = Field(default_factory=env.agent_name)
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool = True
    handle_validation_error: bool = True

    _executor: Executor | None = PrivateAttr(default=None)
    _async_executor: AsyncExecutor | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _from_catalogue(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tool" in data:
            spec = find(data["tool"])
            if spec is None:
                raise ValueError(f"no parley tool named {data['tool']!r}; choose from {[t.name for t in TOOLS]}")
            data = {
                "name": spec.exported_name,
                "description": spec.description,
                "args_schema": args_schema(spec),
                **data,
                "tool": spec.name,
            }
        return data

    def share(self, executor: Executor, async_executor: AsyncExecutor) -> ParleyTool:
        """Use a toolkit's executors (one connection pool for all its tools)."""
        self._executor, self._async_executor = executor, async_executor
        return self

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = _shared_executor(self.url, self.key.get_secret_value(), self.agent_name)
        return self._executor

    @property
    def async_executor(self) -> AsyncExecutor:
        if self._async_executor is None:
            self._async_executor = AsyncExecutor(self.url, self.key.get_secret_value(), self.agent_name)
        return self._async_executor

    def _run(self, run_manager: CallbackManagerForToolRun | None = None, **kwargs: Any) -> tuple[str, Any]:
        return _answer(self.executor.execute_json(self.tool, kwargs))

    async def _arun(self, run_manager: AsyncCallbackManagerForToolRun | None = None, **kwargs: Any) -> tuple[str, Any]:
        return _answer(await self.async_executor.execute_json(self.tool, kwargs))


_EXECUTORS: dict[tuple[str, str, str | None], Executor] = {}


def _shared_executor(url: str, key: str, agent_name: str | None) -> Executor:
    """One kept-alive executor per (relay, key, name), however many tool objects are made."""
    found = _EXECUTORS.get((url, key, agent_name))
    if found is None:
        found = _EXECUTORS[(url, key, agent_name)] = Executor(url, key, agent_name)
    return found


def _answer(result: ToolResult) -> tuple[str, Any]:
    if not result.ok:
        raise ToolException(result.text)
    return result.text, result.data


class ParleyToolkit(BaseToolkit):
    """Every parley tool (or ``include`` a subset), sharing one relay connection per kind of call.

    ``ParleyToolkit()`` reads ``PARLEY_URL``, ``PARLEY_KEY`` and ``PARLEY_NAME`` from the environment.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    url: str = Field(default_factory=env.relay_url)
    key: SecretStr = Field(default_factory=lambda: SecretStr(env.require_key()))
    agent_name: str | None = Field(default_factory=env.agent_name)
    include: list[str] | None = None
    #: A long-lived httpx client for async calls (keeps connections alive); None: one per call.
    http_client: httpx.AsyncClient | None = None

    _executor: Executor | None = PrivateAttr(default=None)
    _async_executor: AsyncExecutor | None = PrivateAttr(default=None)

    def get_tools(self) -> list[BaseTool]:
        names = [t.name for t in TOOLS] if self.include is None else [n.removeprefix("parley_") for n in self.include]
        unknown = [n for n in names if find(n) is None]
        if unknown:
            raise ValueError(f"unknown parley tools {unknown}; choose from {[t.name for t in TOOLS]}")
        if self._executor is None or self._async_executor is None:
            secret = self.key.get_secret_value()
            self._executor = _shared_executor(self.url, secret, self.agent_name)
            self._async_executor = AsyncExecutor(self.url, secret, self.agent_name, client=self.http_client)
        return [
            ParleyTool(tool=name, url=self.url, key=self.key, agent_name=self.agent_name).share(  # type: ignore[call-arg]
                self._executor, self._async_executor
            )
            for name in names
        ]
