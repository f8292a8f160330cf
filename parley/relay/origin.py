"""Writes from a browser are taken only from the relay's own pages.

Every port of a host is the same *site* to a browser, so a page that a dev server on 127.0.0.1:5173 serves
could otherwise post to the relay on 127.0.0.1:8765. A browser says where a request comes from
(``Sec-Fetch-Site``, ``Origin``); a request that changes state and comes from anywhere but the relay's own
origin is refused before any route sees it. Agents and scripts send neither header and are not affected.
``/mcp`` checks Origin itself (the MCP SDK's DNS-rebinding protection).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from parley.relay.errors import Forbidden
from parley.relay.responses import error

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cross_origin(headers: dict[bytes, bytes]) -> Forbidden | None:
    """The refusal of a request from another origin, or None."""
    site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
    origin = headers.get(b"origin")
    host = headers.get(b"host", b"").decode("latin-1").lower()
    foreign = site in ("cross-site", "same-site")
    if origin is not None:
        netloc = urlsplit(origin.decode("latin-1").lower()).netloc
        foreign = foreign or not netloc or netloc != host
    if not foreign:
        return None
    return Forbidden(
        "this request came from a page of another origin; only the relay's own pages may change anything here",
        code="cross_origin",
    )


class SameOrigin:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS and scope["path"] != "/mcp":
            refusal = cross_origin(dict(scope["headers"]))
            if refusal is not None:
                await error(refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)
