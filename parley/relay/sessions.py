"""A signed-in page's credentials: the key in an HttpOnly cookie, and the CSRF token its writes must echo."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from parley.relay.errors import Forbidden

KEY_COOKIE, NAME_COOKIE, CSRF_COOKIE, ADMIN_COOKIE = "parley_key", "parley_name", "parley_csrf", "parley_admin"
CSRF_HEADER = "x-parley-csrf"


def cookie_credentials(request: Request) -> tuple[str, str | None] | None:
    """The key (and name) of a signed-in page, if the request is one; its writes must carry the CSRF token."""
    key = request.cookies.get(KEY_COOKIE)
    if not key:
        return None
    check_csrf(request)
    return key, request.cookies.get(NAME_COOKIE) or None


def check_csrf(request: Request, sent: str | None = None) -> None:
    if request.method in ("GET", "HEAD"):
        return
    expected = request.cookies.get(CSRF_COOKIE, "")
    given = sent if sent is not None else request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("this request from the page lacks its CSRF token; reload the page", code="csrf_failed")


def admin_cookie(request: Request) -> str | None:
    """The admin token a signed-in operator page holds (its writes checked for CSRF)."""
    token = request.cookies.get(ADMIN_COOKIE)
    if token:
        check_csrf(request)
    return token
