"""What sealing costs: sends and reads in a sealed channel next to a plain one, in the same run, as ratios.

    python bench/sealed.py           # about a minute
    python bench/sealed.py --quick   # a smoke run (the tests run this)

The relay runs in its own process (``parley serve``); this process is the client side, where sealing happens:
``parley.Client`` (standard library HTTP) on threads, one keyring shared by all of them, as an agent's process
would be. Each figure is measured on the plain channel and on the sealed one back to back, and the ratio is
what sealing costs end to end (encryption, the keyring lookup, larger bodies, the relay's envelope check).
Results go to ``bench/results/sealed.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from run import RESULTS, Server, mint

import parley
from parley.sealed import Keyring, crypto
from parley.sealed import envelope as fmt

TEXT = "The build of main is green on all three platforms; release notes are in the thread. " * 6  # ~500 chars


def rate(clients: list[parley.Client], seconds: float, act: Any) -> float:
    """Calls per second with one thread per client, each calling ``act(client)`` until time is up."""
    done = [0] * len(clients)
    stop = time.monotonic() + seconds

    def run(index: int) -> None:
        while time.monotonic() < stop:
            act(clients[index])
            done[index] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


def per_call_us(act: Any, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        act()
    return (time.perf_counter() - started) / calls * 1e6


async def measure(seconds: float, senders: int, page: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as work:
        server = await Server.relay(Path(work) / "relay").ready()
        try:
            key = (await mint(server, "bench-sealed"))["Authorization"].removeprefix("Bearer ")
            keyring = Keyring(Path(work) / "keyring.json")
            clients = [parley.Client(server.url, key, keyring=keyring) for _ in range(senders)]
            sealed = clients[0].join("sealed", private=True, encrypted=True).name
            plain = clients[0].join("plain").name
            results: dict[str, Any] = {"senders": senders, "content_chars": len(TEXT), "page": page}
            for name, channel in (("plain", plain), ("sealed", sealed)):
                results[f"sends_{name}"] = rate(clients, seconds, lambda c, ch=channel: c.post(ch, TEXT))
                results[f"reads_{name}"] = rate(clients, seconds, lambda c, ch=channel: c.read(ch, limit=page))
            for what in ("sends", "reads"):
                results[f"{what}_ratio"] = round(results[f"{what}_sealed"] / results[f"{what}_plain"], 3)
            key_bytes = keyring.current(sealed)
            assert key_bytes is not None
            bound = fmt.binding(sealed, "bench-sealed", None, "x")
            envelope = crypto.seal_message(key_bytes, TEXT, None, bound)
            keys = {envelope["kid"]: key_bytes}
            results["seal_us"] = round(per_call_us(lambda: crypto.seal_message(key_bytes, TEXT, None, bound), 2000), 1)
            results["open_us"] = round(per_call_us(lambda: crypto.open_message(keys, envelope, bound), 2000), 1)
            for client in clients:
                client.close()
            return results
        finally:
            server.stop()


def table(results: dict[str, Any]) -> str:
    rows = [
        "| measure | plain channel | sealed channel | sealed / plain |",
        "|---|---|---|---|",
        f"| sends/s, {results['senders']} client threads, {results['content_chars']}-char messages"
        f" | {results['sends_plain']:,.0f} | {results['sends_sealed']:,.0f} | {results['sends_ratio']:.2f} |",
        f"| reads/s of {results['page']}-message pages"
        f" | {results['reads_plain']:,.0f} | {results['reads_sealed']:,.0f} | {results['reads_ratio']:.2f} |",
        f"| seal one message (client CPU) | | {results['seal_us']:.0f} µs | |",
        f"| open one message (client CPU) | | {results['open_us']:.0f} µs | |",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", type=Path, default=RESULTS / "sealed.json")
    args = parser.parse_args()
    seconds, senders, page = (0.5, 2, 20) if args.quick else (8.0, 8, 50)
    results = asyncio.run(measure(seconds, senders, page))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    sys.exit(main())
