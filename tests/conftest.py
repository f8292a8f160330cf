"""Real relays on loopback ports, and helpers to act as agents and as the operator."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from parley.relay.server import RelayServer, build_server
from parley.relay.settings import Settings

# Generous limits for the shared relay, so only the rate-limit tests meet them.
RELAXED = {"write_burst": 100_000, "write_rate": 10_000.0, "read_burst": 100_000, "read_rate": 10_000.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Every error has one shape: {"error": {"code": str, "message": str, ...}} and the right status."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and len(body["error"]["message"]) > 10
    if code is not None:
        assert body["error"]["code"] == code, body
    return dict(body["error"])


def data(response: httpx.Response, status: int | tuple[int, ...] = (200, 201)) -> Any:
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text)
    body = response.json()
    assert "other agents" in body["_notice"]
    return body["data"]


@dataclasses.dataclass
class Relay:
    url: str
    settings: Settings
    server: RelayServer
    thread: threading.Thread
    admin_token: str
    clients: list[httpx.Client] = dataclasses.field(default_factory=list)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Admin-Token": self.admin_token}, timeout=30)

    def mint(self, **body: Any) -> str:
        with self.admin() as client:
            return str(data(client.post("/admin/keys", json=body))["key"])

    def agent(self, name: str | None = None, **invite: Any) -> Agent:
        """A new agent with its own agent key (``channels=[...]``, ``expires=...`` limit it)."""
        name = name or unique("agent")
        key = self.mint(kind="agent", name=name, **invite)
        return Agent(self, name, key)

    def client(self, key: str, name: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"}
        if name:
            headers["x-agent-name"] = name
        client = httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)
        self.clients.append(client)
        return client

    def stats(self) -> dict[str, Any]:
        with self.admin() as client:
            return dict(data(client.get("/admin/stats")))

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.server.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "relay did not stop"


@dataclasses.dataclass
class Agent:
    relay: Relay
    name: str
    key: str

    def __post_init__(self) -> None:
        self.http = self.relay.client(self.key)

    def post(self, channel: str, content: str, **fields: Any) -> dict[str, Any]:
        return dict(
            data(self.http.post("/api/v1/messages", json={"channel": channel, "content": content, **fields}))["message"]
        )

    def dm(self, target: str, content: str, **fields: Any) -> dict[str, Any]:
        return dict(
            data(self.http.post("/api/v1/dm", json={"target_agent": target, "content": content, **fields}))["message"]
        )

    def read(self, channel: str, **params: Any) -> dict[str, Any]:
        return dict(data(self.http.get("/api/v1/messages", params={"channel": channel, **params})))

    def events(self, **params: Any) -> dict[str, Any]:
        return dict(data(self.http.get("/api/v1/events", params=params)))

    def get(self, path: str, **params: Any) -> Any:
        return data(self.http.get(path, params=params))


def start_relay(data_dir: Path, **overrides: Any) -> Relay:
    settings = Settings(data_dir=data_dir, **{**RELAXED, **overrides})
    port = free_port()
    server = build_server(settings, "127.0.0.1", port, quiet=True)
    thread = threading.Thread(target=server.run, name=f"relay-{port}", daemon=True)
    thread.start()
    eventually(lambda: server.started or not thread.is_alive(), what="relay start")
    assert server.started, "relay failed to start"
    return Relay(f"http://127.0.0.1:{port}", settings, server, thread, server.relay.admin_token)


@pytest.fixture(scope="session")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    """One relay shared by the tests that need no special settings; tests use unique names."""
    running = start_relay(tmp_path_factory.mktemp("relay"))
    yield running
    running.stop()


@pytest.fixture
def fresh_relay(tmp_path: Path) -> Iterator[Callable[..., Relay]]:
    """Start relays with their own settings and data directory; all stopped after the test."""
    started: list[Relay] = []

    def start(data_dir: Path | None = None, **overrides: Any) -> Relay:
        running = start_relay(data_dir or tmp_path / unique("data"), **overrides)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()
