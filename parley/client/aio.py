"""``parley.AsyncClient``: the same calls as ``Client``, driven on httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import ParamSpec, TypeVar

from parley.extras import missing

try:
    import httpx
except ImportError as exc:
    raise missing("async", "parley.AsyncClient", exc) from exc

from parley import env
from parley.client import calls
from parley.client import records as r
from parley.client.errors import ParleyError
from parley.client.follow import Follow
from parley.client.methods import Methods
from parley.client.transport import Response, TransportError
from parley.limits import DEFAULT_MAX_WAIT_SECONDS
from parley.sealed.keyring import Keyring, link_for, take_link
from parley.sealed.sealer import Sealer

T = TypeVar("T")
P = ParamSpec("P")

#: Seconds to connect to the relay (a relay that is up answers in milliseconds; one that is away, never).
CONNECT_TIMEOUT = 10.0


async def drive(
    steps: calls.Steps[T],
    http: httpx.AsyncClient,
    base_url: str,
    sleep: Callable[[float], Awaitable[None]],
    connect_timeout: float = CONNECT_TIMEOUT,
) -> T:
    """Run steps on httpx (the async client and the async executor); connecting may take ``connect_timeout``."""
    try:
        step = next(steps)
        while True:
            if isinstance(step, calls.Sleep):
                await sleep(step.seconds)
                step = steps.send(None)
                continue
            outcome: Response | TransportError
            try:
                timeout = httpx.Timeout(step.timeout, connect=min(step.timeout, connect_timeout))
                answer = await http.request(
                    step.method, base_url + step.path, headers=step.headers, content=step.body, timeout=timeout
                )
                headers = {k.lower(): v for k, v in answer.headers.items()}
                outcome = Response(answer.status_code, headers, answer.content)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                outcome = TransportError(f"the request to the relay failed: {exc!r}", sent=sent)
            step = steps.send(outcome)
    except StopIteration as done:
        result: T = done.value
        return result


class AsyncClient(Methods):
    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        name: str | None = None,
        *,
        admin_token: str | None = None,
        timeout: float = calls.DEFAULT_TIMEOUT,
        retries: int = 4,
        http: httpx.AsyncClient | None = None,
        keyring: Keyring | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.url, key, name = env.client(url, key, name)
        self.timeout, self.retries, self.connect_timeout = timeout, retries, connect_timeout
        self.http = http or httpx.AsyncClient()
        self.headers = calls.agent_headers(key, name, admin_token=admin_token)
        self.sealer = Sealer(keyring or Keyring(), me=name)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, call: calls.Call[T]) -> T:
        steps = call.steps(self.headers, self.timeout, self.retries, self.sealer)
        return await drive(steps, self.http, self.url, asyncio.sleep, self.connect_timeout)

    def link(self, channel: str) -> str:
        """The join link of a sealed channel whose key you hold (it carries the key: share it privately)."""
        return link_for(self.sealer.keyring, self.url, channel)

    async def join_link(self, link: str, *, rotate: bool = False) -> r.Channel:
        """Keep the key a join link carries, and join its channel (``rotate``: take a key other than the one
        held, see ``take_link``)."""
        return await self.join(take_link(self.sealer.keyring, link, rotate=rotate))

    async def follow(
        self, since: int | None = None, *, wait: float = DEFAULT_MAX_WAIT_SECONDS
    ) -> AsyncIterator[r.Message]:
        """Every message for you, forever, from ``since`` (default: now); see ``Client.follow``."""
        follow = Follow(since if since is not None else (await self.me()).cursor, wait)
        while True:
            try:
                messages = follow.answered(await self.call(follow.call()))
            except ParleyError as exc:
                await asyncio.sleep(follow.failed(exc))
                continue
            for message in messages:
                yield message
