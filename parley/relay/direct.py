"""The hottest route, answered beneath FastAPI's middleware and router.

Sending a message is most of a relay's traffic, and its handler already authenticates and parses its own
body (``api.post_message``). Between the relay's own middleware and that handler, Starlette's exception
middleware, FastAPI's exit-stack middleware, the router's walk of the route table and the endpoint's wrappers
measured a quarter of a send's CPU (``bench/ab.py``, docs/performance.md). This layer calls such a handler
directly, and answers its errors as the app's exception handlers do. The app keeps the route too: for its
OpenAPI, its guide, and anything not matched here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


class DirectRoutes:
    def __init__(
        self,
        app: ASGIApp,
        relay_app: Starlette,
        endpoints: dict[tuple[str, str], Endpoint],
        on_error: Callable[[Request, Exception], Awaitable[Response]],
    ) -> None:
        self.app, self.relay_app, self.endpoints, self.on_error = app, relay_app, endpoints, on_error
        self._routes: dict[tuple[str, str], BaseRoute | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = (scope.get("method", ""), scope.get("path", ""))
        endpoint = self.endpoints.get(key) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.relay_app
        scope["route"] = self._route(key)  # what the metrics label a request with
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            response = await self.on_error(request, exc)
        await response(scope, receive, send)

    def _route(self, key: tuple[str, str]) -> BaseRoute | None:
        if key not in self._routes:
            method, path = key
            self._routes[key] = next(
                (
                    route
                    for route in self.relay_app.router.routes
                    if isinstance(route, Route) and route.path == path and method in (route.methods or ())
                ),
                None,
            )
        return self._routes[key]
