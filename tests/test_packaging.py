"""The distribution as a user gets it: ``parley-relay``'s wheel and sdist build and pass ``twine check``, the wheel
carries LICENSE and ``py.typed``, and installed alone (no extras) into a fresh virtual environment it gives a
working ``parley.Client`` and CLI on the standard library, and names the extra for the parts that need one. And
the README's new-user path, run as written in a fresh virtual environment: the coding agent it connects is an
agent of its own, launched by the official MCP client as Claude Code launches it, and a mention reaches it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp.types as types
import pytest
import tomllib
from conftest import Relay, data, eventually, free_port, unique
from mcp.client.extension import NotificationBinding
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from pydantic import BaseModel

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    yield out


def test_the_wheel_and_sdist_are_complete_and_pass_twine(dist: Path) -> None:
    (wheel,) = dist.glob("parley_relay-*.whl")
    (sdist,) = dist.glob("parley_relay-*.tar.gz")
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = zipfile.ZipFile(wheel).namelist()
    assert "parley/py.typed" in names and any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Name: parley-relay" in metadata and "Provides-Extra: server" in metadata
    assert "Requires-Dist" not in metadata.split("Provides-Extra")[0]  # the base install depends on nothing


def test_the_bare_wheel_gives_a_standard_library_client_and_names_missing_extras(
    dist: Path, relay: Relay, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    _venv_with_the_wheel(dist, venv, dependencies=False)
    python, parley = venv / "bin" / "python", venv / "bin" / "parley"
    alice = relay.agent()
    channel = unique("wheel")
    script = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        for name in ("httpx", "pydantic", "fastapi", "mcp", "langchain_core"):
            assert importlib.util.find_spec(name) is None, name + " is importable"
        import parley
        with parley.Client({relay.url!r}, {alice.key!r}) as client:
            posted = client.post({channel!r}, "from a bare install")
            page = client.read({channel!r})
        # (_distutils_hack is the venv's setuptools .pth hook, loaded before any code runs)
        foreign = sorted(m for m in sys.modules if m.split(".")[0] not in sys.stdlib_module_names
                         and m not in ("__main__", "_distutils_hack") and not m.startswith("parley"))
        print(json.dumps([posted.replayed, [m.content for m in page.messages], foreign]))
        """
    )
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [False, ["from a bare install"], []]

    environment = {"PARLEY_URL": relay.url, "PARLEY_KEY": alice.key, "PATH": str(venv / "bin")}
    board = subprocess.run([str(parley), "board", "--json"], capture_output=True, text=True, env=environment)
    assert board.returncode == 0 and json.loads(board.stdout)["agent"] == alice.name, board.stderr
    without_extra = [(["up"], "server"), (["mcp"], "mcp"), (["tail", "--me"], "mcp")]
    without_extra += [(["connect", "claude-code", "--print"], "mcp"), (["connect", "codex", "--check"], "mcp")]
    without_extra += [(["agent", vendor, "--channel", "c", "--model", "m"], vendor) for vendor in ("openai", "gemini")]
    for command, extra in without_extra:
        refused = subprocess.run([str(parley), *command], capture_output=True, text=True, env=environment)
        assert refused.returncode == 1 and f"pip install 'parley-relay[{extra}]'" in refused.stderr, command
    toolkit = subprocess.run(
        [str(python), "-c", "import parley.integrations.langchain"], capture_output=True, text=True
    )
    assert "pip install 'parley-relay[langchain]'" in toolkit.stderr


class _Channel(BaseModel):
    content: str
    meta: dict[str, str]


