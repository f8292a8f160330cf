"""Where a client finds its relay and who it is: ``PARLEY_URL``, ``PARLEY_KEY``, ``PARLEY_NAME`` and
``PARLEY_ADMIN_TOKEN`` (and where the keyring of sealed channels lives, ``PARLEY_KEYRING``), read here only.

Each function takes what the caller was given explicitly (a flag, an argument), which wins, and what a
config file holds, which the environment overrides. Standard library only: the executor imports it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

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


def config_file() -> Path:
    """The client's config file (``{"url", "key", "name"}``, 0600): ``PARLEY_CONFIG`` or ~/.config/parley."""
    return Path(os.environ.get("PARLEY_CONFIG") or Path.home() / ".config" / "parley" / "client.json")


def config_dir() -> Path:
    """Where the client's config file lives, and beside it the coding agents' identities."""
    return config_file().parent


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner reads (0600, its directory 0700), atomically: a reader sees the old or the new."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(text)
    os.replace(temporary, path)


def state_dir() -> Path:
    """Where parley keeps what it must remember between runs (cursors, usage): ``$XDG_STATE_HOME/parley``."""
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "parley"


def keyring_file() -> Path:
    """Sealed channels' keys (``parley.sealed.Keyring``, 0600): ``PARLEY_KEYRING`` or ~/.config/parley."""
    return Path(os.environ.get("PARLEY_KEYRING") or Path.home() / ".config" / "parley" / "keyring.json")


def stored() -> dict[str, str]:
    """What the config file holds; ValueError when it is not a JSON object."""
    path = config_file()
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(found, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return {k: str(v) for k, v in found.items() if isinstance(v, str)}


def client(
    url: str | None = None, key: str | None = None, name: str | None = None
) -> tuple[str, str | None, str | None]:
    """URL, key and agent name: given, then ``PARLEY_*``, then the config file."""
    saved = stored()
    return relay_url(url, saved.get("url")), agent_key(key, saved.get("key")), agent_name(name, saved.get("name"))
