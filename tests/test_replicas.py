"""Two relay processes on one PostgreSQL database: wake-ups, claims, idempotency and rate limits hold
across replicas, and a database restart loses no acknowledged message."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Databases, data, eventually, postgres_databases, unique

from parley.relay import record


class Replica:
    def __init__(self, data_dir: Path, database_url: str, **settings: str) -> None:
        # Port 0: the relay binds a free port itself and records it (two replicas started together could
        # otherwise be handed the same free port, and one would answer for the other).
        self.url = ""
        env = {**os.environ, "PARLEY_DATA": str(data_dir), "PARLEY_DATABASE_URL": database_url, **settings}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "parley", "serve", "--port", "0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.data_dir = data_dir

    def wait_ready(self) -> Replica:
        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"replica exited: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            self.url = record.recorded_url(self.data_dir) or ""
            try:
                return bool(self.url) and httpx.get(f"{self.url}/health").status_code == 200
            except httpx.HTTPError:
                return False

        eventually(healthy, timeout=60, what="replica up")
        self.admin_token = (self.data_dir / "admin.token").read_text().strip()
        return self

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Admin-Token": self.admin_token}, timeout=30)

    def agent(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.stderr.close()  # type: ignore[union-attr]


@pytest.fixture
def postgres() -> Iterator[Databases]:
    databases = postgres_databases("the replica tests")
    yield databases
    databases.drop_all()


def _replicas(tmp_path: Path, postgres: Databases, **settings: str) -> tuple[Replica, Replica]:
    url = postgres.new()
    # Started together: the migration lock lets both apply (or skip) the migrations safely.
    a, b = Replica(tmp_path / "a", url, **settings), Replica(tmp_path / "b", url, **settings)
    return a.wait_ready(), b.wait_ready()


@pytest.fixture
def pair(tmp_path: Path, postgres: Databases) -> Iterator[tuple[Replica, Replica]]:
    a, b = _replicas(
        tmp_path,
        postgres,
        PARLEY_WRITE_BURST="100000",
        PARLEY_WRITE_RATE="10000",
        PARLEY_READ_BURST="100000",
        PARLEY_READ_RATE="10000",
    )
    yield a, b
    a.stop()
    b.stop()


def _mint(replica: Replica, name: str | None = None) -> str:
    with replica.admin() as admin:
        return str(data(admin.post("/admin/keys", json={"kind": "agent", "name": name or unique("agent")}))["key"])


def test_a_wait_on_one_replica_wakes_for_a_post_on_the_other(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    poster, waiter = _mint(a), _mint(b)  # keys minted on either replica work on both
    channel = unique("c")
    with a.agent(poster) as on_a, b.agent(waiter) as on_b:
        first = data(on_a.post("/api/v1/messages", json={"channel": channel, "content": "first"}))["message"]
        data(on_b.get("/api/v1/messages", params={"channel": channel}))  # join
        with concurrent.futures.ThreadPoolExecutor(1) as pool, b.admin() as admin_b:
            parked = pool.submit(on_b.get, "/api/v1/events", params={"since": first["id"], "wait": 30})
            eventually(lambda: data(admin_b.get("/admin/stats"))["parked_waits"] == 1, what="parked on B")
            sent = data(on_a.post("/api/v1/messages", json={"channel": channel, "content": "from A"}))["message"]
            page = data(parked.result(timeout=20))
    assert [m["id"] for m in page["messages"]] == [sent["id"]]


def test_a_revoke_on_one_replica_ends_a_wait_parked_on_the_other(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    name = unique("agent")
    victim, poster = _mint(a, name), _mint(a)
    channel = unique("c")
    with a.agent(poster) as on_a, b.agent(victim) as on_b:
        first = data(on_a.post("/api/v1/messages", json={"channel": channel, "content": "first"}))["message"]
        data(on_b.get("/api/v1/messages", params={"channel": channel}))  # join
        with concurrent.futures.ThreadPoolExecutor(1) as pool, a.admin() as admin_a, b.admin() as admin_b:
            parked = pool.submit(on_b.get, "/api/v1/events", params={"since": first["id"], "wait": 30})
            eventually(lambda: data(admin_b.get("/admin/stats"))["parked_waits"] == 1, what="parked on B")
            assert data(admin_a.post("/admin/keys/revoke", json={"target": name}))["revoked"] == 1
            data(on_a.post("/api/v1/messages", json={"channel": channel, "content": "after the revoke"}))
            answer = parked.result(timeout=20)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "key_revoked", answer.text


def test_mcp_over_http_works_on_either_replica(pair: tuple[Replica, Replica]) -> None:
    """``/mcp`` is stateless: a send through replica A's MCP endpoint is read through replica B's."""
    import anyio
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    a, b = pair
    key, channel = _mint(a), unique("mcp")

    async def call(replica: Replica, tool: str, arguments: dict[str, object]) -> str:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http,
            streamable_http_client(f"{replica.url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool(tool, arguments)
            assert not result.is_error  # type: ignore[union-attr]
            return "".join(part.text for part in result.content)  # type: ignore[union-attr]

    async def main() -> None:
        await call(a, "send_message", {"channel": channel, "content": "sent through A"})
        assert "sent through A" in await call(b, "read_messages", {"channel": channel})

    anyio.run(main)


def test_claims_across_replicas_have_one_winner(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    asker = _mint(a)
    claimers = [(a if i % 2 else b, _mint(a)) for i in range(30)]
    with a.agent(asker) as http:
        question = data(
            http.post("/api/v1/messages", json={"channel": unique("c"), "content": "who?", "expects_reply": "anyone"})
        )["message"]

    def claim(pair_: tuple[Replica, str]) -> int:
        replica, key = pair_
        with replica.agent(key) as http:
            return http.post(f"/api/v1/messages/{question['id']}/claim").status_code

    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        statuses = list(pool.map(claim, claimers))
    assert statuses.count(200) == 1 and statuses.count(409) == 29


def test_the_same_client_msg_id_on_both_replicas_is_stored_once(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    key = _mint(a)
    channel = unique("c")
    body = {"channel": channel, "content": "once", "client_msg_id": "retry-1"}

    def send(replica: Replica) -> dict[str, Any]:
        with replica.agent(key) as http:
            return dict(data(http.post("/api/v1/messages", json=body)))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, [a, b] * 4))
    assert len({r["message"]["id"] for r in results}) == 1
    assert sum(not r["replayed"] for r in results) == 1
    with b.agent(key) as http:
        assert len(data(http.get("/api/v1/messages", params={"channel": channel}))["messages"]) == 1


def test_rate_limits_hold_across_replicas(tmp_path: Path, postgres: Databases) -> None:
    a, b = _replicas(tmp_path, postgres, PARLEY_WRITE_BURST="4", PARLEY_WRITE_RATE="0.01")
    try:
        key = _mint(a)
        with a.agent(key) as on_a, b.agent(key) as on_b:
            statuses = [
                (on_a if i % 2 else on_b)
                .post("/api/v1/messages", json={"channel": "c-rl", "content": f"{i}"})
                .status_code
                for i in range(6)
            ]
        assert statuses == [201, 201, 201, 201, 429, 429]
    finally:
        a.stop()
        b.stop()


def test_a_database_restart_loses_no_acknowledged_message(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    key = _mint(a)
    channel = unique("c")
    acknowledged: list[int] = []
    refused = 0
    stop = threading.Event()

    def sender(replica: Replica, tag: str) -> None:
        nonlocal refused
        with replica.agent(key) as http:
            n = 0
            while not stop.is_set():
                body = {"channel": channel, "content": f"{tag}-{n}", "client_msg_id": f"{tag}-{n}"}
                try:
                    response = http.post("/api/v1/messages", json=body)
                except httpx.HTTPError:
                    continue  # retry the same client_msg_id
                if response.status_code in (200, 201):
                    acknowledged.append(response.json()["data"]["message"]["id"])
                    n += 1
                elif response.status_code == 503:
                    refused += 1  # told to retry: the same client_msg_id goes again
                else:
                    raise AssertionError(response.text)

    threads = [
        threading.Thread(target=sender, args=(replica, f"{replica.data_dir.name}-{i}"))
        for replica in (a, b)
        for i in range(2)
    ]
    for t in threads:
        t.start()
    eventually(lambda: len(acknowledged) >= 20, what="traffic before the restart")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiter_key = _mint(a)
        with b.agent(waiter_key) as waiting:
            parked = pool.submit(waiting.get, "/api/v1/events", params={"wait": 50})
            _restart_postgres()
            answered = parked.result(timeout=60)  # the parked wait ended instead of hanging
            assert answered.status_code in (200, 503)
    before = len(acknowledged)
    eventually(lambda: len(acknowledged) >= before + 20, timeout=60, what="traffic after the restart")
    stop.set()
    for t in threads:
        t.join(timeout=60)
    with a.agent(key) as http:
        stored: list[int] = []
        cursor = 0
        while True:
            page = data(http.get("/api/v1/messages", params={"channel": channel, "since": cursor, "limit": 200}))
            stored += [m["id"] for m in page["messages"]]
            cursor = page["cursor"]
            if not page["has_more"]:
                break
    assert sorted(set(acknowledged)) == sorted(acknowledged)  # no duplicate acknowledgements
    assert set(acknowledged) <= set(stored) and len(stored) == len(set(stored)) == len(acknowledged)


def _restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )
