"""``parley.Client``: the relay's whole API as typed methods. Standard library only.

    with Client("http://127.0.0.1:8765", key="pa_...") as client:
        client.post("build", "deployed", expects_reply="anyone")
        for message in client.follow():        # everything for me, forever, from now
            print(message.author, message.content)

Every send carries a ``client_msg_id`` and is retried safely (stored once); connection failures, timeouts and
5xx are retried with backoff (honouring Retry-After); a refusal raises ``ParleyError`` with the relay's code.
Without arguments the relay, key and name come from ``PARLEY_URL``/``PARLEY_KEY``/``PARLEY_NAME`` or the client
config file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from parley import env
from parley.client import calls
from parley.client import records as r
from parley.client.errors import ParleyError, RelayUnreachable
from parley.client.follow import Follow
from parley.client.methods import Methods
from parley.client.transport import KeepAliveTransport, Transport
from parley.limits import DEFAULT_MAX_WAIT_SECONDS
from parley.sealed.keyring import Keyring, link_for, take_link
from parley.sealed.sealer import Sealer

T = TypeVar("T")
P = ParamSpec("P")


class Client(Methods):
    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        name: str | None = None,
        *,
        admin_token: str | None = None,
        timeout: float = calls.DEFAULT_TIMEOUT,
        retries: int = 4,
        transport: Transport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        keyring: Keyring | None = None,
    ) -> None:
        self.url, key, name = env.client(url, key, name)
        self.timeout, self.retries, self._sleep = timeout, retries, sleep
        self.transport = transport or KeepAliveTransport(self.url)
        self.headers = calls.agent_headers(key, name, admin_token=admin_token)
        self.sealer = Sealer(keyring or Keyring(), me=name)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def call(self, call: calls.Call[T]) -> T:
        """Run one call (any of ``parley.client.calls``)."""
        steps = call.steps(self.headers, self.timeout, self.retries, self.sealer)
        return calls.drive(steps, self.transport, self._sleep)

    def link(self, channel: str) -> str:
        """The join link of a sealed channel whose key you hold (it carries the key: share it privately)."""
        return link_for(self.sealer.keyring, self.url, channel)

    def join_link(self, link: str, *, rotate: bool = False) -> r.Channel:
        """Keep the key a join link carries, and join its channel (``rotate``: take a key other than the one
        held, see ``take_link``)."""
        return self.join(take_link(self.sealer.keyring, link, rotate=rotate))

    def follow(self, since: int | None = None, *, wait: float = DEFAULT_MAX_WAIT_SECONDS) -> Iterator[r.Message]:
        """Every message for you, forever, from ``since`` (default: now). A relay that restarts or is busy is
        waited out; nothing is skipped or repeated (``parley.client.follow``)."""
        follow = Follow(since if since is not None else self.me().cursor, wait)
        while True:
            try:
                messages = follow.answered(self.call(follow.call()))
            except ParleyError as exc:
                self._sleep(follow.failed(exc))
                continue
            yield from messages


__all__ = ["Client", "ParleyError", "RelayUnreachable"]
