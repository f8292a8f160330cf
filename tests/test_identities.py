"""Several coding agents on one machine, each itself: ``parley connect`` makes one agent per client and project,
and the servers and hooks each client starts find theirs, launched the way that client launches them (the MCP SDK's
and Codex's whitelisted environment, Gemini CLI's with KEY and TOKEN variables removed, a shell's PARLEY_KEY
belonging to someone else), on a live relay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
import tomllib
from conftest import Relay, unique
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

#: What is tested here is the client side: one store is enough.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

PARLEY = [sys.executable, "-m", "parley"]


def connect(relay: Relay, home: Path, client: str, root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [*PARLEY, "connect", client, "--root", str(root), "--home", str(home), *extra]
    command += ["--url", relay.url, "--admin-token", relay.admin_token]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(home)})


def made(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split("agent  ")[1].split()[0]


def server_of(client: str, root: Path) -> tuple[str, list[str]]:
    """The MCP server as ``connect`` configured it in the project, with the client's own variables filled in."""
    if client == "codex":
        entry = tomllib.loads((root / ".codex" / "config.toml").read_text())["mcp_servers"]["parley"]
    else:
        path = {"claude-code": ".mcp.json", "gemini": ".gemini/settings.json", "cursor": ".cursor/mcp.json"}[client]
        entry = json.loads((root / path).read_text())["mcpServers"]["parley"]
    args = [str(a).replace("${workspaceFolder}", str(root)) for a in entry["args"]]  # what Cursor fills in
    command = sys.executable if entry["command"] == "parley" else entry["command"]
    return command, (["-m", "parley", *args] if entry["command"] == "parley" else args)


def launch_environment(client: str) -> dict[str, str] | None:
    """What each client passes a server or hook: the SDK's whitelist (None), or Gemini CLI's redaction."""
    if client == "gemini":
        return {k: v for k, v in os.environ.items() if not any(w in k.upper() for w in ("KEY", "TOKEN", "SECRET"))}
    return None


async def board_through_mcp(client: str, root: Path, cwd: Path) -> str:
    command, args = server_of(client, root)
    parameters = StdioServerParameters(command=command, args=args, cwd=cwd, env=launch_environment(client))
    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("check_board", {})
        assert isinstance(result, types.CallToolResult) and not result.is_error, result
        return "".join(part.text for part in result.content if isinstance(part, types.TextContent))


