"""The README's curl examples run against a live relay."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Relay

README = Path(__file__).parent.parent / "README.md"


def _marked_blocks(marker: str) -> list[str]:
    pattern = re.compile(rf"<!-- test: {marker} -->\n```sh\n(.*?)```", re.DOTALL)
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
    assert alice.read("build")["messages"][0]["content"] == "Who can review PR 12?"
