"""A quick load run against a real relay process: send throughput and wake latency.

    python bench/quick_load.py [--senders 16] [--seconds 5] [--waiters 100] [--rounds 10]

Starts ``parley serve`` on a free loopback port with a fresh data directory (rate limits lifted),
then drives it from this process with httpx's async client. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rawhttp import Connection


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_relay(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PARLEY_DATA": str(data_dir),
        "PARLEY_WRITE_BURST": "1000000",
        "PARLEY_WRITE_RATE": "1000000",
        "PARLEY_READ_BURST": "1000000",
        "PARLEY_READ_RATE": "1000000",
    }
    return subprocess.Popen([sys.executable, "-m", "parley", "serve", "--port", str(port)], env=env)


async def _ready(url: str) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("relay did not start")


async def _mint(admin: httpx.AsyncClient, name: str) -> str:
    response = await admin.post("/admin/keys", json={"kind": "agent", "name": name})
    return str(response.json()["data"]["key"])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def sends(url: str, admin: httpx.AsyncClient, senders: int, seconds: float) -> dict[str, float]:
    keys = [await _mint(admin, f"sender-{i}") for i in range(senders)]
    conns = [await Connection.open(url, {"Authorization": f"Bearer {key}"}) for key in keys]
    stop = time.monotonic() + seconds
    counts = [0] * senders

    async def run(i: int) -> None:
        while time.monotonic() < stop:
            status, _ = await conns[i].request(
                "POST", "/api/v1/messages", json_body={"channel": "load", "content": f"message {counts[i]} from {i}"}
            )
            assert status == 201, status
            counts[i] += 1

    started = time.monotonic()
    await asyncio.gather(*(run(i) for i in range(senders)))
    elapsed = time.monotonic() - started
    for conn in conns:
        await conn.close()
    total = sum(counts)
    return {"senders": senders, "messages": total, "seconds": round(elapsed, 2), "per_second": round(total / elapsed)}


async def wakes(url: str, admin: httpx.AsyncClient, waiters: int, rounds: int) -> dict[str, float]:
    sender = await Connection.open(url, {"Authorization": f"Bearer {await _mint(admin, 'waker')}"})
    conns = [
        await Connection.open(url, {"Authorization": f"Bearer {await _mint(admin, f'waiter-{i}')}"})
        for i in range(waiters)
    ]
    latencies: list[float] = []
    missed = 0
    _, first = await sender.request("POST", "/api/v1/messages", json_body={"channel": "wake", "content": "start"})
    cursor = first["data"]["message"]["id"]
    for conn in conns:  # join the channel
        await conn.request("GET", "/api/v1/messages", params={"channel": "wake", "limit": 1})
    for _ in range(rounds):
        parked_before = await _parked(admin)
        received: list[float] = []

        async def wait(conn: Connection, since: int, received: list[float]) -> None:
            _, page = await conn.request(
                "GET", "/api/v1/messages", params={"channel": "wake", "since": since, "wait": 20}
            )
            if page["data"]["messages"]:
                received.append(time.perf_counter())

        tasks = [asyncio.create_task(wait(conn, cursor, received)) for conn in conns]
        while await _parked(admin) < parked_before + waiters:
            await asyncio.sleep(0.01)
        sent_at = time.perf_counter()
        _, posted = await sender.request("POST", "/api/v1/messages", json_body={"channel": "wake", "content": "wake"})
        cursor = posted["data"]["message"]["id"]
        await asyncio.gather(*tasks)
        missed += waiters - len(received)
        latencies += [(t - sent_at) * 1000 for t in received]
    for conn in [sender, *conns]:
        await conn.close()
    return {
        "waiters": waiters,
        "rounds": rounds,
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(_percentile(latencies, 0.99), 1),
        "missed": missed,
    }


async def _parked(admin: httpx.AsyncClient) -> int:
    return int((await admin.get("/admin/stats")).json()["data"]["parked_waits"])


async def main(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as data_dir:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        relay = _start_relay(Path(data_dir), port)
        try:
            await _ready(url)
            token = (Path(data_dir) / "admin.token").read_text().strip()
            async with httpx.AsyncClient(base_url=url, headers={"X-Admin-Token": token}, timeout=30) as admin:
                result: dict[str, object] = {"sends": await sends(url, admin, args.senders, args.seconds)}
                result["wakes"] = await wakes(url, admin, args.waiters, args.rounds)
                result["write_batches"] = (await admin.get("/admin/stats")).json()["data"]["write_batches"]
                return result
        finally:
            relay.terminate()
            relay.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--waiters", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