def _new_user_block() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    (block,) = re.findall(r"<!-- test: new-user -->\n```sh\n(.*?)```", readme, re.DOTALL)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def _venv_with_the_wheel(dist: Path, venv: Path, *, dependencies: bool) -> None:
    """A fresh virtual environment with the wheel built from this tree (the index has no release of it), offline;
    with ``dependencies``, those of the environment the tests run in (a ``.pth`` line), standing for the extras
    ``pip install 'parley-relay[server,mcp]'`` would fetch."""
    (wheel,) = dist.glob("parley_relay-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    if dependencies:
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        (Path(site) / "the-tests-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr


def _text(result: Any) -> str:
    assert isinstance(result, types.CallToolResult) and not result.is_error, result
    return "".join(part.text for part in result.content if isinstance(part, types.TextContent))


def test_the_readme_new_user_path_in_a_fresh_venv(dist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install, up, connect = _new_user_block()
    assert (install, up, connect) == (
        "pip install 'parley-relay[server,mcp]'",
        "parley up",
        "parley connect claude-code",
    )
    venv, home = tmp_path / "venv", tmp_path / "home"
    _venv_with_the_wheel(dist, venv, dependencies=True)
    project = home / "shop"
    project.mkdir(parents=True)
    # The user's shell: this venv's commands first, a home of their own (so ~/.parley and ~/.config are theirs).
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    for name in ("PARLEY_URL", "PARLEY_KEY", "PARLEY_NAME", "PARLEY_DATA", "PARLEY_CONFIG", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    port = free_port()  # the README's 'parley up' on a port of the test's own
    relay = subprocess.Popen(
        ["bash", "-c", f"exec {up} --port {port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        eventually(lambda: _answers(url), timeout=30, what="the relay")
        names = {}
        for client in ("claude-code", "codex"):  # the README's 'parley connect', and a second client the same way
            done = subprocess.run(
                ["bash", "-c", connect.replace("claude-code", client)],
                cwd=project,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            names[client] = done.stdout.split("agent  ")[1].split()[0]
        assert names["claude-code"].endswith("-shop-claude") and names["codex"].endswith("-shop-codex")
        for committed in (project / ".mcp.json", project / ".codex" / "config.toml"):
            assert "pa_" not in committed.read_text() and str(home) not in committed.read_text()

        token = (home / ".parley" / "admin.token").read_text().strip()
        minted = httpx.post(
            f"{url}/admin/keys", headers={"X-Admin-Token": token}, json={"kind": "agent", "name": "bob"}
        )
        bob = data(minted)["key"]
        claude = json.loads((project / ".mcp.json").read_text())["mcpServers"]["parley"]
        codex = tomllib.loads((project / ".codex" / "config.toml").read_text())["mcp_servers"]["parley"]
        anyio.run(_as_the_clients_launch_them, project, url, bob, names, claude, codex)
    finally:
        relay.send_signal(signal.SIGINT)
        relay.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health").status_code == 200
    except httpx.HTTPError:
        return False


async def _as_the_clients_launch_them(
    project: Path, url: str, bob: str, names: dict[str, str], claude: dict[str, Any], codex: dict[str, Any]
) -> None:
    """Each configured server started by the official MCP client as its client starts it: in the project, with
    the SDK's whitelisted environment (no PARLEY_* at all)."""
    pushes: list[_Channel] = []
    arrived = anyio.Event()

    async def pushed(params: _Channel) -> None:
        pushes.append(params)
        arrived.set()

    binding = NotificationBinding(method="notifications/claude/channel", params_type=_Channel, handler=pushed)
    for client, server in (("codex", codex), ("claude-code", claude)):
        parameters = StdioServerParameters(command=server["command"], args=server["args"], cwd=project)
        async with (
            stdio_client(parameters) as (read, write),
            ClientSession(read, write, notification_bindings=[binding]) as session,
        ):
            await session.initialize()
            board = _text(await session.call_tool("check_board", {}))
            assert names[client] in board and names[{"codex": "claude-code"}.get(client, "codex")] not in board
            if client == "claude-code":  # in general, and a mention there reaches it
                assert "general" in board
                httpx.post(
                    f"{url}/api/v1/messages",
                    headers={"Authorization": f"Bearer {bob}"},
                    json={"channel": "general", "content": f"@{names[client]} can you review the shop PR?"},
                ).raise_for_status()
                with anyio.fail_after(10):
                    await arrived.wait()
                assert pushes[0].meta["kind"] == "mention" and "review the shop PR" in pushes[0].content
