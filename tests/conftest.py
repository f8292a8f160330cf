"""Real relays on loopback ports, and helpers to act as agents and as the operator."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
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

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Look straight into the store's database (to check what is, and is not, stored)."""
        if self.settings.database_url:
            import psycopg

            with psycopg.connect(self.settings.database_url) as conn:
                return list(conn.execute(sql.encode()).fetchall())
        import sqlite3

        with sqlite3.connect(self.settings.database_path) as db:
            return list(db.execute(sql).fetchall())

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

    def private_channel(self, name: str = "priv") -> str:
        """Create a private channel; its full name (``<self>~<name>-...``)."""
        body = {"name": unique(name), "private": True}
        return str(data(self.http.post("/api/v1/channels", json=body))["channel"]["name"])

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
    eventually(lambda: server.started or not thread.is_alive(), timeout=60, what="relay start")
    assert server.started, "relay failed to start"
    return Relay(f"http://127.0.0.1:{port}", settings, server, thread, server.relay.admin_token)


@dataclasses.dataclass
class RelayProcess:
    """A relay in its own process: for what must be measured or limited per process (memory, file size)."""

    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path

    @classmethod
    def start(
        cls,
        data_dir: Path,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
        port: int | None = None,
    ) -> RelayProcess:
        port = port or free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "parley", "serve", "--port", str(port), "--data", str(data_dir)],
            env={**os.environ, **RELAXED_ENV, **(env or {})},
            preexec_fn=preexec_fn,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        running = cls(process, f"http://127.0.0.1:{port}", data_dir)

        def healthy() -> bool:
            assert process.poll() is None, "the relay exited"
            try:
                return httpx.get(f"{running.url}/health").status_code == 200
            except httpx.HTTPError:
                return False

        eventually(healthy, timeout=60, what="the relay")
        return running

    def agent(self, name: str) -> httpx.Client:
        token = (self.data_dir / "admin.token").read_text().strip()
        body = {"kind": "agent", "name": name}
        key = data(httpx.post(f"{self.url}/admin/keys", json=body, headers={"X-Admin-Token": token}))["key"]
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


RELAXED_ENV = {f"PARLEY_{name.upper()}": str(value) for name, value in RELAXED.items()}


# -- the two stores: every relay test runs against each ------------------------------------------

POSTGRES_ADMIN = os.environ.get("PARLEY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        psycopg.connect(POSTGRES_ADMIN, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES_ADMIN} is not reachable ({exc})"
    return None


class Databases:
    """Fresh PostgreSQL databases, one per relay (or per restart series), dropped at the end."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def new(self) -> str:
        import psycopg

        name = f"parley_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}".encode())
        self.created.append(name)
        return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            for name in self.created:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())
        self.created.clear()


def postgres_databases(what: str) -> Databases:
    """Fresh databases on the local PostgreSQL; without one, ``what`` is skipped, except in CI where it fails."""
    missing = _postgres_reachable()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run {what}: {missing}")
        pytest.skip(missing)
    return Databases()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[Databases | None]:
    """The store under test: every relay test runs against each."""
    if request.param == "sqlite":
        yield None
        return
    databases = postgres_databases("the PostgreSQL half")
    yield databases
    databases.drop_all()


def database_for(backend: Databases | None) -> dict[str, Any]:
    return {"database_url": backend.new()} if backend is not None else {}


@pytest.fixture(scope="session")
def relay(tmp_path_factory: pytest.TempPathFactory, backend: Databases | None) -> Iterator[Relay]:
    """One relay per store, shared by the tests that need no special settings; tests use unique names."""
    running = start_relay(tmp_path_factory.mktemp("relay"), **database_for(backend))
    yield running
    running.stop()


@pytest.fixture
def fresh_relay(tmp_path: Path, backend: Databases | None) -> Iterator[Callable[..., Relay]]:
    """Start relays with their own settings and store; all stopped after the test.

    ``fresh_relay(like=other)`` reopens another relay's data (a restart)."""
    started: list[Relay] = []

    def start(like: Relay | None = None, data_dir: Path | None = None, **overrides: Any) -> Relay:
        if like is not None:
            data_dir, store = like.settings.data_dir, {"database_url": like.settings.database_url}
        else:
            store = {} if "database_url" in overrides else database_for(backend)
        running = start_relay(data_dir or tmp_path / unique("data"), **{**store, **overrides})
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()
