"""The README's examples are code a test runs: the curl block against a live relay, and each vendor
snippet with the real SDK against a live relay and a scripted provider (``providers.py``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import Relay
from providers import ScriptedProvider

from parley.tool_definitions import load

README = Path(__file__).parent.parent / "README.md"


def _marked_blocks(marker: str, language: str = "sh") -> list[str]:
    pattern = re.compile(rf"<!-- test: {marker} -->\n```{language}\n(.*?)```", re.DOTALL)
    return pattern.findall(README.read_text())


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_examples_work(relay: Relay) -> None:
    blocks = _marked_blocks("curl")
    assert blocks, "the README lost its tested curl block"
    alice = relay.agent()
    env = {**os.environ, "PARLEY_URL": relay.url, "PARLEY_KEY": alice.key}
    for block in blocks:
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block], env=env, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stderr
        answers, text, decoder = [], run.stdout.strip(), json.JSONDecoder()
        while text:  # curl prints the JSON answers back to back
            answer, end = decoder.raw_decode(text)
            answers.append(answer)
            text = text[end:].strip()
        assert len(answers) == block.count("curl ") and all("data" in a for a in answers)
    mine = [m["content"] for m in alice.read("build")["messages"] if m["author"] == alice.name]
    assert mine == ["Who can review PR 12?"]


def _tools_sent(vendor: str, body: dict[str, Any]) -> list[str]:
    if vendor == "gemini":
        return [d["name"] for d in body["tools"][0]["functionDeclarations"]]
    if vendor == "openai":
        return [t["function"]["name"] for t in body["tools"]]
    return [t["name"] for t in body["tools"]]


def _tool_results(vendor: str, namespace: dict[str, Any]) -> list[str]:
    if vendor == "openai":
        return [m["content"] for m in namespace["messages"] if isinstance(m, dict) and m["role"] == "tool"]
    if vendor == "gemini":
        return [part.function_response.response["result"] for part in namespace["contents"][-1].parts]
    return [block["content"] for block in namespace["messages"][-1]["content"]]


@pytest.mark.parametrize("vendor", ["openai", "gemini", "anthropic"])
def test_readme_vendor_snippet_runs(vendor: str, relay: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = _marked_blocks(vendor, "python")
    asker, alice = relay.agent(), relay.agent()
    channel = f"readme-{vendor}"
    asker.post(channel, "Anyone free to review?", expects_reply="anyone")
    alice.read(channel)
    provider = ScriptedProvider("parley_check_board")
    for name, value in {
        "PARLEY_URL": relay.url,
        "PARLEY_KEY": alice.key,
        "OPENAI_API_KEY": "test",
        "OPENAI_BASE_URL": f"{provider.url}/v1",
        "GEMINI_API_KEY": "test",
        "GOOGLE_GEMINI_BASE_URL": provider.url,
        "ANTHROPIC_API_KEY": "test",
        "ANTHROPIC_BASE_URL": provider.url,
    }.items():
        monkeypatch.setenv(name, value)
    namespace: dict[str, Any] = {}
    try:
        exec(compile(block, f"README.md ({vendor})", "exec"), namespace)
    finally:
        namespace["parley"].close()
        if hasattr(namespace["client"], "close"):
            namespace["client"].close()
        provider.close()
    ((_, sent),) = provider.requests
    export = load({"openai": "openai-chat"}.get(vendor, vendor))
    assert _tools_sent(vendor, sent) == [t.get("function", t)["name"] for t in export]
    (result,) = _tool_results(vendor, namespace)
    assert "Anyone free to review?" in result and result.startswith("<<<parley data ")


def test_readme_client_snippet_runs(
    relay: Relay, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (block,) = _marked_blocks("client", "python")
    alice = relay.agent()
    monkeypatch.setenv("PARLEY_URL", relay.url)
    monkeypatch.setenv("PARLEY_KEY", alice.key)
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "Who can review PR 12?" in printed
    assert [m["author"] for m in alice.read("build")["messages"]][-1] == alice.name


def test_readme_sealed_channel_snippet_runs(
    relay: Relay, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (block,) = _marked_blocks("sealed", "python")
    alice = relay.agent()
    monkeypatch.setenv("PARLEY_URL", relay.url)
    monkeypatch.setenv("PARLEY_KEY", alice.key)
    monkeypatch.setenv("PARLEY_KEYRING", str(tmp_path / "keyring.json"))
    exec(compile(block, "README.md", "exec"), {})
    opened, link = capsys.readouterr().out.splitlines()
    assert opened == "The launch moves to Friday."
    assert link.startswith(f"{relay.url}/dashboard#channel={alice.name}~plans&k=")
    (stored,) = alice.read(f"{alice.name}~plans")["messages"]
    assert stored["content"] == "" and stored["sealed"]["ciphertext"]
