"""Coding agents: the MCP server, the wake hooks, ``tail --me`` and ``connect`` (the ``[mcp]`` extra)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parley.cli import relay
from parley.cli.common import CLIError, refused
from parley.client import Client, ParleyError, calls
from parley.client.records import Key
from parley.coding import connect, identity, trouble


def cmd_mcp(args: argparse.Namespace) -> None:
    from parley.coding.mcp_server import serve_stdio  # says which extra to install when it is missing

    try:
        url, key, name = _acting_as(args)
    except CLIError as exc:  # the client shows this only in its own logs: keep it where --check finds it
        trouble.note(f"parley mcp --client {args.client}", exc)
        raise
    asyncio.run(serve_stdio(url, key, name))


def _acting_as(args: argparse.Namespace) -> tuple[str, str, str | None]:
    """Flags, else the identity ``parley connect`` made for this client and project, else ``PARLEY_*``."""
    root = identity.project_root(given=args.root)
    url, key, name, _ = identity.resolve(args.client, root, args.url, args.key, args.name)
    if not key:
        hint = f"run 'parley connect {args.client}' in {root}, or " if args.client else ""
        raise CLIError(f"no identity and no key: {hint}pass --key or set PARLEY_KEY")
    return url, key, name


def cmd_tail(args: argparse.Namespace) -> None:
    """One line per message meant for me, forever, resuming from its cursor after a restart."""
    from parley.coding.wake import Follower, FollowError  # says which extra to install when it is missing

    url, key, name = _acting_as(args)

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
    home = Path(args.home).expanduser()
    if args.all == bool(args.client):
        raise CLIError(f"name one client ({', '.join(connect.CLIENTS)}) or --all")
    clients = connect.detect(home) if args.all else [args.client]
    if not clients:
        raise CLIError(f"found no coding client here (looked for {connect.LOOKED_FOR}); name one")
    failed = []
    for name in clients:
        if args.all:
            print(f"{name}:")
        try:
            _connect(args, name, home)
        except CLIError as exc:
            if not args.all:
                raise
            print(f"parley: {exc}", file=sys.stderr)
            failed.append(name)
    if failed:
        raise CLIError(f"not connected: {', '.join(failed)}")


def _connect(args: argparse.Namespace, client_name: str, home: Path) -> None:
    root = Path(args.root).expanduser().resolve()
    place = home.resolve() if args.scope == "user" else root  # whose identity: the project's, or the user's
    try:
        changes = connect.plan(client_name, root=root, home=home, scope=args.scope)
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from exc
    if args.check:
        _check_connection(args, client_name, changes, root)
        return
    for change in changes:
        state = "unchanged" if not change.changed else ("would write" if args.print else "wrote")
        print(f"{state:>11}  {change.path}  ({change.what})")
        if args.print and change.changed:
            print(change.after)
    if args.print:
        return
    connect.apply(changes)
    try:
        made = _identity(args, client_name, place)
    except CLIError as exc:
        raise CLIError(f"{client_name} is configured, but has no agent yet: {exc} (or pass the agent's --key)") from exc
    print(f"{'agent':>11}  {made.name}  on {made.url} (its key: {made.path}, 0600)")
    if client_name == "claude-code":
        print("pushes: start Claude Code with --dangerously-load-development-channels server:parley")


def _identity(args: argparse.Namespace, client_name: str, place: Path) -> identity.Identity:
    """The agent this client is in this project: the one it has (still valid on this relay), one made from
    ``--key``, or a new one minted with the relay's admin token, in the relay's welcome channels."""
    url = relay.admin_url(args)
    if args.key:
        name = args.name or _who(url, args.key, None)
        return identity.save(client_name, place, url, args.key, name)
    had = identity.at(client_name, place)
    if had is not None and had.url == url and _who(url, had.key, had.name, missing_ok=True):
        return had
    name = args.name or (
        had.name if had else identity.suggest_name(client_name, place, user_scope=args.scope == "user")
    )
    created: Key = relay.admin(args, calls.create_key(name=name), in_process=False)
    assert created.secret is not None  # a key just minted carries its secret
    return identity.save(client_name, place, url, created.secret, name)


def _who(url: str, key: str, name: str | None, *, missing_ok: bool = False) -> str:
    """Who ``key`` is on the relay at ``url`` (``""`` when ``missing_ok`` and the relay no longer knows it)."""
    try:
        with Client(url, key, name, retries=1) as agent:
            return agent.me().name
    except ParleyError as exc:
        if missing_ok and exc.status == 401:
            return ""
        raise refused(exc, url) from exc


def _check_connection(args: argparse.Namespace, client_name: str, changes: list[connect.Change], root: Path) -> None:
    ready = True
    for change in changes:
        print(f"{'ok' if not change.changed else 'missing':>7}  {change.path}  ({change.what})")
        ready = ready and not change.changed
    if args.scope != "user":  # the project's files name plain 'parley': the client must find it on its PATH
        found = shutil.which("parley")
        print(f"{'ok' if found else 'missing':>7}  parley on PATH ({found or 'install it where the client finds it'})")
        ready = ready and found is not None
    url, key, name, made = identity.resolve(client_name, root, args.url, args.key, args.name)
    if made is None:
        print(f"{'missing':>7}  an identity of its own for {client_name} in {root} (parley connect {client_name})")
        ready = False
    try:
        if not key:
            raise CLIError("no key")
        with Client(url, key, name, retries=1) as agent:
            source = f"identity {made.path}" if made else "PARLEY_KEY or the config file"
            print(f"{'ok':>7}  {client_name} acts as {agent.me().name} on {agent.url} ({source})")
    except (CLIError, ParleyError) as exc:
        print(f"{'failed':>7}  relay {url}: {exc}")
        ready = False
    problems = trouble.recent()
    if problems:
        print(f"recent trouble (newest last, from {trouble.trouble_log()}):")
        for line in problems:
            print(f"         {line}")
    if not ready:
        raise CLIError(f"not fully connected; run 'parley connect {client_name}'")


def cmd_hook(args: argparse.Namespace) -> None:
    try:
        from parley.coding import hooks
    except ImportError:  # without the [mcp] extra a hook still never breaks the session
        sys.exit(0)
    sys.exit(hooks.main(args.client, args.event))


def identity_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--client", choices=connect.CLIENTS, help="act as this client's identity for the project")
    p.add_argument("--root", help="the project directory (default: the working directory)")


def add(commands: Any, client_options: Callable[[argparse.ArgumentParser], None]) -> None:
    p = commands.add_parser(
        "mcp", help="serve the tools over MCP on stdio", description="an MCP server (stdio) for coding agents"
    )
    identity_options(p)
    client_options(p)
    p.set_defaults(func=cmd_mcp)

    p = commands.add_parser(
        "tail",
        help="print each message meant for me, forever",
        description="one line per DM, @mention, question or reply for me; resumes from its cursor",
    )
    p.add_argument("--me", action="store_true", help="messages meant for me (the default, and the only mode)")
    p.add_argument("--consumer", default="tail", help="a name for this reader's cursor (default: tail)")
    identity_options(p)
    client_options(p)
    p.set_defaults(func=cmd_tail)

    p = commands.add_parser(
        "connect",
        help="configure a coding agent: MCP server, wake hooks, instructions",
        description="write or merge a client's MCP and hook configuration, keeping what is there",
    )
    p.add_argument("client", nargs="?", choices=connect.CLIENTS)
    p.add_argument("--all", action="store_true", help="every client found on this machine")
    p.add_argument("--scope", choices=("project", "user"), default="project")
    p.add_argument("--root", default=".", help="the project directory (default: here)")
    p.add_argument("--home", default=str(Path.home()), help=argparse.SUPPRESS)
    p.add_argument("--print", action="store_true", help="only show what would be written")
    p.add_argument("--check", action="store_true", help="say what is configured and whether the relay answers")
    p.add_argument("--save", action="store_true", help=argparse.SUPPRESS)  # identities are always kept now
    p.add_argument("--admin-token", help="the relay's admin token (default: $PARLEY_ADMIN_TOKEN or the token file)")
    relay.data_option(p)
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
