"""Run the relay under uvicorn, answering parked long-polls at once when asked to stop."""

from __future__ import annotations

import asyncio
import types

import uvicorn

from parley.relay.app import create_app
from parley.relay.context import Relay
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
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: types.FrameType | None) -> None:
        self.stop()
        super().handle_exit(sig, frame)
        # uvicorn re-raises the signal after shutting down; a clean stop exits 0 instead.
        self._captured_signals.clear()

    def stop(self) -> None:
        """Thread-safe: answer parked waits, then let uvicorn shut down."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.relay.hub.close)
        self.should_exit = True


def build_server(settings: Settings, host: str, port: int, *, quiet: bool = False) -> RelayServer:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning" if quiet else "info",
        access_log=not quiet,
        lifespan="on",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    return RelayServer(config, app.state.relay)
