"""Run the relay under uvicorn, answering parked long-polls at once when asked to stop."""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import time
import types

from parley.extras import missing

try:
    import uvicorn
except ImportError as exc:
    raise missing("server", "the relay", exc) from exc

from parley.relay import record
from parley.relay.app import create_app
from parley.relay.context import Relay
from parley.relay.protocol import GuardedH11Protocol
from parley.relay.settings import Settings


class RelayServer(uvicorn.Server):
    """uvicorn waits for open requests before shutting down; a parked wait would hold it for up to
    50 s, so on SIGINT/SIGTERM (or ``stop()``) the hub answers every wait first."""

    def __init__(self, config: uvicorn.Config, relay: Relay) -> None:
        super().__init__(config)
        self.relay = relay
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        try:
            await super().serve(sockets)  # type: ignore[arg-type]
        finally:
            if self.started:
                record.remove(self.relay.settings.data_dir)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.servers and self.servers[0].sockets:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            record.write(self.relay.settings.data_dir, f"http://{host}:{port}")

    def handle_exit(self, sig: int, frame: types.FrameType | None) -> None:
        # uvicorn's own first: one Ctrl-C is a graceful stop (the store closed in the lifespan's shutdown), a
        # second forces it. Setting should_exit before it would make the first count as the second.
        super().handle_exit(sig, frame)
        self._answer_waits()
        # uvicorn re-raises the signal after shutting down; a clean stop exits 0 instead.
        self._captured_signals.clear()

    def stop(self) -> None:
        """Thread-safe: answer parked waits, then let uvicorn shut down."""
        self._answer_waits()
        self.should_exit = True

    def _answer_waits(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.relay.hub.close)


class LogBudget(logging.Filter):
    """At most ``burst`` records per message template a minute; then one line says how many were dropped.
    A flood of bad requests must not fill the disk with the same warning."""

    def __init__(self, burst: int = 20, window: float = 60.0) -> None:
        super().__init__()
        self.burst, self.window = burst, window
        self._seen: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = f"{record.name}:{record.msg}"
        started, count = self._seen.get(key, (now, 0))
        if now - started > self.window:
            if count > self.burst:
                record.msg = f"{record.msg} (and {count - self.burst} more like it in the last minute, not logged)"
            started, count = now, 0
        self._seen[key] = (started, count + 1)
        if len(self._seen) > 10_000:
            self._seen.clear()
        return count < self.burst


def _raise_open_file_limit(wanted: int) -> None:
    """Parked waits are open connections: let the process hold as many as it is configured for."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def build_server(settings: Settings, host: str, port: int, *, quiet: bool = False) -> RelayServer:
    app = create_app(settings)
    protocol = type("RelayProtocol", (GuardedH11Protocol,), {"read_timeout": settings.read_timeout})
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        log_level="warning" if quiet else "info",
        access_log=not quiet,
        lifespan="on",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=5,
        limit_concurrency=settings.max_connections,
        server_header=False,
    )
    _raise_open_file_limit(settings.max_connections + 256)
    budget = LogBudget()
    for name in ("uvicorn.error", "uvicorn.access", "parley.relay"):
        if not any(isinstance(existing, LogBudget) for existing in logging.getLogger(name).filters):
            logging.getLogger(name).addFilter(budget)
    return RelayServer(config, app.state.relay)
