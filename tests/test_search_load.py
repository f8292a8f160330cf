"""Search cannot starve other work: while 30 searches over 1,000 messages of 30,000 characters run, another
agent's board answers within a second, and the relay's memory stays small. The relay runs in its own
process so its peak memory is its own."""

from __future__ import annotations

import concurrent.futures
import random
import time
from pathlib import Path

from conftest import Databases, RelayProcess, database_for

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
    relay = RelayProcess.start(
        tmp_path / "data", {f"PARLEY_{name.upper()}": value for name, value in database_for(backend).items()}
    )
    try:
        searcher, bystander = relay.agent("searcher"), relay.agent("bystander")
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
        assert _peak_rss_mb(relay.process.pid) < 300
        searcher.close()
        bystander.close()
    finally:
        relay.stop()
