"""The executor's async twin, on httpx (which comes with openai, google-genai and langchain).

It drives the same sans-IO ``tool_call`` flow as the standard-library ``Executor``, so arguments,
request mapping, retries and the text for the model are identical; only the I/O differs. Not imported
by ``parley.executors`` itself, which stays standard library only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from parley.extras import missing

try:
    import httpx
except ImportError as exc:
    raise missing("async", "parley.executors.async_http", exc) from exc

from parley.client.aio import drive
from parley.client.calls import DEFAULT_TIMEOUT
from parley.executors.executor import ToolCaller, ToolResult
from parley.sealed.keyring import Keyring


class AsyncExecutor(ToolCaller):
    """Pass a long-lived ``client`` to keep connections alive between calls; without one, each call
    opens and closes its own client (safe across event loops, e.g. repeated ``asyncio.run``)."""

    def __init__(
        self,
        base_url: str,
        key: str,
        agent_name: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 4,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        keyring: Keyring | None = None,
        sealing: bool = True,
    ) -> None:
        super().__init__(base_url, key, agent_name, timeout=timeout, retries=retries, keyring=keyring, sealing=sealing)
        self.client = client
        self._sleep = sleep

    async def execute(self, name: str, arguments: Mapping[str, Any] | str | None = None) -> str:
        return (await self.execute_json(name, arguments)).text

    async def execute_json(
        self, name: str, arguments: Mapping[str, Any] | str | None = None, *, extra: Mapping[str, Any] | None = None
    ) -> ToolResult:
        if self.client is not None:
            return await self._drive(self.client, name, arguments, extra)
        async with httpx.AsyncClient() as client:
            return await self._drive(client, name, arguments, extra)

    async def _drive(
        self,
        client: httpx.AsyncClient,
        name: str,
        arguments: Mapping[str, Any] | str | None,
        extra: Mapping[str, Any] | None,
    ) -> ToolResult:
        return await drive(self.flow(name, arguments, extra), client, self.base_url, self._sleep)
