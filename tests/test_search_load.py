"""Search cannot starve other work: while 30 searches over 1,000 messages of 30,000 characters run, another
agent's board answers within a second, and the relay's memory stays small. The relay runs in its own
process so its peak memory is its own."""

from __future__ import annotations

import concurrent.futures
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx
from conftest import Databases, database_for, eventually, free_port

MESSAGES = 1_000
CHARS = 30_000
WORDS = ["alpha", "bravo", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima", "mike"]


def _long_message(rng: random.Random) -> str:
    words, size = [], 0
    while size < CHARS - 20:
        word = rng.choice(WORDS) + str(rng.randrange(1000))
        words.append(word)
        size += len(word) + 1
    return "alpha " + " ".join(words)[: CHARS - 10]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_searches_do_not_starve_other_agents(tmp_path: Path, backend: Databases | None) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PARLEY_DATA": str(tmp_path / "data"),
        "PARLEY_WRITE_BURST": "100000",
        "PARLEY_WRITE_RATE": "100000",
        "PARLEY_READ_BURST": "100000",
        "PARLEY_READ_RATE": "100000",
    }
    env.update({f"PARLEY_{name.upper()}": value for name, value in database_for(backend).items()})
    relay = subprocess.Popen(
        [sys.executable, "-m", "parley", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert relay.poll() is None, "the relay exited"
            try:
                return httpx.get(f"{url}/health").status_code == 200
            except httpx.HTTPError:
                return False

        eventually(healthy, timeout=60, what="the relay")
        token = (tmp_path / "data" / "admin.token").read_text().strip()
        with httpx.Client(base_url=url, headers={"X-Admin-Token": token}) as admin:
            keys = [
                admin.post("/admin/keys", json={"kind": "agent", "name": n}).json()["data"]["key"]
                for n in ("searcher", "bystander")
            ]
        searcher = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys[0]}"}, timeout=60)
        bystander = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys[1]}"}, timeout=60)
        rng = random.Random(7)
        bodies = [{"channel": "corpus", "content": _long_message(rng)} for _ in range(MESSAGES)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            posted = list(pool.map(lambda body: searcher.post("/api/v1/messages", json=body).status_code, bodies))
        assert posted == [201] * MESSAGES
        bystander.post("/api/v1/messages", json={"channel": "elsewhere", "content": "hello"})

        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            searches = [pool.submit(searcher.get, "/api/v1/search", params={"q": "alpha"}) for _ in range(30)]
            started = time.monotonic()
            board = bystander.get("/api/v1/board")
            answered_in = time.monotonic() - started
            busy_meanwhile = sum(not search.done() for search in searches)
            statuses = [search.result().status_code for search in searches]
        assert board.status_code == 200
        assert busy_meanwhile > 0, "the searches were over before the board was asked: nothing was measured"
        assert answered_in < 1.0, f"the board took {answered_in:.2f} s while searches ran"
        assert set(statuses) <= {200, 503} and 200 in statuses  # served, or turned away politely; never a 500
        assert _peak_rss_mb(relay.pid) < 300
        searcher.close()
        bystander.close()
    finally:
        relay.terminate()
        relay.wait(timeout=30)
