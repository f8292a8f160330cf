"""parley's benchmark harness: the relay next to its ceiling, in the same run, as ratios.

    python bench/run.py            # the full run (about 10 minutes; needs PostgreSQL for the last part)
    python bench/run.py --quick    # tiny sizes, a smoke run (the tests run this)
    python bench/run.py --postgres --replicas 1 2 4    # the scale-out figures alone: sends/s over N replicas

Everything measured runs in its own process on a loopback port: the relay (``parley serve``), the
baseline (``bench/baseline.py``: the same FastAPI stack answering the same routes from memory, with no
storage and no auth), PostgreSQL replicas. This process is the load generator; it speaks HTTP/1.1 with a
minimal keep-alive client (``rawhttp.py``) so that the client is not what is measured. Results go to
``bench/results/latest.json`` and a markdown table (``--markdown FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import json
import os
import platform
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rawhttp import Connection

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
POSTGRES_ADMIN = os.environ.get("PARLEY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
UNLIMITED = {
    "PARLEY_WRITE_BURST": "100000000",
    "PARLEY_WRITE_RATE": "100000000",
    "PARLEY_READ_BURST": "100000000",
    "PARLEY_READ_RATE": "100000000",
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    send_seconds: float
    wake_rounds: dict[int, int]  # parked waits -> rounds
    capacity: int
    search_messages: int
    search_queries: int
    executor_calls: int

    @classmethod
    def full(cls) -> Sizes:
        return cls(8.0, {1: 50, 100: 10, 1000: 5}, 10_000, 1_000_000, 400, 3_000)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(1.0, {1: 3, 100: 1}, 200, 2_000, 20, 100)


# -- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, argv: list[str], env: dict[str, str], data_dir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.process = subprocess.Popen(
            [*argv, "--port", str(self.port)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @classmethod
    def relay(cls, data_dir: Path, **env: str) -> Server:
        return cls(
            [sys.executable, "-m", "parley", "serve"], {"PARLEY_DATA": str(data_dir), **UNLIMITED, **env}, data_dir
        )

    @classmethod
    def baseline(cls) -> Server:
        return cls([sys.executable, str(ROOT / "bench" / "baseline.py")], {})

    async def ready(self) -> Server:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                conn = await Connection.open(self.url)
                status, _ = await conn.request("GET", "/health")
                await conn.close()
                if status == 200:
                    return self
            except OSError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("server did not start")

    @property
    def admin_headers(self) -> dict[str, str]:
        if self.data_dir is None:
            return {}
        return {"X-Admin-Token": (self.data_dir / "admin.token").read_text().strip()}

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def mint(server: Server, name: str) -> dict[str, str]:
    """Headers for a new agent (the baseline takes no auth: empty headers)."""
    if server.data_dir is None:
        return {}
    conn = await Connection.open(server.url, server.admin_headers)
    status, body = await conn.request("POST", "/admin/keys", json_body={"kind": "agent", "name": name})
    await conn.close()
    assert status == 201, body
    return {"Authorization": f"Bearer {body['data']['key']}"}


async def parked(server: Server) -> int:
    conn = await Connection.open(server.url, server.admin_headers)
    _, body = await conn.request("GET", "/admin/stats")
    await conn.close()
    return int(body["data"]["parked_waits"])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# -- measurements -----------------------------------------------------------------------------


async def sends(server: Server, senders: int, seconds: float, channel: str = "load") -> float:
    """Messages per second with ``senders`` concurrent keep-alive senders."""
    conns = [await Connection.open(server.url, await mint(server, f"sender-{i}-{channel}")) for i in range(senders)]
    stop = time.monotonic() + seconds
    counts = [0] * senders

    async def run(i: int) -> None:
        while time.monotonic() < stop:
            status, body = await conns[i].request(
                "POST", "/api/v1/messages", json_body={"channel": channel, "content": f"load {counts[i]} from {i}"}
            )
            assert status == 201, body
            counts[i] += 1

    started = time.monotonic()
    await asyncio.gather(*(run(i) for i in range(senders)))
    elapsed = time.monotonic() - started
    for conn in conns:
        await conn.close()
    return sum(counts) / elapsed


async def wakes(poster_at: Server, waiters_at: Server, waiters: int, rounds: int, tag: str) -> dict[str, float]:
    """Latency from just before a send to each parked waiter receiving it; and deliveries missed."""
    channel = f"wake-{tag}-{waiters}"
    sender = await Connection.open(poster_at.url, await mint(poster_at, f"waker-{tag}-{waiters}"))
    conns = [
        await Connection.open(waiters_at.url, await mint(waiters_at, f"w-{tag}-{waiters}-{i}")) for i in range(waiters)
    ]
    _, first = await sender.request("POST", "/api/v1/messages", json_body={"channel": channel, "content": "start"})
    cursor = first["data"]["message"]["id"]
    for conn in conns:  # join
        await conn.request("GET", "/api/v1/messages", params={"channel": channel, "limit": 1})
    latencies: list[float] = []
    missed = 0
    for _ in range(rounds):
        before = await parked(waiters_at)
        received: list[float] = []

        async def wait(conn: Connection, since: int, received: list[float]) -> None:
            _, page = await conn.request(
                "GET", "/api/v1/messages", params={"channel": channel, "since": since, "wait": 30}
            )
            if page["data"]["messages"]:
                received.append(time.perf_counter())

        tasks = [asyncio.create_task(wait(conn, cursor, received)) for conn in conns]
        while await parked(waiters_at) < before + waiters:
            await asyncio.sleep(0.005)
        sent_at = time.perf_counter()
        _, posted = await sender.request("POST", "/api/v1/messages", json_body={"channel": channel, "content": "wake"})
        cursor = posted["data"]["message"]["id"]
        await asyncio.gather(*tasks)
        missed += waiters - len(received)
        latencies += [(t - sent_at) * 1000 for t in received]
    for conn in [sender, *conns]:
        await conn.close()
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 0.99),
        "missed": missed,
        "deliveries": waiters * rounds,
    }


async def capacity(server: Server, waits: int, tag: str) -> dict[str, float]:
    """Hold ``waits`` parked waits on one process; memory; time until one message has woken them all."""
    channel = f"capacity-{tag}"
    sender = await Connection.open(server.url, await mint(server, f"cap-sender-{tag}"))
    _, first = await sender.request("POST", "/api/v1/messages", json_body={"channel": channel, "content": "start"})
    cursor = first["data"]["message"]["id"]
    key = await mint(server, f"cap-waiter-{tag}")  # one agent, many connections: the hub does not care
    await sender.close()
    rss_before = server.rss_mb()
    conns: list[Connection] = []
    received: list[float] = []

    async def wait(conn: Connection) -> None:
        _, page = await conn.request(
            "GET", "/api/v1/messages", params={"channel": channel, "since": cursor, "wait": 50}
        )
        if page["data"]["messages"]:
            received.append(time.perf_counter())

    tasks = []
    for _ in range(waits):  # each connection parks at once (an idle keep-alive connection would be closed)
        conns.append(await Connection.open(server.url, key))
        tasks.append(asyncio.create_task(wait(conns[-1])))
    while await parked(server) < waits:
        await asyncio.sleep(0.05)
    rss = server.rss_mb()
    sender = await Connection.open(server.url, await mint(server, f"cap-sender2-{tag}"))
    sent_at = time.perf_counter()
    await sender.request("POST", "/api/v1/messages", json_body={"channel": channel, "content": "wake all"})
    await asyncio.gather(*tasks)
    all_woken = (max(received) - sent_at) if received else float("nan")
    for conn in [sender, *conns]:
        await conn.close()
    return {
        "waits": waits,
        "woken": len(received),
        "rss_mb": rss,
        "rss_before_mb": rss_before,
        "all_woken_s": all_woken,
    }


WORDS = [f"w{i}" for i in range(5_000)] + [
    "deploy",
    "build",
    "release",
    "flag",
    "test",
    "error",
    "timeout",
    "review",
    "merge",
    "agent",
    "channel",
    "database",
    "latency",
    "cursor",
    "claim",
    "question",
    "answer",
    "search",
    "index",
    "replica",
]


def seed_search_corpus(data_dir: Path, messages: int) -> None:
    """Write ``messages`` messages straight into a fresh relay database (its own schema and FTS trigger)."""
    from parley.relay.store.sqlite_engine import connect, migrate
    from parley.relay.store.sqlite_schema import MIGRATIONS

    data_dir.mkdir(parents=True, exist_ok=True)
    conn = connect(data_dir / "parley.db", "OFF")
    migrate(conn, MIGRATIONS)
    now = time.time()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO agents (id, name, created_at) VALUES (1, 'seed-agent', ?)", (now,))
    conn.executemany(
        "INSERT INTO channels (id, name, type, created_by, created_at) VALUES (?, ?, 'global', 1, ?)",
        [(i, f"seed-{i}", now) for i in range(1, 51)],
    )
    conn.execute("COMMIT")
    rng = random.Random(42)
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]  # Zipf-like: a few common words, a long tail
    batch = 20_000
    for start in range(0, messages, batch):
        rows = []
        for _i in range(start, min(messages, start + batch)):
            words = rng.choices(WORDS, weights, k=rng.randint(6, 30))
            rows.append((rng.randint(1, 50), 1, " ".join(words), now))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO messages (channel_id, author_id, content, created_at) VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def search(server: Server, queries: int) -> dict[str, float]:
    conn = await Connection.open(server.url, await mint(server, "searcher"))
    rng = random.Random(7)
    terms = [
        "deploy",
        "build release",
        "timeout error",
        "claim question",
        "w17",
        "w250 w3",
        '"review merge"',
        "latency OR cursor",
        "database -replica",
        "w4999",
    ]
    timings: list[float] = []
    for i in range(queries):
        q = terms[i % len(terms)] if i < len(terms) else rng.choice(terms)
        started = time.perf_counter()
        status, body = await conn.request("GET", "/api/v1/search", params={"q": q, "limit": 20})
        timings.append((time.perf_counter() - started) * 1000)
        assert status == 200, body
    await conn.close()
    return {"p50_ms": statistics.median(timings), "p95_ms": percentile(timings, 0.95)}


def executor_cost(server: Server, calls: int, headers: dict[str, str]) -> dict[str, float]:
    """Per tool call: the executor over its kept-alive connection, next to a raw http.client request."""
    from parley.executors import Executor

    key = headers["Authorization"].removeprefix("Bearer ")
    path = "/api/v1/messages?channel=load&limit=1"
    raw = http.client.HTTPConnection("127.0.0.1", server.port)
    with Executor(server.url, key) as executor:
        for _ in range(50):  # warm both
            executor.execute("read_messages", {"channel": "load", "limit": 1})
            raw.request("GET", path, headers=headers)
            raw.getresponse().read()
        timings = {"executor": 0.0, "raw": 0.0}
        for _ in range(calls):  # interleaved, so noise hits both alike
            started = time.perf_counter()
            executor.execute("read_messages", {"channel": "load", "limit": 1})
            timings["executor"] += time.perf_counter() - started
            started = time.perf_counter()
            raw.request("GET", path, headers=headers)
            raw.getresponse().read()
            timings["raw"] += time.perf_counter() - started
    raw.close()
    return {"executor_us": timings["executor"] / calls * 1e6, "raw_us": timings["raw"] / calls * 1e6}


# -- the run ----------------------------------------------------------------------------------


def postgres_database() -> str | None:
    try:
        import psycopg

        name = f"parley_bench_{int(time.time())}"
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE DATABASE {name}".encode())
        return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    except Exception:
        return None


def drop_database(url: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)".encode())


async def measure(sizes: Sizes, work: Path, replicas: list[int], log: Callable[[str], None]) -> dict[str, Any]:
    results: dict[str, Any] = {}

    async def pair(name: str, run: Callable[[Server], Awaitable[Any]]) -> None:
        relay, baseline = Server.relay(work / f"relay-{name}"), Server.baseline()
        try:
            await relay.ready()
            await baseline.ready()
            results[name] = {"relay": await run(relay), "baseline": await run(baseline)}
            log(f"{name}: {results[name]}")
        finally:
            relay.stop()
            baseline.stop()

    await pair("sends", lambda s: sends(s, 16, sizes.send_seconds))
    for waiters, rounds in sizes.wake_rounds.items():
        await pair(f"wake_{waiters}", lambda s, w=waiters, r=rounds: wakes(s, s, w, r, "single"))
    await pair("capacity", lambda s: capacity(s, sizes.capacity, "cap"))

    corpus = work / "search"
    started = time.monotonic()
    seed_search_corpus(corpus, sizes.search_messages)
    log(f"seeded {sizes.search_messages} messages in {time.monotonic() - started:.0f} s")
    relay = Server.relay(corpus)
    try:
        await relay.ready()
        results["search"] = {"relay": await search(relay, sizes.search_queries), "messages": sizes.search_messages}
        log(f"search: {results['search']}")
    finally:
        relay.stop()

    relay = Server.relay(work / "relay-executor")
    try:
        await relay.ready()
        headers = await mint(relay, "executor")
        await sends(relay, 1, 0.2)  # something to read
        results["executor"] = await asyncio.to_thread(executor_cost, relay, sizes.executor_calls, headers)
        log(f"executor: {results['executor']}")
    finally:
        relay.stop()

    if postgres_database_reachable():
        pg: dict[str, Any] = {
            f"sends_{count}": await replica_sends(work, count, sizes.send_seconds) for count in replicas
        }
        database = postgres_database()
        assert database is not None
        a = Server.relay(work / "pg-a", PARLEY_DATABASE_URL=database)
        b = Server.relay(work / "pg-b", PARLEY_DATABASE_URL=database)
        try:
            await a.ready()
            await b.ready()
            pg["wake_100_cross_replica"] = await wakes(a, b, 100, sizes.wake_rounds.get(100, 1), "cross")
        finally:
            a.stop()
            b.stop()
            drop_database(database)
        results["postgres"] = pg
        log(f"postgres: {pg}")
    else:
        results["postgres"] = {"skipped": f"no PostgreSQL at {POSTGRES_ADMIN}"}
    return results


def postgres_database_reachable() -> bool:
    try:
        import psycopg

        psycopg.connect(POSTGRES_ADMIN, connect_timeout=3).close()
    except Exception:
        return False
    return True


async def replica_sends(work: Path, count: int, seconds: float) -> float:
    """Sends/s, 16 senders split over ``count`` PostgreSQL replicas of a new database."""
    database = postgres_database()
    assert database is not None
    servers = [Server.relay(work / f"scale-pg{count}-{i}", PARLEY_DATABASE_URL=database) for i in range(count)]
    try:
        for server in servers:
            await server.ready()
        return sum(await asyncio.gather(*(sends(s, 16 // count, seconds, "pg-load") for s in servers)))
    finally:
        for server in servers:
            server.stop()
        drop_database(database)


async def scale_out(work: Path, replicas: list[int], seconds: float) -> dict[str, Any]:
    """Sends/s, 16 senders, on one SQLite relay and on 1, 2, 4... PostgreSQL replicas of one database."""
    sqlite = await Server.relay(work / "scale-sqlite").ready()
    try:
        results: dict[str, Any] = {"sqlite": await sends(sqlite, 16, seconds)}
    finally:
        sqlite.stop()
    if not postgres_database_reachable():
        return {**results, "skipped": f"no PostgreSQL at {POSTGRES_ADMIN}"}
    for count in replicas:
        results[f"postgres_{count}"] = await replica_sends(work, count, seconds)
    return results


def scale_out_table(results: dict[str, Any]) -> str:
    rows = ["| 16 senders | sends/s | x SQLite |", "|---|---|---|"]
    rows.append(f"| one SQLite relay | {results['sqlite']:,.0f} | 1.00 |")
    for key, rate in results.items():
        if key.startswith("postgres_"):
            replicas = key.removeprefix("postgres_")
            rows.append(f"| PostgreSQL, {replicas} replica(s) | {rate:,.0f} | {rate / results['sqlite']:.2f} |")
    return "\n".join(rows) + "\n"


#: What every figure ran with: an acknowledged message is on disk.
DURABILITY = (
    "SQLite synchronous=FULL; PostgreSQL synchronous_commit=on for every message write"
    " (off only for rate-limit counters)"
)
TARGETS = "sends >= 70% of baseline; wake p99 <= 1.5x baseline, 0 missed; 10k waits < 1 GB; search p95 < 20 ms"


def table(results: dict[str, Any]) -> str:
    rows = ["| measure | relay | baseline | ratio | target | met |", "|---|---|---|---|---|---|"]

    def row(measure: str, relay: str, baseline: str, ratio: str, target: str, met: bool | None) -> None:
        verdict = "yes" if met else "no" if met is False else "-"
        rows.append(f"| {measure} | {relay} | {baseline} | {ratio} | {target} | {verdict} |")

    s = results["sends"]
    ratio = s["relay"] / s["baseline"]
    row("sends/s, 16 senders", f"{s['relay']:,.0f}", f"{s['baseline']:,.0f}", f"{ratio:.2f}", ">= 0.70", ratio >= 0.7)
    for key in sorted(k for k in results if k.startswith("wake_")):
        w = results[key]
        waiters = key.split("_")[1]
        r, b = w["relay"], w["baseline"]
        ratio = r["p99_ms"] / b["p99_ms"] if b["p99_ms"] else float("nan")
        ok = r["missed"] == 0 and (waiters == "1" or ratio <= 1.5)
        row(
            f"wake, {waiters} parked: p50 / p99 ms (missed)",
            f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f} ({r['missed']})",
            f"{b['p50_ms']:.1f} / {b['p99_ms']:.1f} ({b['missed']})",
            f"{ratio:.2f}",
            "0 missed" if waiters == "1" else "p99 <= 1.5x, 0 missed",
            ok,
        )
    c = results["capacity"]
    r, b = c["relay"], c["baseline"]
    row(
        f"{r['waits']:,} parked waits: RSS MB, all woken in s",
        f"{r['rss_mb']:.0f} MB, {r['all_woken_s']:.2f} s ({r['woken']:,} woken)",
        f"{b['rss_mb']:.0f} MB, {b['all_woken_s']:.2f} s",
        f"{r['all_woken_s'] / b['all_woken_s']:.2f}",
        "all woken, < 1 GB",
        r["woken"] == r["waits"] and r["rss_mb"] < 1024,
    )
    se = results["search"]
    row(
        f"search over {se['messages']:,} messages: p50 / p95 ms",
        f"{se['relay']['p50_ms']:.1f} / {se['relay']['p95_ms']:.1f}",
        "-",
        "-",
        "p95 < 20 ms",
        se["relay"]["p95_ms"] < 20,
    )
    e = results["executor"]
    ratio = e["executor_us"] / e["raw_us"]
    row(
        "tool call, kept-alive: µs (executor vs raw http.client)",
        f"{e['executor_us']:.0f}",
        f"{e['raw_us']:.0f}",
        f"{ratio:.2f}",
        "<= 1.2",
        ratio <= 1.2,
    )
    pg = results.get("postgres", {})
    if "skipped" in pg:
        row("PostgreSQL, two replicas", pg["skipped"], "-", "-", "-", None)
    else:
        for key in sorted((k for k in pg if k.startswith("sends_")), key=lambda k: int(k.split("_")[1])):
            count, ratio = int(key.split("_")[1]), pg[key] / s["relay"]
            row(
                f"PostgreSQL sends/s, 16 senders over {count} replica{'s' if count > 1 else ''}",
                f"{pg[key]:,.0f}",
                f"{s['relay']:,.0f} (SQLite relay)",
                f"{ratio:.2f}",
                ">= 1.00" if count == 2 else "-",
                ratio >= 1.0 if count == 2 else None,
            )
        cross, single = pg["wake_100_cross_replica"], results["wake_100"]["relay"] if "wake_100" in results else None
        ratio = cross["p99_ms"] / single["p99_ms"] if single else float("nan")
        row(
            "PostgreSQL cross-replica wake, 100 parked: p50 / p99 ms (missed)",
            f"{cross['p50_ms']:.1f} / {cross['p99_ms']:.1f} ({cross['missed']})",
            f"{single['p99_ms']:.1f} p99 (SQLite, 1 replica)" if single else "-",
            f"{ratio:.2f}",
            "<= 2x SQLite",
            cross["missed"] == 0 and ratio <= 2,
        )
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--postgres", action="store_true", help="only the scale-out figures (with --replicas)")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4], help="replica counts (default 1 2 4)")
    args = parser.parse_args()
    sizes = Sizes.quick() if args.quick else Sizes.full()
    started = time.time()
    if args.postgres:
        with tempfile.TemporaryDirectory(prefix="parley-bench-") as work:
            scaled = asyncio.run(scale_out(Path(work), args.replicas, sizes.send_seconds))
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)) + " UTC"
        scaled["meta"] = {"date": when, "durability": DURABILITY}
        target = args.json if args.json != RESULTS / "latest.json" else RESULTS / "scale-out.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(scaled, indent=2) + "\n")
        print(scale_out_table(scaled))
        return
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as work:
        log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
        results = asyncio.run(measure(sizes, Path(work), args.replicas, log))
    results["meta"] = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)) + " UTC",
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version}",
        "command": "python bench/run.py" + (" --quick" if args.quick else ""),
        "seconds": round(time.time() - started),
        "sizes": dataclasses.asdict(sizes),
        "durability": DURABILITY,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    markdown = table(results)
    if args.markdown:
        args.markdown.write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
