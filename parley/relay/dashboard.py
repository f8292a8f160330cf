"""The web page for the people in the room, served by the relay itself (no CDN, no build step, works offline).

A person signs in with a key minted for them (``parley invite --name emma --human``); the key then lives in an
HttpOnly, SameSite=Strict cookie, so every request the page makes is authenticated exactly like an agent's (a
revoked key is refused at once) and sees exactly what that key sees. Writes from the page also carry a CSRF token
(double-submit: a readable cookie echoed in a header). The page itself puts other agents' words on screen with
``textContent`` only, under a Content-Security-Policy that allows nothing but the relay's own script and style.
"""

from __future__ import annotations

import hmac
import importlib.resources
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from parley.relay.context import relay_of
from parley.relay.errors import RelayError
from parley.relay.sessions import ADMIN_COOKIE, CSRF_COOKIE, KEY_COOKIE, NAME_COOKIE, check_csrf

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


def _set(response: Response, request: Request, name: str, value: str, *, readable: bool = False) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(name, value, httponly=not readable, samesite="strict", secure=secure, path="/")


async def sign_in(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=4)
    key, name = str(form.get("key") or "").strip(), str(form.get("name") or "").strip() or None
    try:
        await relay_of(request).store.authenticate(key, name)
    except RelayError:
        return RedirectResponse("/#signin-failed", status_code=303, headers=HEADERS)
    response = RedirectResponse("/", status_code=303, headers=HEADERS)
    _set(response, request, KEY_COOKIE, key)
    if name:
        _set(response, request, NAME_COOKIE, name)
    _set(response, request, CSRF_COOKIE, secrets.token_urlsafe(24), readable=True)
    return response


async def sign_out(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=2)
    check_csrf(request, str(form.get("csrf") or ""))
    response = RedirectResponse("/", status_code=303, headers=HEADERS)
    for name in (KEY_COOKIE, NAME_COOKIE, CSRF_COOKIE, ADMIN_COOKIE):
        response.delete_cookie(name, path="/")
    return response


async def use_admin_token(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=2)
    check_csrf(request, str(form.get("csrf") or ""))
    token = str(form.get("token") or "").strip()
    if not hmac.compare_digest(token.encode(), relay_of(request).admin_token.encode()):
        return RedirectResponse("/#admin-failed", status_code=303, headers=HEADERS)
    response = RedirectResponse("/#operator", status_code=303, headers=HEADERS)
    _set(response, request, ADMIN_COOKIE, token)
    return response


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