def hook(client: str, event: str, payload: dict[str, Any], environment: dict[str, str]) -> str:
    done = subprocess.run(
        [*PARLEY, "hook", event, "--client", client],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_two_clients_in_one_project_and_one_in_another_are_three_agents(
    relay: Relay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    shop, site = home / "code" / "shop", home / "code" / "site"
    for project in (shop, site):
        (project / "src").mkdir(parents=True)
    names = {
        ("claude-code", shop): made(connect(relay, home, "claude-code", shop)),
        ("codex", shop): made(connect(relay, home, "codex", shop)),
        ("gemini", site): made(connect(relay, home, "gemini", site)),
    }
    assert len(set(names.values())) == 3
    assert [n.rsplit("-", 2)[1:] for n in names.values()] == [["shop", "claude"], ["shop", "codex"], ["site", "gemini"]]
    stranger = relay.agent()  # a key in the user's shell, which every client started from it would share
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PARLEY_KEY", stranger.key)
    monkeypatch.setenv("PARLEY_URL", relay.url)

    for (client, root), name in names.items():  # started in a subdirectory: the project is found above it
        board = anyio.run(board_through_mcp, client, root, root / "src")
        assert f'"agent":"{name}"' in board.replace("│ ", ""), (client, board[:300])

    bob = relay.agent()
    for name in names.values():
        bob.post("general", f"@{name} a task for you alone")
    shells = {
        "claude-code": dict(os.environ),  # the whole shell, PARLEY_KEY (someone else's) included
        "codex": {"HOME": str(home), "PATH": os.environ["PATH"]},
        "gemini": launch_environment("gemini") or {},
    }
    for (client, root), name in names.items():
        payload = {"session_id": unique("s"), "cwd": str(root / "src"), "hook_event_name": "SessionStart"}
        told = hook(client, "session-start", payload, shells[client])
        assert f"@{name} a task" in told.replace("│ ", ""), (client, told)
        assert all(f"@{other} a task" not in told for other in names.values() if other != name)


def test_cursor_hooks_find_the_workspace_and_a_user_identity_serves_other_projects(
    relay: Relay, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    app, elsewhere = home / "app", home / "notes"
    app.mkdir(parents=True)
    elsewhere.mkdir()
    cursor = made(connect(relay, home, "cursor", app))
    user_wide = made(connect(relay, home, "claude-code", app, "--scope", "user"))
    assert cursor.endswith("-app-cursor") and user_wide.endswith("-claude") and "-app-" not in user_wide
    environment = {"HOME": str(home), "PATH": os.environ["PATH"]}
    # Cursor names its workspace roots; it may run the hook anywhere.
    turn = {"conversation_id": unique("c"), "workspace_roots": [str(app)]}
    assert json.loads(hook("cursor", "stop", turn, environment)) == {}  # the first turn: nothing since
    bob = relay.agent()
    bob.post("general", f"@{cursor} for cursor")
    bob.post("general", f"@{user_wide} for the user-wide claude")
    followup = json.loads(hook("cursor", "stop", turn, environment))["followup_message"]
    assert "for cursor" in followup and "user-wide" not in followup
    told = hook("claude-code", "session-start", {"session_id": unique("s"), "cwd": str(elsewhere)}, environment)
    assert "for the user-wide claude" in told


def test_connect_again_keeps_the_agent_and_replaces_a_revoked_key(relay: Relay, tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "proj"
    project.mkdir()
    first = made(connect(relay, home, "codex", project))
    (saved,) = (home / ".config" / "parley" / "agents").glob("codex-*.json")
    assert saved.stat().st_mode & 0o777 == 0o600 and str(project) in saved.read_text()
    key = json.loads(saved.read_text())["key"]
    assert made(connect(relay, home, "codex", project)) == first and json.loads(saved.read_text())["key"] == key
    with relay.admin() as operator:
        operator.post("/admin/keys/revoke", json={"target": key}).raise_for_status()
    assert made(connect(relay, home, "codex", project)) == first  # the same agent, a new key
    assert json.loads(saved.read_text())["key"] != key
    # Another project of the same name elsewhere is another agent.
    twin = tmp_path / "other" / "proj"
    twin.mkdir(parents=True)
    assert made(connect(relay, home, "codex", twin)) == f"{first}-2"


def test_connect_says_what_is_missing_and_all_finds_the_clients(relay: Relay, tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "proj"
    project.mkdir()
    environment = {**os.environ, "HOME": str(home), "PATH": str(Path(sys.executable).parent)}
    nowhere = subprocess.run(
        [*PARLEY, "connect", "codex", "--root", str(project), "--home", str(home), "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        env={**environment, "PARLEY_ADMIN_TOKEN": "anything"},
        timeout=60,
    )
    assert nowhere.returncode == 1 and "no relay answers at http://127.0.0.1:9" in nowhere.stderr
    assert (project / ".codex" / "config.toml").exists()  # the files are written; the agent waits for the relay
    untokened = subprocess.run(
        [*PARLEY, "connect", "codex", "--root", str(project), "--home", str(home), "--url", relay.url],
        capture_output=True,
        text=True,
        env={**environment, "PARLEY_DATA": str(tmp_path / "no-relay-here")},
        timeout=60,
    )
    assert untokened.returncode == 1 and "no admin token" in untokened.stderr and "--key" in untokened.stderr
    serverless = subprocess.run(
        [*PARLEY, "mcp", "--client", "gemini"], capture_output=True, text=True, env=environment, cwd=project
    )
    assert serverless.returncode == 1 and "run 'parley connect gemini'" in serverless.stderr
    assert "parley mcp --client gemini" in (home / ".local" / "state" / "parley" / "trouble.log").read_text()

    (home / ".codex").mkdir(parents=True)
    (home / ".gemini").mkdir()
    everything = subprocess.run(
        [*PARLEY, "connect", "--all", "--root", str(project), "--home", str(home)]
        + ["--url", relay.url, "--admin-token", relay.admin_token],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert everything.returncode == 0, everything.stdout + everything.stderr
    assert everything.stdout.count("agent  ") == 2 and "codex:" in everything.stdout and "gemini:" in everything.stdout
    assert "claude-code:" not in everything.stdout
