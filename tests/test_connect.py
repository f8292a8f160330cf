"""``parley connect`` on configuration files people already have: what was there stays, parley's entries are added
once (a second run changes nothing), ``--print`` writes nothing, and ``--check`` says what is there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Relay

#: What is tested here is the client side: one store is enough.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

OTHER_SERVER = {"command": "npx", "args": ["-y", "@acme/other-mcp"]}
OTHER_HOOK = {"type": "command", "command": "./lint.sh", "timeout": 5}

#: What each client's files hold before parley arrives: other servers, other hooks, other instructions.
PREFILLED: dict[str, dict[str, Any]] = {
    "claude-code": {
        ".mcp.json": {"mcpServers": {"other": OTHER_SERVER}},
        ".claude/settings.json": {
            "permissions": {"allow": ["Bash(ls:*)"]},
            "hooks": {"Stop": [{"matcher": "", "hooks": [OTHER_HOOK]}]},
        },
        "CLAUDE.md": "# House rules\n\nRun the tests before you commit.\n",
    },
    "codex": {
        ".codex/config.toml": (
            'model = "gpt-5-codex"\n\n[mcp_servers.other]\ncommand = "npx"\nargs = ["-y", "@acme/other"]\n'
        ),
        ".codex/hooks.json": {"hooks": {"Stop": [{"hooks": [OTHER_HOOK]}]}},
        "AGENTS.md": "# Agents\n\nBe brief.\n",
    },
    "gemini": {
        ".gemini/settings.json": {
            "theme": "GitHub",
            "mcpServers": {"other": OTHER_SERVER},
            "hooks": {"AfterAgent": [{"matcher": "*", "hooks": [{**OTHER_HOOK, "name": "lint"}]}]},
        },
        "GEMINI.md": "Use British spelling.\n",
    },
    "cursor": {
        ".cursor/mcp.json": {"mcpServers": {"other": OTHER_SERVER}},
        ".cursor/hooks.json": {"version": 1, "hooks": {"stop": [{"command": "./notify.sh"}]}},
        "AGENTS.md": "# Agents\n\nBe brief.\n",
    },
}


def _write(root: Path, files: dict[str, Any]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _connect(client: str, root: Path, *extra: str, relay: Relay | None = None) -> str:
    """``parley connect`` with the home directory (where identities are kept) inside ``root``; with ``relay``, the
    agent is made on it with its admin token."""
    command = [sys.executable, "-m", "parley", "connect", client, "--root", str(root), "--home", str(root / "home")]
    if relay is not None:
        command += ["--url", relay.url, "--admin-token", relay.admin_token]
    environment = {**os.environ, "HOME": str(root / "home")}
    done = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=60, env=environment)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("client", sorted(PREFILLED))
def test_connect_keeps_what_was_there_and_adds_parley_once(relay: Relay, tmp_path: Path, client: str) -> None:
    _write(tmp_path, PREFILLED[client])
    before = _snapshot(tmp_path)
    _connect(client, tmp_path, "--print")
    assert _snapshot(tmp_path) == before  # --print writes nothing

    _connect(client, tmp_path, relay=relay)
    after = _snapshot(tmp_path)
    for name, content in PREFILLED[client].items():
        if isinstance(content, str):
            assert content.strip() in after[name], name  # the old text is still there, verbatim
        else:
            _contains(json.loads(after[name]), content)
    text = "\n".join(after.values())
    assert "-m parley mcp" in text or '"mcp"' in text
    assert "parley hook" in text and "claim_question" in text

    _connect(client, tmp_path, relay=relay)
    assert _snapshot(tmp_path) == after  # a second run changes nothing (the agent it made is kept too)


def _contains(found: Any, expected: Any) -> None:
    """Everything in ``expected`` is still in ``found`` (lists: each expected item still present)."""
    if isinstance(expected, dict):
        for key, value in expected.items():
            assert key in found, key
            _contains(found[key], value)
    elif isinstance(expected, list):
        for item in expected:
            assert any(_fits(candidate, item) for candidate in found), item
    else:
        assert found == expected


def _fits(found: Any, expected: Any) -> bool:
    try:
        _contains(found, expected)
    except AssertionError:
        return False
    return True


def test_claude_code_gets_the_mcp_server_the_wake_hooks_and_the_guide(relay: Relay, tmp_path: Path) -> None:
    _connect("claude-code", tmp_path, relay=relay)
    server = json.loads((tmp_path / ".mcp.json").read_text())["mcpServers"]["parley"]
    assert (server["command"], server["args"], "env" in server) == ("parley", ["mcp", "--client", "claude-code"], False)
    # Files meant for git: no secret, and no path of this machine (parley is found on the client's PATH).
    for committed in (tmp_path / ".mcp.json", tmp_path / ".claude" / "settings.json"):
        assert sys.executable not in committed.read_text() and str(Path.home()) not in committed.read_text()
    hooks = json.loads((tmp_path / ".claude" / "settings.json").read_text())["hooks"]
    stop = hooks["Stop"][0]["hooks"][0]
    assert stop["async"] is True and stop["asyncRewake"] is True and stop["command"].endswith("hook stop")
    assert set(hooks) == {"SessionStart", "UserPromptSubmit", "Stop"}
    assert (tmp_path / "CLAUDE.md").read_text().count("<!-- parley:start -->") == 1


def test_check_says_what_is_configured_and_which_agent_the_client_acts_as(relay: Relay, tmp_path: Path) -> None:
    alice = relay.agent()
    # A key in the shell is not an identity of the client's own: --check says so, and what is missing.
    environment = {**os.environ, "PARLEY_URL": relay.url, "PARLEY_KEY": alice.key, "HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "parley", "connect", "cursor", "--root", str(tmp_path), "--check"]
    missing = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=60)
    assert missing.returncode == 1 and "missing" in missing.stdout and "not fully connected" in missing.stderr
    assert "an identity of its own for cursor" in missing.stdout
    made = _connect("cursor", tmp_path, relay=relay)
    name = made.split("agent  ")[1].split()[0]
    ready = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=60)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert "missing" not in ready.stdout and f"cursor acts as {name} on {relay.url}" in ready.stdout
    assert name != alice.name and name.endswith("-cursor")
