"""Assemble the relay: store, hub, presence, limits, routes, one error shape, body limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from parley.extras import missing

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:
    raise missing("server", "the relay", exc) from exc

from parley import __version__, limits
from parley.relay import admin, agentchat, api, context, dashboard, docs, guide, openapi
from parley.relay.admin_token import load_or_create_admin_token
from parley.relay.context import Relay
from parley.relay.direct import DirectRoutes
from parley.relay.errors import MethodNotAllowed, NotFound, PayloadTooLarge, RelayError
from parley.relay.hub import Hub
from parley.relay.mcp_endpoint import McpEndpoint
from parley.relay.metrics import Metrics, MetricsMiddleware
from parley.relay.origin import SameOrigin
from parley.relay.presence import Presence
from parley.relay.responses import error, invalid
from parley.relay.settings import Settings
from parley.relay.store import sql
from parley.relay.store.base import Store

log = logging.getLogger("parley.relay")

PRESENCE_FLUSH_SECONDS = 10.0
# A 10 MB file sent as base64 JSON is about 13.4 MB.
FILE_BODY_BYTES = limits.MAX_FILE_BYTES * 4 // 3 + 65_536


class BodyLimit:
    """Refuse request bodies over the limit with a 413 before (or while) reading them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = FILE_BODY_BYTES if scope["path"] in ("/api/v1/files", "/api/files") else limits.MAX_BODY_BYTES
        too_large = PayloadTooLarge(
            f"the request body is larger than {limit} bytes; upload big content as a file (POST /api/v1/files)",
            code="body_too_large",
        )
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await error(too_large)(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large
            return message

        await self.app(scope, limited, send)


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    if store is None:
        store = open_store(settings)
    hub = Hub()
    relay = Relay(
        settings=settings,
        store=store,
        hub=hub,
        presence=Presence(hub, settings.online_window),
        admin_token=load_or_create_admin_token(settings.admin_token_path),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await relay.store.start(hub)
        flusher = asyncio.create_task(_flush_presence(relay))
        try:
            async with mcp.running():
                yield
        finally:
            hub.close()
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await _record_seen(relay)
            await relay.store.close()

    # The routes go in directly rather than through include_router: FastAPI's included routers
    # re-match every route on every request, which costs the send path measurably (bench/).
    app = FastAPI(
        title="parley relay",
        version=__version__,
        lifespan=lifespan,
        redoc_url=None,
        docs_url=None,
        routes=[*api.router.routes, *agentchat.router.routes, *admin.router.routes],
    )
    app.state.relay = relay
    openapi.install(app)
    mcp = McpEndpoint(app, settings.mcp_allowed_hosts)
    app.router.routes.append(Route("/mcp", mcp, methods=["GET", "POST", "DELETE"], include_in_schema=False))
    app.router.routes.extend(dashboard.routes())
    app.add_exception_handler(RelayError, _relay_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(
        DirectRoutes, relay_app=app, endpoints={("POST", "/api/v1/messages"): api.post_message}, on_error=_failed
    )
    app.add_middleware(BodyLimit)
    app.add_middleware(SameOrigin)
    metrics = Metrics(hub)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        """Prometheus text format: requests and latencies by route, messages, waits, refusals, errors."""
        if not settings.public_metrics:
            await context.admin(request, request.headers.get("x-admin-token"))
        return metrics.render()

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        if dashboard.wants_page(request):
            return dashboard.page()
        built = guide.build(str(request.base_url), api.router.routes, settings)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(built)
        return PlainTextResponse(guide.markdown(built), media_type="text/markdown")

    app.add_route("/docs", lambda request: docs.page(), include_in_schema=False)
    app.add_route("/docs.js", lambda request: docs.script(), include_in_schema=False)
    app.add_route("/docs.css", lambda request: docs.style(), include_in_schema=False)

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return app


def open_store(settings: Settings) -> Store:
    """PostgreSQL when a database URL is set, else the embedded SQLite store."""
    if settings.database_url:
        from parley.relay.store.postgres import PostgresStore

        return PostgresStore(settings)
    from parley.relay.store.sqlite import SQLiteStore

    return SQLiteStore(settings)


async def _flush_presence(relay: Relay) -> None:
    while True:
        await asyncio.sleep(PRESENCE_FLUSH_SECONDS)
        try:
            await _record_seen(relay)
        except RelayError:
            log.warning("could not record presence; will retry", exc_info=True)


async def _record_seen(relay: Relay) -> None:
    seen = relay.presence.take_unflushed()
    if seen:
        await relay.store.write(sql.record_seen, seen)


async def _relay_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RelayError)
    return error(exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error(invalid(exc.errors()))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc.__cause__, RelayError):  # raised while FastAPI read the body (BodyLimit)
        return error(exc.__cause__)
    if exc.status_code == 404:
        failure: RelayError = NotFound(
            f"no endpoint {request.method} {request.url.path}; GET / lists them", code="no_such_endpoint"
        )
    else:
        failure = RelayError(str(exc.detail), code="http_error")
        failure.status = exc.status_code
        if exc.status_code == 405:
            failure = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    return error(failure)


async def _failed(request: Request, exc: Exception) -> Response:
    """A directly answered route's error (``direct.py``), as the exception handlers below answer it."""
    return error(exc) if isinstance(exc, RelayError) else await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error(RelayError("the relay failed on this request; it has been logged", code="internal_error"))
