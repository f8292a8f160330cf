"""Coding agents: the MCP server, the wake hooks, ``tail --me`` and ``connect`` (the ``[mcp]`` extra)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parley import env
from parley.cli.common import CLIError, client, client_config
from parley.client import ParleyError
from parley.coding import connect, trouble


def cmd_mcp(args: argparse.Namespace) -> None:
    from parley.coding.mcp_server import serve_stdio  # says which extra to install when it is missing

    url, key, name = client_config(args)
    asyncio.run(serve_stdio(url, key, name))


def cmd_tail(args: argparse.Namespace) -> None:
    """One line per message meant for me, forever, resuming from its cursor after a restart."""
    from parley.coding.wake import Follower, FollowError  # says which extra to install when it is missing

    url, key, name = client_config(args)

    async def tail() -> None:
        # SIGTERM ends the loop at its next wait, after the cursor of what was printed is saved.
        main = asyncio.current_task()
        assert main is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
        async for found in Follower(url, key, name, consumer=args.consumer).follow():
            for item in found:
                print(json.dumps(dataclasses.asdict(item.message)) if args.json else item.line(), flush=True)

    try:
        asyncio.run(tail())
    except asyncio.CancelledError:
        pass
    except FollowError as exc:
        raise CLIError(f"cannot follow the relay at {url}: {exc}") from exc


def cmd_connect(args: argparse.Namespace) -> None:
    # What connect configures (parley mcp, parley hook) cannot start without the mcp extra: say so, not "ok".
    absent = [name for name in ("mcp", "httpx") if importlib.util.find_spec(name) is None]
    if absent:
        raise CLIError(
            f"parley connect sets up 'parley mcp' and 'parley hook', which need {', '.join(absent)}:"
            " install them with  pip install 'parley-relay[mcp]'"
        )
    root, home = Path(args.root).expanduser().resolve(), Path(args.home).expanduser()
    if args.save:
        _save_client_config(args)
    try:
        changes = connect.plan(args.client, root=root, home=home, scope=args.scope)
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from exc
    if args.check:
        _check_connection(args, changes)
        return
    for change in changes:
        state = "unchanged" if not change.changed else ("would write" if args.print else "wrote")
        print(f"{state:>11}  {change.path}  ({change.what})")
        if args.print and change.changed:
            print(change.after)
    if not args.print:
        connect.apply(changes)
        if args.client == "claude-code":
            print("pushes: start Claude Code with --dangerously-load-development-channels server:parley")


def _save_client_config(args: argparse.Namespace) -> None:
    url, key, name = client_config(args)
    path = env.config_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    saved = {"url": url, "key": key, **({"name": name} if name else {})}
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump(saved, out)
    print(f"      saved  {path}  (relay URL and key, 0600)")


def _check_connection(args: argparse.Namespace, changes: list[connect.Change]) -> None:
    ready = True
    for change in changes:
        print(f"{'ok' if not change.changed else 'missing':>7}  {change.path}  ({change.what})")
        ready = ready and not change.changed
    if args.scope != "user":  # the project's files name plain 'parley': the client must find it on its PATH
        found = shutil.which("parley")
        print(f"{'ok' if found else 'missing':>7}  parley on PATH ({found or 'install it where the client finds it'})")
        ready = ready and found is not None
    try:
        with client(args) as agent:
            print(f"{'ok':>7}  relay {agent.url} answers: you are {agent.me().name}")
    except (CLIError, ParleyError) as exc:
        print(f"{'failed':>7}  relay: {exc}")
        ready = False
    problems = trouble.recent()
    if problems:
        print(f"recent trouble (newest last, from {trouble.trouble_log()}):")
        for line in problems:
            print(f"         {line}")
    if not ready:
        raise CLIError(f"not fully connected; run 'parley connect {args.client}'")


def cmd_hook(args: argparse.Namespace) -> None:
    try:
        from parley.coding import hooks
    except ImportError:  # without the [mcp] extra a hook still never breaks the session
        sys.exit(0)
    sys.exit(hooks.main(args.client, args.event))


def add(commands: Any, client_options: Callable[[argparse.ArgumentParser], None]) -> None:
    p = commands.add_parser(
        "mcp", help="serve the tools over MCP on stdio", description="an MCP server (stdio) for coding agents"
    )
    client_options(p)
    p.set_defaults(func=cmd_mcp)

    p = commands.add_parser(
        "tail",
        help="print each message meant for me, forever",
        description="one line per DM, @mention, question or reply for me; resumes from its cursor",
    )
    p.add_argument("--me", action="store_true", help="messages meant for me (the default, and the only mode)")
    p.add_argument("--consumer", default="tail", help="a name for this reader's cursor (default: tail)")
    client_options(p)
    p.set_defaults(func=cmd_tail)

    p = commands.add_parser(
        "connect",
        help="configure a coding agent: MCP server, wake hooks, instructions",
        description="write or merge a client's MCP and hook configuration, keeping what is there",
    )
    p.add_argument("client", choices=connect.CLIENTS)
    p.add_argument("--scope", choices=("project", "user"), default="project")
    p.add_argument("--root", default=".", help="the project directory (default: here)")
    p.add_argument("--home", default=str(Path.home()), help=argparse.SUPPRESS)
    p.add_argument("--print", action="store_true", help="only show what would be written")
    p.add_argument("--check", action="store_true", help="say what is configured and whether the relay answers")
    p.add_argument("--save", action="store_true", help="save the relay URL and key for the hooks (0600)")
    client_options(p)
    p.set_defaults(func=cmd_connect)

    p = commands.add_parser(
        "hook",
        help="a coding agent's hook: what arrived for it (JSON on stdin)",
        description="run as a Claude Code, Codex, Gemini CLI or Cursor hook; never fails the session",
    )
    p.add_argument("event", choices=connect.HOOK_EVENTS)
    p.add_argument("--client", choices=connect.CLIENTS, default="claude-code")
    p.set_defaults(func=cmd_hook)
