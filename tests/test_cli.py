"""The command line: the relay's start and clean stop, key management, and the agent commands."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import Databases, Relay, RelayProcess, data, database_for, eventually, free_port, unique

from parley.cli import build_parser, main

README = Path(__file__).parent.parent / "README.md"


def _commands() -> list[str]:
    parser = build_parser()
    names = []
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        for name, sub in action.choices.items():
            nested = [a for a in sub._actions if isinstance(a, type(action))]
            names += [f"{name} {n}" for n in nested[0].choices] if nested else [name]
    return names


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_and_is_documented(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command.split(), "--help"])
    assert exited.value.code == 0
    assert "usage: parley" in capsys.readouterr().out
    assert f"parley {command}" in README.read_text()


def test_keys_can_be_minted_before_the_relay_runs(
    tmp_path: Path,
    fresh_relay: Callable[..., Relay],
    backend: Databases | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = database_for(backend)
    if store:
        monkeypatch.setenv("PARLEY_DATABASE_URL", store["database_url"])
    unused = f"http://127.0.0.1:{free_port()}"
    assert main(["invite", "--name", "alice", "--data", str(tmp_path), "--url", unused, "--json"]) == 0
    import json

    key = json.loads(capsys.readouterr().out)["key"]
    relay = fresh_relay(data_dir=tmp_path, **store)
    with relay.client(key) as http:
        assert data(http.get("/api/v1/me"))["name"] == "alice"


def test_admin_commands_go_through_the_running_relay(
    fresh_relay: Callable[..., Relay], capsys: pytest.CaptureFixture[str]
) -> None:
    relay = fresh_relay()
    where = ["--data", str(relay.settings.data_dir), "--url", relay.url]
    assert main(["invite", "--name", "bob", "--channel", "build", "--expires", "24h", *where]) == 0
    printed = capsys.readouterr().out
    key = next(line.strip() for line in printed.splitlines() if line.strip().startswith("pa_"))
    assert "Limited to: build" in printed and "Expires" in printed and "curl -s" in printed
    with relay.client(key) as http:
        assert data(http.get("/api/v1/me"))["channels"] == ["build"]
        assert main(["keys", *where]) == 0
        listing = capsys.readouterr().out
        assert "bob" in listing and key not in listing
        assert main(["revoke", "bob", *where]) == 0
        assert http.get("/api/v1/me").status_code == 401  # the running relay knew at once
    assert main(["revoke", "bob", *where]) == 1
    assert "no active key" in capsys.readouterr().err
    assert main(["key", "create", "--machine", "laptop", *where]) == 0
    assert "laptop-myproject" in capsys.readouterr().out
    assert main(["token", "--data", str(relay.settings.data_dir)]) == 0
    assert capsys.readouterr().out.strip() == relay.admin_token


def test_agent_commands(
    relay: Relay, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    alice, bob = relay.agent(), relay.agent()
    channel = unique("c")
    monkeypatch.setenv("PARLEY_URL", relay.url)
    monkeypatch.setenv("PARLEY_KEY", alice.key)
    assert main(["post", channel, f"hello @{bob.name}", "--expects-reply", bob.name, "--client-msg-id", "x1"]) == 0
    assert f"{alice.name} [expects reply: {bob.name}]: <<<parley data " in capsys.readouterr().out
    assert main(["read", channel]) == 0
    assert "hello" in capsys.readouterr().out
    assert main(["search", "hello", "--channel", channel]) == 0
    assert "[hello]" in capsys.readouterr().out

    # bob's key comes from a config file this time.
    config = tmp_path / "client.json"
    config.write_text(f'{{"url": "{relay.url}", "key": "{bob.key}"}}')
    monkeypatch.delenv("PARLEY_KEY")
    monkeypatch.setenv("PARLEY_CONFIG", str(config))
    assert main(["board"]) == 0
    out = capsys.readouterr().out
    assert "1 unread mention" in out and "open questions for you" in out
    assert main(["wait", "--since", "0", "--timeout", "1", "--json"]) == 0
    assert '"cursor"' in capsys.readouterr().out

    monkeypatch.setenv("PARLEY_KEY", "pa_wrong")
    assert main(["board"]) == 1
    assert "invalid_key" in capsys.readouterr().err


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_up_prints_how_to_start_and_stops_cleanly(tmp_path: Path, stop: signal.Signals) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PARLEY_DATA": str(tmp_path)}
    relay = subprocess.Popen(
        [sys.executable, "-m", "parley", "up", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        banner = "".join(relay.stdout.readline() for _ in range(5))  # type: ignore[union-attr]
        token = (tmp_path / "admin.token").read_text().strip()
        assert url in banner and token in banner and "parley invite --name" in banner and f"curl -s {url}/" in banner
        eventually(lambda: _healthy(url), what="relay up")
        with httpx.Client(base_url=url, headers={"X-Admin-Token": token}) as admin:
            key = data(admin.post("/admin/keys", json={"kind": "agent", "name": "waiter"}))["key"]
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as agent:
                data(agent.post("/api/v1/messages", json={"channel": "general", "content": "kept"}))
                with concurrent.futures.ThreadPoolExecutor(1) as pool:
                    parked = pool.submit(agent.get, "/api/v1/events", params={"wait": 50})
                    eventually(lambda: data(admin.get("/admin/stats"))["parked_waits"] == 1, what="parked wait")
                    relay.send_signal(stop)
                    answered = parked.result(timeout=20)
        assert answered.status_code == 200 and data(answered)["messages"] == []
        assert relay.wait(timeout=20) == 0
        assert not (tmp_path / "parley.db-wal").exists()  # the database was closed and checkpointed
        said = relay.stdout.read()  # type: ignore[union-attr]
        assert "Application shutdown complete" in said and "Traceback" not in said, said
    finally:
        if relay.poll() is None:
            relay.kill()
        relay.stdout.close()  # type: ignore[union-attr]
        relay.wait()


def test_up_names_its_data_in_every_hint_and_says_a_busy_port_in_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        refused = subprocess.run(
            [sys.executable, "-m", "parley", "up", "--port", str(busy), "--data", str(tmp_path / "a")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert refused.returncode == 1 and refused.stdout == ""
    assert (
        refused.stderr.strip()
        == f"parley: port {busy} on 127.0.0.1 is in use by another program; choose another with --port"
    )
    # Another data directory and port: the hints, run as printed, reach this relay.
    port, data_dir = free_port(), tmp_path / "b"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    up = [sys.executable, "-m", "parley", "up", "--port", str(port), "--data", str(data_dir)]
    relay = subprocess.Popen(up, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        banner = "".join(relay.stdout.readline() for _ in range(5))  # type: ignore[union-attr]
        hint = next(line for line in banner.splitlines() if line.startswith("mint a key:"))
        command = hint.removeprefix("mint a key:").split("  or ")[0].split()
        assert command[:3] == ["parley", "invite", "--name"] and str(data_dir) in command
        eventually(lambda: _healthy(f"http://127.0.0.1:{port}"), what="relay up")
        minted = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, env=env, timeout=60)
        assert minted.returncode == 0 and "note: no relay answered" not in minted.stderr, minted.stderr
        key = minted.stdout.split("\n\n")[1].strip()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as alice:
            assert data(alice.get("/api/v1/me"))["name"] == "alice"
        # The coding-agent hint, run as printed in a project, makes that project's agent on this relay.
        hint = next(line for line in banner.splitlines() if line.startswith("coding agents:"))
        command = hint.removeprefix("coding agents: in a project,").split("  (")[0].split()
        project = tmp_path / "shop"
        project.mkdir()
        home = {**env, "HOME": str(tmp_path / "home")}
        run = [sys.executable, "-m", *command]
        connected = subprocess.run(run, capture_output=True, text=True, env=home, timeout=60, cwd=project)
        assert connected.returncode == 0 and "-shop-claude  on http://127.0.0.1:" in connected.stdout, connected
    finally:
        relay.terminate()
        relay.wait(timeout=30)
        relay.stdout.close()  # type: ignore[union-attr]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health").status_code == 200
    except httpx.HTTPError:
        return False


def test_admin_commands_reach_the_relay_named_by_parley_url_and_its_token(
    relay: Relay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another port, another data directory here: only PARLEY_URL and PARLEY_ADMIN_TOKEN lead to the relay."""
    monkeypatch.setenv("PARLEY_URL", relay.url)
    monkeypatch.setenv("PARLEY_ADMIN_TOKEN", relay.admin_token)
    monkeypatch.setenv("PARLEY_DATA", str(tmp_path / "elsewhere"))
    name = unique("a")
    assert main(["invite", "--name", name, "--json"]) == 0
    import json

    key = json.loads(capsys.readouterr().out)["key"]
    with relay.client(key) as http:
        assert data(http.get("/api/v1/me"))["name"] == name
        assert main(["revoke", name]) == 0
        assert http.get("/api/v1/me").status_code == 401  # refused at once by the running relay
    assert not (tmp_path / "elsewhere").exists()  # nothing was written beside it


