"""Where the CPU of a send goes: each process's CPU time (the relay replicas, PostgreSQL, this load generator)
per message sent, while 16 keep-alive senders load 1, 2... PostgreSQL replicas.

    python bench/cpu_per_send.py 1 2     # replica counts (default 1 2)

Read from /proc before and after the load, so it counts every process on the machine (Linux only).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import tempfile
import time
from pathlib import Path

from run import Server, drop_database, postgres_database, sends

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks() -> dict[int, tuple[str, int]]:
    """Every process: what it is, and the CPU ticks it has used."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(entry) == os.getpid():
            kind = "load generator"
        elif name.startswith("postgres"):
            kind = "postgresql"
        elif "parley serve" in command:
            kind = "relay replicas"
        else:
            kind = "other"
        found[int(entry)] = (kind, int(fields[11]) + int(fields[12]))
    return found


async def measure(replicas: int, seconds: float) -> None:
    database = postgres_database()
    if database is None:
        raise SystemExit("no PostgreSQL to measure against")
    with tempfile.TemporaryDirectory() as work:
        servers = [Server.relay(Path(work) / f"pg{i}", PARLEY_DATABASE_URL=database) for i in range(replicas)]
        try:
            for server in servers:
                await server.ready()
            before, started = cpu_ticks(), time.monotonic()
            rates = await asyncio.gather(*(sends(s, 16 // replicas, seconds, "pg-load") for s in servers))
            elapsed, after = time.monotonic() - started, cpu_ticks()
        finally:
            for server in servers:
                server.stop()
            drop_database(database)
    sent = sum(rates) * elapsed
    used: collections.Counter[str] = collections.Counter()
    for pid, (kind, ticks) in after.items():
        used[kind] += ticks - before.get(pid, (kind, 0))[1]
    print(f"{replicas} replica(s): {sum(rates):,.0f} sends/s")
    for kind in ("relay replicas", "postgresql", "load generator", "other"):
        seconds_used = used[kind] / TICKS
        print(f"  {kind:15} {seconds_used / elapsed:5.0%} of a core  {seconds_used / sent * 1e6:6,.0f} µs per send")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("replicas", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    for count in args.replicas:
        asyncio.run(measure(count, args.seconds))


if __name__ == "__main__":
    main()
