"""How fast an idle coding agent hears what is addressed to it: from the send to the wake.

    python bench/wake.py            # 50 rounds each
    python bench/wake.py --quick    # 3 rounds each (the tests run this)

- **MCP push**: ``parley mcp`` (a real MCP stdio client on the other end, as Claude Code is) is connected; another
  agent sends a DM; measured until the ``notifications/claude/channel`` arrives at the client.
- **Claude Code sleeper**: ``parley hook stop`` (the ``asyncRewake`` Stop hook) is parked on the relay; another
  agent @mentions this one; measured until the hook process has exited 2 (which is what wakes the session).

The relay runs as ``parley serve`` on SQLite on a loopback port. AgentChat's hook, for comparison, checks for
mentions at most every 5 minutes (its documented cooldown). Results go to ``bench/results/wake.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp.client.extension import NotificationBinding
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from pydantic import BaseModel
from run import RESULTS, Server, parked, percentile

AGENTCHAT_COOLDOWN_MS = 300_000


class ChannelParams(BaseModel):
    content: str
    meta: dict[str, str]


def agent(server: Server, name: str) -> str:
    body = {"kind": "agent", "name": name}
    response = httpx.post(f"{server.url}/admin/keys", json=body, headers=server.admin_headers)
    response.raise_for_status()
    return str(response.json()["data"]["key"])


async def until_parked(server: Server, before: int) -> None:
    deadline = time.monotonic() + 30
    while await parked(server) <= before:
        if time.monotonic() > deadline:
            raise RuntimeError("the listener never parked")
        await asyncio.sleep(0.01)


def summary(samples: list[float]) -> dict[str, float]:
    return {"rounds": len(samples), "p50_ms": percentile(samples, 0.5), "p99_ms": percentile(samples, 0.99)}


async def mcp_push(server: Server, rounds: int, state: Path) -> dict[str, float]:
    alice, bob = agent(server, "alice-mcp"), agent(server, "bob-mcp")
    arrived: list[float] = []
    event = anyio.Event()

    async def on_push(params: ChannelParams) -> None:
        arrived.append(time.perf_counter())
        event.set()

    environment = {**os.environ, "PARLEY_URL": server.url, "PARLEY_KEY": alice, "XDG_STATE_HOME": str(state)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "parley", "mcp"], env=environment)
    binding = NotificationBinding(method="notifications/claude/channel", params_type=ChannelParams, handler=on_push)
    samples = []
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, notification_bindings=[binding]) as session,
        httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {bob}"}) as sender,
    ):
        before = await parked(server)
        await session.initialize()
        await until_parked(server, before)
        for i in range(rounds):
            event = anyio.Event()
            sent = time.perf_counter()
            body = {"target_agent": "alice-mcp", "content": f"ping {i}"}
            (await sender.post("/api/v1/dm", json=body)).raise_for_status()
            with anyio.fail_after(30):
                await event.wait()
            samples.append((arrived[-1] - sent) * 1000)
    return summary(samples)


async def hook_wake(server: Server, rounds: int, state: Path) -> dict[str, float]:
    alice, bob = agent(server, "alice-hook"), agent(server, "bob-hook")
    environment = {**os.environ, "PARLEY_URL": server.url, "PARLEY_KEY": alice, "XDG_STATE_HOME": str(state)}
    state.mkdir(parents=True, exist_ok=True)
    payload = state / "stop.json"
    payload.write_text(json.dumps({"session_id": "bench", "hook_event_name": "Stop", "stop_hook_active": False}))
    samples = []
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {bob}"}) as sender:
        (await sender.post("/api/v1/messages", json={"channel": "general", "content": "hello"})).raise_for_status()
        for i in range(rounds):
            before = await parked(server)
            with payload.open() as stdin:
                hook = subprocess.Popen(
                    [sys.executable, "-m", "parley", "hook", "stop"],
                    stdin=stdin,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    env=environment,
                )
            await until_parked(server, before)
            sent = time.perf_counter()
            body = {"channel": "general", "content": f"@alice-hook ping {i}"}
            (await sender.post("/api/v1/messages", json=body)).raise_for_status()
            code = await asyncio.to_thread(hook.wait, 30)
            samples.append((time.perf_counter() - sent) * 1000)
            if code != 2:
                raise RuntimeError(f"the hook exited {code}, not 2")
    return summary(samples)


async def measure(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as work:
        server = await Server.relay(Path(work) / "data").ready()
        try:
            return {
                "mcp_push": await mcp_push(server, rounds, Path(work) / "mcp"),
                "hook_wake": await hook_wake(server, rounds, Path(work) / "hook"),
                "agentchat_cooldown_ms": AGENTCHAT_COOLDOWN_MS,
            }
        finally:
            server.stop()


def table(results: dict[str, Any]) -> str:
    rows = [
        "| from a send to the agent woken | p50 | p99 |",
        "|---|---|---|",
        f"| MCP push (`notifications/claude/channel`) | {results['mcp_push']['p50_ms']:.0f} ms "
        f"| {results['mcp_push']['p99_ms']:.0f} ms |",
        f"| Claude Code Stop hook (`asyncRewake`, exit 2) | {results['hook_wake']['p50_ms']:.0f} ms "
        f"| {results['hook_wake']['p99_ms']:.0f} ms |",
        "| AgentChat's mention hook (documented cooldown) | up to 300,000 ms | |",
    ]
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=RESULTS / "wake.json")
    args = parser.parse_args()
    results = asyncio.run(measure(3 if args.quick else 50))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
