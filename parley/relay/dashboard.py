"""The web page for the people in the room, served by the relay itself (no CDN, no build step, works offline).

A person signs in with a key minted for them (``parley invite --name emma --human``) and gets a session
(``sessions``): the page keeps it in its own origin's storage and sends it as a header, so every request is
authenticated exactly like an agent's (a revoked key is refused at once), sees exactly what that key sees, and
nothing the browser would send by itself (a cookie) can act as the person. Sign-in, like every write, is refused
from another origin (``SameOrigin``). The page puts other agents' words on screen with ``textContent`` only, under
a Content-Security-Policy that allows nothing but the relay's own script and style.
"""

from __future__ import annotations

import hmac
import importlib.resources
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from parley.relay import access, sessions
from parley.relay.api import parse
from parley.relay.context import Relay, relay_of, secret
from parley.relay.errors import Unauthorized, Unprocessable
from parley.relay.models import iso
from parley.relay.responses import ok
from parley.relay.schemas import AdminSignIn, SignIn
from parley.relay.store import sql

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_ASSETS = {"dashboard.js": "text/javascript", "sealed.js": "text/javascript", "dashboard.css": "text/css"}


def wants_page(request: Request) -> bool:
    """A browser (``Accept: text/html``) gets the page at ``/``; curl and model clients keep getting the guide."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


def _asset(name: str) -> str:
    return importlib.resources.files("parley.relay").joinpath("static").joinpath(name).read_text(encoding="utf-8")


def page() -> Response:
    return Response(_asset("dashboard.html"), media_type="text/html; charset=utf-8", headers=HEADERS)


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _ASSETS:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(_asset(name), media_type=_ASSETS[name], headers=HEADERS)


def _private(response: Response) -> Response:
    response.headers.update(HEADERS)  # no-store: a session token is never cached
    return response


async def sign_in(request: Request) -> Response:
    """A key (and a name, with a machine key) for a person session: the page keeps the session, never the key.
    The admin token with a name signs the operator in as a person of their own (made the first time), with an
    operator session too: one step, and the browser keeps neither the token nor a key."""
    form = await parse(request, SignIn)
    key, name = form.key.strip(), form.name.strip() or None
    relay = relay_of(request)
    store = relay.store
    if not key:
        raise Unauthorized("enter the key minted for you (parley invite --name you --human)", code="missing_key")
    operator = None
    if hmac.compare_digest(key.encode(), relay.admin_token.encode()):
        if name is None:
            raise Unprocessable("with the admin token, give your name: you act in the room as that person")
        digest = await store.write(sql.person_for_operator, name, welcome=relay.settings.welcome_channels)
        name, operator = None, await _operator_session(relay)
    else:
        digest = access.hash_key(key)
    caller = await store.authenticate(digest, name)
    token = sessions.new_token("person")
    expires = await store.write(sessions.start, access.hash_key(token), "person", digest, name)
    answer = {"session": token, "name": caller.name, "expires_at": iso(expires), "operator": operator}
    return _private(ok(answer))


async def _operator_session(relay: Relay) -> str:
    session = sessions.new_token("operator")
    admin_hash = access.hash_key(relay.admin_token)
    await relay.store.write(sessions.start, access.hash_key(session), "operator", admin_hash, None)
    return session


async def use_admin_token(request: Request) -> Response:
    """The admin token for a short-lived operator session; the browser never keeps the token itself."""
    relay = relay_of(request)
    token = (await parse(request, AdminSignIn)).token.strip()
    if not token or not hmac.compare_digest(token.encode(), relay.admin_token.encode()):
        raise Unauthorized("that is not this relay's admin token (see 'parley token')", code="invalid_admin_token")
    return _private(ok({"session": await _operator_session(relay)}))


async def sign_out(request: Request) -> Response:
    """End the page's sessions (its person session and any operator session) at once."""
    headers = request.headers
    sent = [headers.get(sessions.OPERATOR_HEADER, "").strip()]
    if headers.get("authorization"):
        sent.append(secret(headers["authorization"], None))
    digests = [access.hash_key(token) for token in sent if sessions.is_session(token)]
    ended = await relay_of(request).store.write(sessions.end, digests) if digests else 0
    return _private(ok({"ended": ended}))


async def dashboard(request: Request) -> Response:
    """The page at its own address too (join links of sealed channels point here, the key after ``#``)."""
    return page()


def routes() -> list[Any]:
    return [
        Route("/dashboard", dashboard, methods=["GET"]),
        Route("/app/session", sign_in, methods=["POST"]),
        Route("/app/signout", sign_out, methods=["POST"]),
        Route("/app/admin", use_admin_token, methods=["POST"]),
        Route("/app/{name}", asset, methods=["GET"]),
    ]
