"""A smoke run of the benchmark harness with tiny sizes: it starts, measures everything, misses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent


def test_bench_quick_run(tmp_path: Path) -> None:
    out, table = tmp_path / "results.json", tmp_path / "table.md"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--replicas", "1", "2"]
        + ["--json", str(out), "--markdown", str(table)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["sends"]["relay"] > 0 and results["sends"]["baseline"] > 0
    for key in ("wake_1", "wake_100"):
        assert results[key]["relay"]["missed"] == 0 and results[key]["baseline"]["missed"] == 0
    assert results["capacity"]["relay"]["woken"] == results["capacity"]["relay"]["waits"]
    assert results["search"]["relay"]["p95_ms"] > 0
    assert results["executor"]["executor_us"] > 0
    pg = results["postgres"]
    assert pg["sends_1"] > 0 and pg["sends_2"] > 0 and pg["wake_100_cross_replica"]["missed"] == 0
    assert "| sends/s, 16 senders |" in table.read_text()
    assert "| PostgreSQL sends/s, 16 senders over 2 replicas |" in table.read_text()
    assert results["meta"]["durability"].startswith("SQLite synchronous=FULL")


def _bench(script: str, *args: str) -> str:
    """Run a bench script from bench/ (as its docstring says to); what it printed."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT / "bench",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def _quick(script: str, out: Path) -> tuple[dict[str, Any], str]:
    """A bench script's smoke run: its results and its table."""
    table = _bench(script, "--quick", "--json", str(out))
    return json.loads(out.read_text()), table


def test_wake_bench_quick_run(tmp_path: Path) -> None:
    results, table = _quick("wake.py", tmp_path / "wake.json")
    for key in ("mcp_push", "hook_wake"):
        assert results[key]["rounds"] == 3 and 0 < results[key]["p50_ms"] <= results[key]["p99_ms"]
    assert "| MCP push" in table


def test_scale_out_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    command = [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--postgres", "--replicas", "1", "2"]
    run = subprocess.run(
        [*command, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["sqlite"] > 0 and results["postgres_1"] > 0 and results["postgres_2"] > 0
    assert "| PostgreSQL, 2 replica(s) |" in run.stdout


def test_sealed_bench_quick_run(tmp_path: Path) -> None:
    results, table = _quick("sealed.py", tmp_path / "sealed.json")
    for what in ("sends", "reads"):
        assert results[f"{what}_plain"] > 0 and results[f"{what}_sealed"] > 0 and results[f"{what}_ratio"] > 0
    assert results["seal_us"] > 0 and results["open_us"] > 0
    assert "| sends/s, 2 client threads" in table


def test_cpu_per_send_runs() -> None:
    lines = _bench("cpu_per_send.py", "1", "--seconds", "1").splitlines()
    assert lines[0].startswith("1 replica(s): ") and int(lines[0].split()[2].replace(",", "")) > 0
    assert any(line.strip().startswith("relay replicas") and "µs per send" in line for line in lines)


def test_ab_bench_quick_run() -> None:
    """Two revisions in turns (here the same one against the working tree), each row with what it measured."""
    table = _bench("ab.py", "HEAD", "--rounds", "1", "--seconds", "0.5")
    rows = [line for line in table.splitlines() if line.startswith(("| HEAD |", "| working tree |"))]
    assert len(rows) == 2
    for row in rows:
        rate, cost = float(row.split("|")[3].replace(",", "")), float(row.split("|")[5].replace(",", ""))
        assert rate > 0 and cost > 0


def test_ab_bench_measures_wakes() -> None:
    table = _bench("ab.py", "HEAD", "--rounds", "1", "--wake", "5")
    rows = [line for line in table.splitlines() if line.startswith(("| HEAD |", "| working tree |"))]
    assert len(rows) == 2
    for row in rows:
        p50, p99 = float(row.split("|")[3]), float(row.split("|")[5])
        assert 0 < p50 <= p99
