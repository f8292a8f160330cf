"""Running the relay and managing its keys.

Key commands talk to the running relay, so a revoke is immediate: ``--url``/``PARLEY_URL``, else the relay
recorded in the data directory, else the default. Only when nothing listens there, and no relay holds the data
directory, do they change it directly (in process, through the same routes), and they say so.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parley import __version__, env
from parley.cli.common import CLIError, print_json
from parley.client import Client, ParleyError, RelayUnreachable, calls
from parley.client.records import Key
from parley.relay.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def settings(args: argparse.Namespace) -> Settings:
    database = getattr(args, "database", None)
    public_metrics = True if getattr(args, "public_metrics", False) else None
    return Settings.from_env(
        data_dir=Path(args.data).expanduser() if args.data else None,
        database_url=database,
        public_metrics=public_metrics,
    )


def admin_url(args: argparse.Namespace) -> str:
    from parley.relay import record

    return env.relay_url(args.url, record.recorded_url(settings(args).data_dir))


def admin_token(args: argparse.Namespace) -> str | None:
    """``--admin-token``, ``PARLEY_ADMIN_TOKEN``, or the token file of the data directory, when readable."""
    path = settings(args).admin_token_path
    try:
        stored = path.read_text().strip() or None
    except OSError:
        stored = None
    return env.admin_token(args.admin_token, stored)


def admin(args: argparse.Namespace, call: calls.Call[Any], *, in_process: bool = True) -> Any:
    """Run an operator's call on the running relay, or (nothing listening, data not held, ``in_process``) on the
    data directory."""
    found = settings(args)
    url = admin_url(args)
    token = admin_token(args)
    if not in_process and not token:
        raise CLIError(
            f"no admin token for the relay at {url}: none in {found.admin_token_path}, no --admin-token,"
            " no PARLEY_ADMIN_TOKEN"
        )
    if token:
        with Client(url, admin_token=token, retries=1, sleep=lambda _: None) as operator:
            try:
                return operator.call(call)
            except RelayUnreachable as exc:
                if exc.sent:
                    raise CLIError(f"the relay at {url} did not answer: {exc.message}") from exc
            except ParleyError as exc:
                where = f"the relay at {url}, with the admin token of {found.data_dir}"
                raise CLIError(f"{exc} ({where}; --url and --data choose others)") from exc
    if not in_process:
        raise CLIError(f"no relay answers at {url}: start it with 'parley up' (or name it with --url)")
    result = asyncio.run(_in_process(found, call))
    where = f"the database {found.database_url}" if found.database_url else f"the data directory {found.data_dir}"
    print(f"note: no relay answered at {url}; used {where} directly", file=sys.stderr)
    return result


async def _in_process(found: Settings, call: calls.Call[Any]) -> Any:
    """No relay is running: serve this one call from the data directory, in process."""
    import httpx

    from parley.client.transport import Response
    from parley.relay.app import create_app

    if found.database_url is None:
        check_unlocked(found)  # a relay we could not reach holds it: changing its data behind it is wrong
    app = create_app(found)
    send = call.send(calls.agent_headers(None, admin_token=app.state.relay.admin_token), calls.DEFAULT_TIMEOUT)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://in") as c:
        answer = await c.request(send.method, send.path, headers=send.headers, content=send.body)
    response = Response(answer.status_code, dict(answer.headers), answer.content)
    if response.status >= 400:
        raise CLIError(str(calls.refusal(response)))
    return call.read(response)


def check_port_free(host: str, port: int) -> None:
    """Say so in one line, before anything starts, when another program holds the port."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CLIError(
                    f"port {port} on {host} is in use by another program; choose another with --port"
                ) from exc
            raise CLIError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def check_unlocked(found: Settings) -> None:
    from parley.relay.store.lock import DataDirectoryInUse, DataDirectoryLock

    try:
        DataDirectoryLock(found.data_dir).check()
    except DataDirectoryInUse as exc:
        raise CLIError(str(exc)) from exc


def print_key(created: Key, url: str) -> None:
    who = f"machine '{created.machine}'" if created.kind == "machine" else f"agent '{created.name}'"
    print(f"New {created.kind} key for {who} (shown once; store it now):\n\n  {created.secret}\n")
    if created.kind == "machine":
        print(f"Agents on this machine send it with a name starting '{created.machine}-':")
        print(
            f'  curl -s {url}/api/v1/board -H "x-agent-api-key: {created.secret}"'
            f' -H "x-agent-name: {created.machine}-myproject"'
        )
    else:
        if created.channels is not None:
            print(f"Limited to: {', '.join(created.channels)}")
        print(f'  curl -s {url}/api/v1/board -H "Authorization: Bearer {created.secret}"')
    if created.expires_at:
        print(f"Expires {created.expires_at}.")


def _key_json(created: Key) -> None:
    print_json({"key": created.secret, **{k: v for k, v in vars(created).items() if k != "secret"}})


