"""A/B: two revisions of the relay measured in turns, so that a change is judged against this machine's drift.

    python bench/ab.py BEFORE [AFTER]               # git revisions; AFTER defaults to the working tree
    python bench/ab.py HEAD~3 HEAD --rounds 4 --postgres   # two PostgreSQL replicas instead of one SQLite relay
    python bench/ab.py HEAD~3 HEAD --wake 1000     # wake latency with 1,000 parked waits instead of sends

Back-to-back runs on this machine differ by 10-30% (its speed drifts over minutes), more than most changes
are worth. So the two revisions take turns, round after round, each a fresh relay loaded by 16 keep-alive
senders, and each run reports its sends/s and the relay processes' CPU time per send (from /proc), which
drifts less than throughput. Each revision runs from a git worktree through PYTHONPATH, started from a
directory outside the checkout so that ``python -m parley`` cannot import the working tree instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from run import ROOT, UNLIMITED, Server, drop_database, postgres_database, sends, wakes

TICKS = os.sysconf("SC_CLK_TCK")
SENDERS = 16


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def run_once(source: Path | None, work: Path, tag: str, seconds: float, replicas: int) -> tuple[float, float]:
    """Sends/s and relay CPU µs per send of the relay code at ``source`` (None: the installed working tree)."""
    env = {**UNLIMITED, **({"PYTHONPATH": str(source)} if source else {})}
    database = postgres_database() if replicas else None
    if replicas and database is None:
        raise SystemExit("--postgres needs PostgreSQL")
    if database:
        env["PARLEY_DATABASE_URL"] = database
    servers = [
        Server(
            [sys.executable, "-m", "parley", "serve"],
            {**env, "PARLEY_DATA": str(work / f"{tag}{i}")},
            work / f"{tag}{i}",
        )
        for i in range(max(replicas, 1))
    ]
    try:
        for server in servers:
            await server.ready()
        before = sum(cpu_seconds(server.process.pid) for server in servers)
        rates = await asyncio.gather(*(sends(s, SENDERS // len(servers), seconds, tag) for s in servers))
        used = sum(cpu_seconds(server.process.pid) for server in servers) - before
    finally:
        for server in servers:
            server.stop()
        if database:
            drop_database(database)
    rate = sum(rates)
    return rate, used / (rate * seconds) * 1e6


def worktree(revision: str, into: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(into), revision], check=True)
    return into


async def wake_once(source: Path | None, work: Path, tag: str, waiters: int) -> tuple[float, float]:
    """p50 and p99 ms from a send to each of ``waiters`` parked waits, over five wakes, at ``source``."""
    env = {**UNLIMITED, **({"PYTHONPATH": str(source)} if source else {})}
    server = Server([sys.executable, "-m", "parley", "serve"], {**env, "PARLEY_DATA": str(work / tag)}, work / tag)
    try:
        await server.ready()
        found = await wakes(server, server, waiters, rounds=5, tag=tag)
    finally:
        server.stop()
    assert found["missed"] == 0, found
    return found["p50_ms"], found["p99_ms"]


Measure = Callable[[Path | None, str], Awaitable[tuple[float, float]]]


async def compare(
    sources: dict[str, Path | None], rounds: int, measure: Measure, columns: tuple[str, str], fmt: str
) -> str:
    """The revisions measured in turns, round after round; a table of each run's two figures and their means."""
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in sources}
    for round_ in range(rounds):
        for n, (name, source) in enumerate(sources.items()):
            results[name].append(await measure(source, f"r{round_}-{n}-"))
    lines = [
        f"| revision | {columns[0]}, each round | mean | {columns[1]}, each round | mean |",
        "|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        cells = []
        for values in ([a for a, _ in runs], [b for _, b in runs]):
            cells += [", ".join(format(v, fmt) for v in values), format(statistics.mean(values), fmt)]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", help="a git revision")
    parser.add_argument("after", nargs="?", help="a git revision (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="load per run")
    parser.add_argument("--postgres", action="store_true", help="two PostgreSQL replicas rather than one SQLite relay")
    parser.add_argument("--wake", type=int, metavar="N", help="measure wake latency with N parked waits instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parley-ab-") as tmp:
        work = Path(tmp)
        sources: dict[str, Path | None] = {args.before: worktree(args.before, work / "before")}
        sources[args.after or "working tree"] = worktree(args.after, work / "after") if args.after else None
        os.chdir(work)  # python -m parley imports from the current directory first
        try:
            if args.wake:
                columns = (f"wake p50 ms, {args.wake} parked", "p99 ms")
                measure: Measure = lambda source, tag: wake_once(source, work, tag, args.wake)  # noqa: E731
                table = asyncio.run(compare(sources, args.rounds, measure, columns, ".1f"))
            else:
                columns = ("sends/s", "relay CPU µs per send")
                replicas = 2 if args.postgres else 0
                measure = lambda source, tag: run_once(source, work, tag, args.seconds, replicas)  # noqa: E731
                table = asyncio.run(compare(sources, args.rounds, measure, columns, ",.0f"))
        finally:
            os.chdir(ROOT)
            for source in sources.values():
                if source is not None:
                    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(source)], check=True)
    print(table)


if __name__ == "__main__":
    main()
