"""The two response shapes: ``{"data": ..., "_notice": ...}`` and ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.responses import JSONResponse

from parley.boundary import NOTICE
from parley.relay.errors import BadRequest, RelayError, Unprocessable
from parley.relay.ratelimit import Budget
from parley.relay.schemas import CUSTOM_CODES


def ok(data: Any, *, status: int = 200, budget: Budget | None = None, write: bool = False) -> JSONResponse:
    body: dict[str, Any] = {"_agentchat": "response", "_notice": NOTICE, "data": data}
    headers = budget.headers() if budget else {}
    if write and budget is not None:
        body["rate_limit"] = budget.to_dict()
    return JSONResponse(body, status_code=status, headers=headers)


def error(exc: RelayError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())


def invalid(errors: Sequence[Any]) -> RelayError:
    """One error for pydantic's list: 400 for unreadable JSON, else 422 naming each bad field.

    Our own validators raise with their own error type (``content_too_long``...); it becomes the code.
    """
    if any(e.get("type") == "json_invalid" for e in errors):
        return BadRequest("the request body is not valid JSON", code="invalid_json")
    parts, code = [], "invalid_request"
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body",)]
        where = ".".join(loc[1:]) if loc and loc[0] in ("query", "header", "path") else ".".join(loc)
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
        if code == "invalid_request" and e.get("type") in CUSTOM_CODES:
            code = e["type"]
    if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors):
        parts = ["the request needs a JSON body"]
    return Unprocessable("; ".join(parts), code=code)
