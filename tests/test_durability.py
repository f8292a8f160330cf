"""Acknowledged means durable, under kill -9, on both stores: 16 senders with retries and ``client_msg_id`` keep
sending while the relay (on PostgreSQL, one of two replicas) is killed with SIGKILL and restarted, several times;
afterwards every acknowledged message is there exactly once. This guards every change to the write path."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Databases, RelayProcess, eventually, free_port, postgres_databases

from parley.client import Client, ParleyError

SENDERS, MESSAGES, KILLS = 16, 30, 3


class Process:
    """``parley serve`` that can be killed with SIGKILL and started again on the same port and data."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port, self.data_dir, self.env = free_port(), data_dir, env
        self.url = f"http://127.0.0.1:{self.port}"
        self.running: RelayProcess | None = None

    def start(self) -> Process:
        self.running = RelayProcess.start(self.data_dir, self.env, port=self.port)
        return self

    def kill(self) -> None:
        assert self.running is not None
        self.running.process.send_signal(signal.SIGKILL)
        self.running.process.wait(timeout=30)

    def stop(self) -> None:
        if self.running is not None and self.running.process.poll() is None:
            self.running.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def relays(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Process]]:
    """One SQLite relay, or two replicas on one PostgreSQL database."""
    if request.param == "sqlite":
        started = [Process(tmp_path / "data", {}).start()]
        yield started
        started[0].stop()
        return
    databases: Databases = postgres_databases("the kill -9 test on PostgreSQL")
    url = databases.new()
    started = [Process(tmp_path / name, {"PARLEY_DATABASE_URL": url}) for name in ("a", "b")]
    for replica in started:
        replica.start()
    (tmp_path / "b" / "admin.token").write_text((tmp_path / "a" / "admin.token").read_text())  # one operator
    yield started
    for replica in started:
        replica.stop()
    databases.drop_all()


def _send_all(urls: list[str], key: str, channel: str, sender: int, acknowledged: dict[str, int]) -> None:
    """Send MESSAGES messages; each is retried (same client_msg_id) until a relay acknowledges it."""
    for n in range(MESSAGES):
        client_msg_id = f"s{sender}-{n}-{uuid.uuid4().hex[:8]}"
        attempt = 0
        while True:
            url = urls[(sender + attempt) % len(urls)]  # on replicas, a retry may go to the other one
            try:
                with Client(url, key, retries=2, sleep=lambda s: time.sleep(min(s, 0.2))) as client:
                    posted = client.post(channel, f"{sender}:{n}", client_msg_id=client_msg_id)
                acknowledged[client_msg_id] = posted.message.id
                break
            except ParleyError as exc:
                assert exc.code in ("relay_unreachable", "http_503", "store_unavailable", "too_slow"), exc
                attempt += 1
                time.sleep(0.05)


def test_no_acknowledged_message_is_lost_or_doubled_under_kill_9(relays: list[Process]) -> None:
    victim = relays[-1]
    token = (relays[0].data_dir / "admin.token").read_text().strip()
    with Client(relays[0].url, admin_token=token) as operator:
        key = operator.create_key(name="sender").secret
    assert key is not None
    channel = "durable"
    acknowledged: dict[str, int] = {}
    urls = [relay.url for relay in relays]
    senders = [
        threading.Thread(target=_send_all, args=(urls, key, channel, s, acknowledged), daemon=True)
        for s in range(SENDERS)
    ]
    for thread in senders:
        thread.start()

    def progressed(count: int) -> Callable[[], bool]:
        return lambda: len(acknowledged) >= count

    for kill in range(KILLS):
        eventually(progressed((kill + 1) * SENDERS * MESSAGES // (KILLS + 1)), timeout=120, what="sends")
        victim.kill()
        victim.start()
    for thread in senders:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in senders)
    assert len(acknowledged) == SENDERS * MESSAGES

    with Client(relays[0].url, key) as reader:
        stored, since = [], 0
        while True:
            page = reader.read(channel, since=since, limit=200)
            stored += page.messages
            if not page.has_more:
                break
            since = page.cursor
    contents = [m.content for m in stored]
    assert len(contents) == len(set(contents)) == SENDERS * MESSAGES  # nothing doubled, nothing lost
    assert {m.id for m in stored} == set(acknowledged.values())  # each acknowledged id is the stored one