def test_admin_commands_find_the_relay_running_on_their_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PARLEY_URL", raising=False)
    monkeypatch.delenv("PARLEY_ADMIN_TOKEN", raising=False)
    data_dir = tmp_path / "data"
    running = RelayProcess.start(data_dir)
    try:
        name = unique("a")
        assert main(["invite", "--name", name, "--data", str(data_dir), "--json"]) == 0  # no URL: the record
        import json

        key = json.loads(capsys.readouterr().out)["key"]
        with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {key}"}) as http:
            assert data(http.get("/api/v1/me"))["name"] == name
    finally:
        running.stop()
    assert not (data_dir / "relay.json").exists()
    # With no relay running, the data directory is changed directly, and the command says so.
    assert main(["revoke", name, "--data", str(data_dir)]) == 0
    assert "no relay answered" in capsys.readouterr().err
    restarted = RelayProcess.start(data_dir)
    try:
        with httpx.Client(base_url=restarted.url, headers={"Authorization": f"Bearer {key}"}) as http:
            assert http.get("/api/v1/me").status_code == 401
    finally:
        restarted.stop()


def test_every_agent_command_speaks_json_and_reads_stdin(
    relay: Relay, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import io
    import json

    alice, bob = relay.agent(), relay.agent()
    channel = unique("c")
    monkeypatch.setenv("PARLEY_URL", relay.url)
    monkeypatch.setenv("PARLEY_KEY", alice.key)

    def run(*argv: str, stdin: str | None = None) -> object:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        assert main([*argv, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    me = run("me")
    assert me["name"] == alice.name  # type: ignore[index]
    posted = run("post", channel, "-", "--expects-reply", "anyone", stdin="from stdin\nsecond line")
    question = posted["message"]  # type: ignore[index]
    assert question["content"] == "from stdin\nsecond line"
    assert channel in [c["name"] for c in run("channels")]  # type: ignore[union-attr, index]
    assert alice.name in [a["name"] for a in run("agents", "--channel", channel)]  # type: ignore[union-attr, index]
    bob.read(channel)
    bob.post(channel, f"@{alice.name} look")
    assert [m["content"] for m in run("mentions", "--mark-read")] == [f"@{alice.name} look"]  # type: ignore[union-attr, index]
    assert run("mentions") == []
    dm = run("dm", bob.name, "private word")
    assert dm["message"]["expects_reply"] == "none"  # type: ignore[index]  # from the CLI, asked only with --expects-reply
    monkeypatch.setenv("PARLEY_KEY", bob.key)
    assert run("claim", str(question["id"]))["claimed_by"] == bob.name  # type: ignore[index]
    assert run("read", f"@{alice.name}")["messages"][-1]["content"] == "private word"  # type: ignore[index]
    source = tmp_path / "report.md"
    source.write_text("# report")
    shared = run("upload", channel, str(source), "--message", "the report")
    out = tmp_path / "copy.md"
    saved = run("download", shared["id"], "--out", str(out))  # type: ignore[index]
    assert out.read_text() == "# report" and saved["size"] == 8  # type: ignore[index]
    out.write_text("mine, not to be lost")
    assert main(["download", shared["id"], "--out", str(out)]) == 1  # type: ignore[index]
    assert "--force" in capsys.readouterr().err and out.read_text() == "mine, not to be lost"
    assert main(["download", shared["id"], "--out", str(out), "--force"]) == 0  # type: ignore[index]
    assert out.read_text() == "# report"
    capsys.readouterr()
    assert main(["read", channel]) == 0
    assert f"file {shared['id']}: <<<parley data" in capsys.readouterr().out  # type: ignore[index]
    # Errors are one line with the relay's code; a missing file is said plainly.
    assert main(["claim", "999999999"]) == 1
    assert "message_not_found" in capsys.readouterr().err
    assert main(["upload", channel, str(tmp_path / "nope")]) == 1
    assert "cannot read" in capsys.readouterr().err
