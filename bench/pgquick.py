"""Quick: sends/s over 1, 2 (and 4) PostgreSQL replicas and one SQLite relay, for profiling (not the full run)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from run import Server, drop_database, postgres_database, sends


async def over(replicas: int, work: Path, seconds: float) -> float:
    database = postgres_database()
    assert database is not None
    servers = [Server.relay(work / f"pg{replicas}-{i}", PARLEY_DATABASE_URL=database) for i in range(replicas)]
    try:
        for server in servers:
            await server.ready()
        rates = await asyncio.gather(*(sends(s, 16 // replicas, seconds, "pg-load") for s in servers))
        return sum(rates)
    finally:
        for server in servers:
            server.stop()
        drop_database(database)


async def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 6.0
    counts = [int(n) for n in sys.argv[2:]] or [1, 2]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sqlite = await Server.relay(work / "sqlite").ready()
        try:
            print(f"sqlite 1 relay: {await sends(sqlite, 16, seconds):.0f}/s", flush=True)
        finally:
            sqlite.stop()
        for n in counts:
            print(f"postgres {n} replica(s): {await over(n, work, seconds):.0f}/s", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
