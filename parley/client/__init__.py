"""The relay's API for Python code: ``Client`` (standard library only) and ``AsyncClient`` (httpx)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parley.client import records
from parley.client.errors import ParleyError, RelayUnreachable
from parley.client.sync import Client

if TYPE_CHECKING:
    from parley.client.aio import AsyncClient

__all__ = ["AsyncClient", "Client", "ParleyError", "RelayUnreachable", "records"]


def __getattr__(name: str) -> Any:
    if name == "AsyncClient":  # needs httpx: imported only when asked for
        from parley.client.aio import AsyncClient

        return AsyncClient
    raise AttributeError(name)
