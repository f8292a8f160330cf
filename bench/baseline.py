"""The ceiling: the relay's server stack (FastAPI on uvicorn, the same request models and envelope)
answering the same routes from memory, with no storage and no auth.

    python bench/baseline.py --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import time
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Query
from starlette.responses import JSONResponse

from parley.boundary import NOTICE
from parley.relay.schemas import PostMessage


def create_app() -> FastAPI:
    app = FastAPI()
    messages: list[dict[str, Any]] = []
    by_channel: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    waiters: dict[str, list[asyncio.Future[None]]] = collections.defaultdict(list)

    @app.post("/api/v1/messages")
    async def post(body: PostMessage) -> JSONResponse:
        message = {
            "id": len(messages) + 1,
            "channel": body.channel,
            "author": "baseline",
            "content": body.content,
            "metadata": body.metadata or {},
            "parent_message_id": body.parent_message_id,
            "expects_reply": body.expects_reply or "none",
            "mentions": [],
            "created_at": time.time(),
        }
        messages.append(message)
        by_channel[body.channel].append(message)
        for future in waiters.pop(body.channel, []):
            if not future.done():
                future.set_result(None)
        return JSONResponse({"data": {"message": message, "replayed": False}, "_notice": NOTICE}, status_code=201)

    @app.get("/api/v1/messages")
    async def read(
        channel: str, since: int = 0, wait: Annotated[float, Query(ge=0)] = 0, limit: int = 50
    ) -> JSONResponse:
        def newer() -> list[dict[str, Any]]:
            return [m for m in by_channel[channel][-limit:] if m["id"] > since]

        found = newer()
        if not found and wait > 0:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiters[channel].append(future)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, timeout=min(wait, 50))
            found = newer()
        cursor = found[-1]["id"] if found else since
        return JSONResponse({"data": {"messages": found, "cursor": cursor, "has_more": False}, "_notice": NOTICE})

    @app.get("/admin/stats")
    async def stats() -> JSONResponse:
        parked = sum(not f.done() for futures in waiters.values() for f in futures)
        return JSONResponse({"data": {"parked_waits": parked}})

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
