"""Where a client finds its relay and who it is: ``PARLEY_URL``, ``PARLEY_KEY``, ``PARLEY_NAME`` and
``PARLEY_ADMIN_TOKEN``, read here only.

Each function takes what the caller was given explicitly (a flag, an argument), which wins, and what a
config file holds, which the environment overrides. Standard library only: the executor imports it.
"""

from __future__ import annotations

import os

DEFAULT_URL = "http://127.0.0.1:8765"


def relay_url(given: str | None = None, configured: str | None = None) -> str:
    return (given or os.environ.get("PARLEY_URL") or configured or DEFAULT_URL).rstrip("/")


def agent_key(given: str | None = None, configured: str | None = None) -> str | None:
    return given or os.environ.get("PARLEY_KEY") or configured


def require_key(given: str | None = None) -> str:
    key = agent_key(given)
    if not key:
        raise ValueError("no key: pass it explicitly or set PARLEY_KEY")
    return key


def agent_name(given: str | None = None, configured: str | None = None) -> str | None:
    return given or os.environ.get("PARLEY_NAME") or configured


def admin_token(given: str | None = None, configured: str | None = None) -> str | None:
    """The relay's admin token: a flag, ``PARLEY_ADMIN_TOKEN``, or the token file of the data directory."""
    return given or os.environ.get("PARLEY_ADMIN_TOKEN") or configured
