"""HTTP behind one method. Standard library only.

``Transport.handle`` sends one request and returns the response, or raises ``TransportError``
(nothing came back: refused, reset, timed out). The default keeps one ``http.client`` connection
per thread alive between calls, reconnecting when the relay has closed it.
"""

from __future__ import annotations

import dataclasses
import http.client
import threading
from typing import Protocol
from urllib.parse import urlsplit


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lowercased names
    body: bytes


class TransportError(Exception):
    """No response: the connection failed or timed out. ``sent`` says whether the request may have arrived."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class Transport(Protocol):
    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> Response: ...

    def close(self) -> None: ...


class KeepAliveTransport:
    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the relay URL must be http(s)://host[:port], not {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self.connections_opened = 0

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = kind(self._host, self._port, timeout=timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
                self.connections_opened += 1
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes | None, timeout: float) -> Response:
        # A kept-alive connection the relay has since closed fails on first use; that one
        # failure is retried here at once on a fresh connection, before anything else counts.
        for fresh in (False, True):
            conn = self._connection(timeout)
            reused = conn.sock is not None
            sent = False
            try:
                if conn.sock is None:
                    conn.connect()
                conn.sock.settimeout(timeout)
                conn.request(method, self._prefix + path, body=body, headers=headers)
                sent = True
                raw = conn.getresponse()
                data = raw.read()
                response = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, data)
                if raw.will_close:
                    self._drop()
                return response
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop()
                if reused and not fresh:
                    continue
                raise TransportError(f"the relay closed the connection ({exc})", sent=sent) from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                timed_out = isinstance(exc, TimeoutError)
                reason = "timed out" if timed_out else f"failed: {exc}"
                raise TransportError(f"the request to the relay {reason}", sent=sent) from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
