"""A loopback proxy in front of a real relay that misbehaves on cue: it drops the connection after
the relay has answered (so the answer is lost), or answers 503 itself. Faults are used up in order;
once none are left it passes everything through."""

from __future__ import annotations

import http.client
import socket
import threading
from collections import deque
from urllib.parse import urlsplit

DROP_AFTER_FORWARD = "drop-after-forward"  # the relay acted, the client never hears
DROP_BEFORE_FORWARD = "drop-before-forward"  # nothing reached the relay
ANSWER_503 = "answer-503"
HOLD = "hold"  # keep the request until ``release()``: a relay that is very slow


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults: deque[str] = deque()
        self.requests = 0
        self.connections = 0
        self.holding = threading.Event()  # set while a request is held
        self._gate = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._gate.set()

    def close(self) -> None:
        self.release()
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        upstream = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            while True:
                request_line = reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (line := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip()] = value.strip()
                body = reader.read(int(headers.get("Content-Length", "0") or 0))
                self.requests += 1
                fault = self.faults.popleft() if self.faults else None
                if fault == DROP_BEFORE_FORWARD:
                    return
                if fault == HOLD:
                    self.holding.set()
                    self._gate.wait()
                if fault == ANSWER_503:
                    payload = b'{"error":{"code":"unavailable","message":"injected fault: try again"}}'
                    client.sendall(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 0\r\n"
                        b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
                    )
                    continue
                upstream.request(method, path, body=body or None, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                if fault == DROP_AFTER_FORWARD:
                    return
                head = [f"HTTP/1.1 {response.status} {response.reason}"]
                head += [f"{k}: {v}" for k, v in response.getheaders() if k.lower() not in ("transfer-encoding",)]
                client.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        except OSError:
            return
        finally:
            upstream.close()
            reader.close()
            client.close()
