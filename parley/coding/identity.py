"""Who each coding agent is: one identity per client and project, kept outside the repository.

Several coding agents on one machine must each be themselves: Claude Code and Codex in one project, Claude Code in
another, are three agents (``laptop-shop-claude``, ``laptop-shop-codex``, ``laptop-site-claude``). ``parley connect``
makes the identity and keeps it in a 0600 file of its own under ``~/.config/parley/agents/`` (never in the project,
so git never sees it), one file per client and project directory. ``parley mcp --client C`` and ``parley hook ...
--client C`` find theirs from the directory they work in (walking up to the nearest project that has one; a
``--scope user`` identity sits at the home directory and serves every project without one of its own).

Files, not the environment: the MCP SDK and Codex pass a server only a whitelist of variables and Gemini CLI
redacts names containing KEY, so a ``PARLEY_KEY`` in the shell reaches some clients and not others; and one
variable shared by every client launched from a shell is exactly how two agents become one. So an identity found
for the client wins over ``PARLEY_*``; a flag wins over both. Standard library only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import socket
from pathlib import Path

from parley import env
from parley.limits import is_valid_name

#: The short form of each client in agent names.
SHORT = {"claude-code": "claude", "codex": "codex", "gemini": "gemini", "cursor": "cursor"}


@dataclasses.dataclass(frozen=True)
class Identity:
    client: str
    root: Path
    url: str
    key: str
    name: str
    path: Path


def directory() -> Path:
    return env.config_dir() / "agents"


def _file(client: str, root: Path) -> Path:
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return directory() / f"{client}-{digest}.json"


def _load(path: Path) -> Identity | None:
    try:
        saved = json.loads(path.read_text())
        return Identity(
            str(saved["client"]), Path(saved["root"]), str(saved["url"]), str(saved["key"]), str(saved["name"]), path
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def at(client: str, root: Path) -> Identity | None:
    """The identity made for exactly this client and directory."""
    found = _load(_file(client, root))
    return found if found is not None and found.client == client and found.root == root else None


def find(client: str, start: Path) -> Identity | None:
    """The identity of ``client`` working in ``start``: the nearest directory at or above it that has one, else
    the user-wide one (``--scope user``)."""
    start = start.resolve()
    for place in (start, *start.parents, Path.home().resolve()):  # a user-wide one serves projects anywhere
        if (found := at(client, place)) is not None:
            return found
    return None


def every() -> list[Identity]:
    found = [_load(path) for path in sorted(directory().glob("*.json"))]
    return [i for i in found if i is not None]


def save(client: str, root: Path, url: str, key: str, name: str) -> Identity:
    path = _file(client, root)
    text = json.dumps({"client": client, "root": str(root), "url": url, "key": key, "name": name})
    env.write_private(path, text)
    return Identity(client, root, url, key, name, path)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def suggest_name(client: str, root: Path, *, user_scope: bool = False) -> str:
    """``<host>-<project>-<client>`` (``<host>-<client>`` for a user-wide identity), unique on this machine: a
    second project of the same name elsewhere gets ``-2``."""
    host = _slug(socket.gethostname().split(".")[0]) or "host"
    parts = [host] if user_scope else [host, _slug(root.name) or "project"]
    base = "-".join([*parts, SHORT[client]])
    if len(base) > 90:
        base = base[:90].rstrip("-")
    taken = {i.name for i in every() if not (i.client == client and i.root == root)}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    assert is_valid_name(name), name
    return name


def project_root(payload_dir: object = None, given: str | None = None) -> Path:
    """Where a server or hook works: ``given`` (a ``--root`` the client filled in), else the directory the hook's
    payload names, else the client's project variable, else the working directory. A variable the client left
    unexpanded (``${...}``) counts as not given."""
    for candidate in (
        given,
        payload_dir,
        os.environ.get("CLAUDE_PROJECT_DIR"),
        os.environ.get("GEMINI_PROJECT_DIR"),
    ):
        if isinstance(candidate, str) and candidate and "${" not in candidate and Path(candidate).is_absolute():
            return Path(candidate)
    return Path.cwd()


def resolve(
    client: str | None,
    root: Path,
    url: str | None = None,
    key: str | None = None,
    name: str | None = None,
) -> tuple[str, str | None, str | None, Identity | None]:
    """URL, key, name and the identity they came from: a flag, else ``client``'s identity for ``root``, else
    ``PARLEY_*`` and the config file."""
    found = find(client, root) if client and not key else None
    if found is not None:
        return (url or found.url).rstrip("/"), found.key, name or found.name, found
    return (*env.client(url, key, name), None)
