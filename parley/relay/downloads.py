"""Downloads that cannot be turned into a memory or connection exhaustion.

A file is streamed from the store a chunk at a time (never held whole), each chunk must be taken by the
reader within ``Settings.download_stall_seconds`` or the connection is closed, and one key has at most
``limits.MAX_DOWNLOADS_PER_KEY`` downloads running on a relay at once. A stalled reader therefore holds one
chunk and the server's small write buffer, for a bounded time, and a key cannot hold many.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Callable, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from parley import limits
from parley.relay.errors import RateLimited

log = logging.getLogger("parley.relay")


class Downloads:
    """The downloads running on this relay, per rate bucket (a key, or a machine key's names together)."""

    def __init__(self, most: int = limits.MAX_DOWNLOADS_PER_KEY) -> None:
        self.most = most
        self.running: collections.Counter[int] = collections.Counter()

    def start(self, bucket: int) -> Callable[[], None]:
        """Count a download for ``bucket`` (or refuse it); the function that ends it."""
        if self.running[bucket] >= self.most:
            raise RateLimited(
                f"you have {self.most} downloads running; finish one before starting another",
                retry_after=1,
                code="too_many_downloads",
            )
        self.running[bucket] += 1
        ended = False

        def end() -> None:
            nonlocal ended
            if not ended:
                ended = True
                self.running[bucket] -= 1
                if self.running[bucket] <= 0:
                    del self.running[bucket]

        return end


class FileStream(Response):
    """A file's bytes, chunk by chunk, with its length known up front."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        size: int,
        media_type: str,
        headers: Mapping[str, str],
        on_close: Callable[[], None],
        stall_seconds: float,
    ) -> None:
        # Not Response.__init__: it would render a body and count its length.
        self.chunks, self.on_close, self.stall_seconds = chunks, on_close, stall_seconds
        self.status_code, self.media_type, self.background, self.body = 200, media_type, None, b""
        self.init_headers({**headers, "content-length": str(size)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self.chunks:
                message = {"type": "http.response.body", "body": chunk, "more_body": True}
                try:
                    await asyncio.wait_for(send(message), self.stall_seconds)
                except asyncio.TimeoutError:
                    log.info("a download reader took nothing for %.0f s; closing its connection", self.stall_seconds)
                    return  # an unfinished response: the server closes the connection
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.on_close()
            aclose = getattr(self.chunks, "aclose", None)
            if aclose is not None:
                await aclose()
