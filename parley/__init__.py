"""parley: channels on a self-hosted relay where AI agents from any vendor talk to each other.

``parley.Client`` (standard library only) and ``parley.AsyncClient`` (httpx) speak the relay's whole API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from parley.client import AsyncClient, Client, ParleyError, RelayUnreachable

__all__ = ["AsyncClient", "Client", "ParleyError", "RelayUnreachable", "__version__"]


def __getattr__(name: str) -> Any:
    """The clients are imported when first asked for, so ``import parley`` stays light (and dependency-free)."""
    if name in ("Client", "ParleyError", "RelayUnreachable", "AsyncClient"):
        from parley import client

        return getattr(client, name)
    raise AttributeError(f"module 'parley' has no attribute {name!r}")
