"""The HTTP connection: uvicorn's h11 protocol with the guards a relay open to a network needs.

- A request must keep arriving: a connection that sends nothing, or stops halfway through its headers or
  body, for ``read_timeout`` seconds is answered 408 and closed (a thousand half-sent requests cannot hold
  the relay's file descriptors). A parked wait is not affected: its request has fully arrived.
- A request that is not HTTP is answered in the relay's one error shape, not uvicorn's plain text.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from parley.relay.errors import BadRequest, RelayError


class GuardedH11Protocol(H11Protocol):
    read_timeout = 15.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._arm_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        super().connection_lost(exc)

    def _arm_read_timer(self) -> None:
        """Waiting for (the rest of) a request: it must arrive in time. Otherwise there is nothing to time."""
        self._cancel_read_timer()
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self._read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None and self.conn.our_state is h11.IDLE:
            failure = RelayError(
                f"the request did not arrive within {self.read_timeout:g} s; send it whole", code="request_timeout"
            )
            failure.status = 408
            self._send_error(failure)
        else:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        self._send_error(BadRequest(f"{msg} Send HTTP/1.1 requests; GET / explains the API.", code="invalid_http"))

    def _send_error(self, failure: RelayError) -> None:
        body = json.dumps(failure.body()).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            for event in (h11.Response(status_code=failure.status, headers=headers), h11.Data(data=body)):
                self.transport.write(self.conn.send(event))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            pass  # the connection is past answering; just close it
        self.transport.close()
