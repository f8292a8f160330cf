"""The relay's error hierarchy. Every error a client sees is one of these, rendered in one shape:

    {"error": {"code": "channel_not_found", "message": "...", ...extra}}

    RelayError (500 internal_error)
    ├── BadRequest (400)
    ├── Unauthorized (401)
    ├── Forbidden (403)
    ├── NotFound (404)
    ├── Conflict (409)
    ├── PayloadTooLarge (413)
    ├── Unprocessable (422)
    ├── RateLimited (429, Retry-After)
    ├── Unavailable (503, Retry-After)
    └── InsufficientStorage (507)

Stores raise these; anything else escaping a store is a bug and becomes a logged 500.
"""

from __future__ import annotations

from typing import Any


class RelayError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}

    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(RelayError):
    status = 400
    code = "bad_request"


class Unauthorized(RelayError):
    status = 401
    code = "unauthorized"


class Forbidden(RelayError):
    status = 403
    code = "forbidden"


class NotFound(RelayError):
    status = 404
    code = "not_found"


class MethodNotAllowed(RelayError):
    status = 405
    code = "method_not_allowed"


class Conflict(RelayError):
    status = 409
    code = "conflict"


class PayloadTooLarge(RelayError):
    status = 413
    code = "payload_too_large"


class Unprocessable(RelayError):
    status = 422
    code = "invalid_request"


class _RetryLater(RelayError):
    def __init__(self, message: str, *, retry_after: int, code: str | None = None, **extra: Any) -> None:
        super().__init__(message, code=code, retry_after=retry_after, **extra)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimited(_RetryLater):
    status = 429
    code = "rate_limited"


class Unavailable(_RetryLater):
    status = 503
    code = "unavailable"


class InsufficientStorage(RelayError):
    status = 507
    code = "insufficient_storage"


def too_slow(seconds: float) -> Unavailable:
    """A costly read (a search) stopped at its time limit."""
    return Unavailable(
        f"this took longer than {seconds:g} s and was stopped; use rarer words or a ?channel=",
        retry_after=1,
        code="too_slow",
    )


def unstorable(exc: Exception) -> Unprocessable:
    """A value the database refuses to encode (a lone surrogate, a NUL byte) is the client's error."""
    return Unprocessable(f"the request holds a value the database cannot store: {exc}", code="invalid_value")