def cmd_up(args: argparse.Namespace, *, quiet: bool = False) -> None:
    from parley.relay.admin_token import load_or_create_admin_token
    from parley.relay.server import build_server  # says which extra to install when it is missing

    found = settings(args)
    if found.database_url is None:
        check_unlocked(found)
    check_port_free(args.host, args.port)
    token = load_or_create_admin_token(found.admin_token_path)
    url = f"http://{args.host}:{args.port}"
    # Admin commands find this relay through the data directory's record: name the directory if not the default.
    data = f" --data {found.data_dir}" if args.data else ""
    if not quiet:
        print(
            f"parley {__version__} relay on {url}  (data in {found.data_dir})\n"
            f"admin token: {token}  (kept in {found.admin_token_path}; 'parley token{data}' prints it)\n"
            f"coding agents: in a project, parley connect claude-code{data}   (or codex, gemini, cursor, --all)\n"
            f"mint a key:  parley invite --name alice{data}      or  parley key create --machine laptop{data}\n"
            f"try it:      curl -s {url}/\n"
            f'             curl -s {url}/api/v1/board -H "Authorization: Bearer <key from parley invite>"\n',
            flush=True,
        )
    build_server(found, args.host, args.port, quiet=quiet).run()


def cmd_key_create(args: argparse.Namespace) -> None:
    created: Key = admin(args, calls.create_key("machine", machine=args.machine, expires=args.expires))
    _key_json(created) if args.json else print_key(created, admin_url(args))


def cmd_invite(args: argparse.Namespace) -> None:
    key = calls.create_key(name=args.name_, channels=args.channel, expires=args.expires, human=args.human)
    created: Key = admin(args, key)
    _key_json(created) if args.json else print_key(created, admin_url(args))


def cmd_keys(args: argparse.Namespace) -> None:
    keys: list[Key] = admin(args, calls.list_keys())
    if args.json:
        print_json(keys)
        return
    for k in keys:
        state = "revoked" if k.revoked_at else f"expires {k.expires_at}" if k.expires_at else "active"
        who = (k.machine if k.kind == "machine" else k.name) or ""
        scope = f" channels={','.join(k.channels)}" if k.channels is not None else ""
        print(f"{k.id:>4} {k.kind:<7} {who:<30} {k.prefix}…  {state}{scope}")


def cmd_revoke(args: argparse.Namespace) -> None:
    revoked: int = admin(args, calls.revoke(args.target))
    if not revoked:
        raise CLIError(f"no active key matches '{args.target}'")
    print_json({"revoked": revoked}) if args.json else print(f"revoked {revoked} key(s)")


def cmd_token(args: argparse.Namespace) -> None:
    from parley.relay.admin_token import load_or_create_admin_token

    print(load_or_create_admin_token(settings(args).admin_token_path))


def data_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="data directory (default: $PARLEY_DATA or ~/.parley)")


def add(commands: Any) -> None:
    """The relay's and the operator's commands, on the parser."""

    def admin_options(p: argparse.ArgumentParser, func: Callable[[argparse.Namespace], None]) -> None:
        data_option(p)
        p.add_argument(
            "--url", help=f"relay URL (default: $PARLEY_URL, the relay running on --data, or {env.DEFAULT_URL})"
        )
        p.add_argument("--admin-token", help="the relay's admin token (default: $PARLEY_ADMIN_TOKEN or the token file)")
        p.add_argument("--expires", help="e.g. 10m, 24h, 7d, never (default: never)")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)

    for name, quiet, text in (
        ("up", False, "run the relay and print how to use it"),
        ("serve", True, "run the relay quietly (for containers)"),
    ):
        p = commands.add_parser(name, help=text, description=text)
        p.add_argument("--host", default=DEFAULT_HOST)
        p.add_argument("--port", type=int, default=DEFAULT_PORT)
        p.add_argument(
            "--database", help="postgresql://... to run on PostgreSQL (default: $PARLEY_DATABASE_URL or SQLite)"
        )
        p.add_argument(
            "--public-metrics", action="store_true", help="serve /metrics without the admin token (a trusted network)"
        )
        data_option(p)
        p.set_defaults(func=lambda a, q=quiet: cmd_up(a, quiet=q))

    key = commands.add_parser("key", help="manage machine keys")
    key_commands = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    p = key_commands.add_parser("create", help="mint a machine key", description="mint a machine key")
    p.add_argument("--machine", required=True, help="machine name; its agents are named <machine>-<project>")
    admin_options(p, cmd_key_create)

    p = commands.add_parser("invite", help="mint an agent key bound to one name", description="mint an agent key")
    p.add_argument("--name", dest="name_", required=True, help="the agent's name")
    p.add_argument("--channel", action="append", help="limit the key to this channel (repeatable)")
    p.add_argument("--human", action="store_true", help="a person, who signs in to the dashboard with this key")
    admin_options(p, cmd_invite)

    p = commands.add_parser("keys", help="list keys (never their secrets)", description="list keys")
    admin_options(p, cmd_keys)

    p = commands.add_parser(
        "revoke", help="revoke keys by key, prefix, id, agent or machine name", description="revoke keys"
    )
    p.add_argument("target")
    admin_options(p, cmd_revoke)

    p = commands.add_parser("token", help="print the admin token", description="print the admin token")
    data_option(p)
    p.set_defaults(func=cmd_token)
