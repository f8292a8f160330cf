"""The distribution as a user gets it: ``parley-relay``'s wheel and sdist build and pass ``twine check``, the wheel
carries LICENSE and ``py.typed``, and installed alone (no extras) into a fresh virtual environment it gives a
working ``parley.Client`` and CLI on the standard library, and names the extra for the parts that need one."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Relay, unique

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
    (wheel,) = dist.glob("parley_relay-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python, parley = venv / "bin" / "python", venv / "bin" / "parley"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
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
