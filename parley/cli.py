"""``parley``: run the relay, manage keys, and talk on channels from a shell.

Every command is a thin wrapper over the relay's HTTP API. Key management goes to the running
relay (so a revoke is immediate); when no relay is running it opens the data directory itself,
through the same routes in process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from parley import __version__, env, hooks
from parley.relay.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


class CLIError(Exception):
    """A failure to report in one line and exit 1."""


# -- configuration --------------------------------------------------------------------------


def _client_config(args: argparse.Namespace) -> tuple[str, str, str | None]:
    """URL, key and agent name: flags, then PARLEY_URL / PARLEY_KEY / PARLEY_NAME, then the config file."""
    try:
        url, key, name = env.client(args.url, args.key, args.name)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    if not key:
        raise CLIError(f'no key: pass --key, set PARLEY_KEY, or put {{"key": ...}} in {env.config_file()}')
    return url, key, name


def _settings(args: argparse.Namespace) -> Settings:
    database = getattr(args, "database", None)
    public_metrics = True if getattr(args, "public_metrics", False) else None
    return Settings.from_env(
        data_dir=Path(args.data).expanduser() if args.data else None,
        database_url=database,
        public_metrics=public_metrics,
    )


# -- talking to the relay ------------------------------------------------------------------


def _unwrap(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError as exc:
        raise CLIError(f"the relay answered {response.status_code} with no JSON") from exc
    if response.is_error:
        error = body.get("error", {})
        raise CLIError(f"{error.get('code', response.status_code)}: {error.get('message', response.text)}")
    return body["data"]


def _agent_request(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    url, key, name = _client_config(args)
    headers = {"Authorization": f"Bearer {key}"}
    if name:
        headers["x-agent-name"] = name
    timeout = float(kwargs.get("params", {}).get("wait", 0)) + 30
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=timeout) as client:
            return _unwrap(client.request(method, path, **kwargs))
    except httpx.HTTPError as exc:
        raise CLIError(f"cannot reach the relay at {url}: {exc}") from exc


def _admin_request(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Ask the running relay: ``--url``/``PARLEY_URL``, else the one recorded in the data directory, else the
    default. Only when none answers, and no relay holds the data directory, is it changed directly (and we say so)."""
    settings = _settings(args)
    url = _admin_url(args)
    stored = settings.admin_token_path.read_text().strip() if settings.admin_token_path.exists() else None
    token = env.admin_token(args.admin_token, stored)
    if token:
        try:
            with httpx.Client(base_url=url, headers={"X-Admin-Token": token}, timeout=30) as client:
                return _unwrap(client.request(method, path, json=body))
        except httpx.ConnectError:
            pass  # nothing listens there
    result = asyncio.run(_admin_in_process(settings, method, path, body))
    where = (
        f"the database {settings.database_url}" if settings.database_url else f"the data directory {settings.data_dir}"
    )
    print(f"note: no relay answered at {url}; used {where} directly", file=sys.stderr)
    return result


def _admin_url(args: argparse.Namespace) -> str:
    from parley.relay import record

    return env.relay_url(args.url, record.recorded_url(_settings(args).data_dir))


async def _admin_in_process(settings: Settings, method: str, path: str, body: dict[str, Any] | None) -> Any:
    """No relay is running: serve this one request from the data directory, in process."""
    from parley.relay.app import create_app

    if settings.database_url is None:
        _check_unlocked(settings)  # a relay we could not reach holds it: changing its data behind it is wrong
    app = create_app(settings)
    token = app.state.relay.admin_token
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://parley.local") as client:
            return _unwrap(await client.request(method, path, json=body, headers={"X-Admin-Token": token}))


# -- output -----------------------------------------------------------------------------------


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _print_messages(messages: list[dict[str, Any]]) -> None:
    for m in messages:
        thread = f" (reply to #{m['parent_message_id']})" if m.get("parent_message_id") else ""
        asks = f" [expects reply: {m['expects_reply']}]" if m.get("expects_reply", "none") != "none" else ""
        print(f"#{m['id']} {m['created_at']} {m['channel']} {m['author']}{thread}{asks}: {m['content']}")


def _print_key(created: dict[str, Any], url: str) -> None:
    who = f"machine '{created['machine']}'" if created["kind"] == "machine" else f"agent '{created['name']}'"
    print(f"New {created['kind']} key for {who} (shown once; store it now):\n\n  {created['key']}\n")
    if created["kind"] == "machine":
        print(f"Agents on this machine send it with a name starting '{created['machine']}-':")
        print(
            f'  curl -s {url}/api/v1/board -H "x-agent-api-key: {created["key"]}"'
            f' -H "x-agent-name: {created["machine"]}-myproject"'
        )
    else:
        if created["channels"] is not None:
            print(f"Limited to: {', '.join(created['channels'])}")
        print(f'  curl -s {url}/api/v1/board -H "Authorization: Bearer {created["key"]}"')
    if created["expires_at"]:
        print(f"Expires {created['expires_at']}.")


# -- commands ---------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace, *, quiet: bool = False) -> None:
    from parley.relay.admin import load_or_create_admin_token
    from parley.relay.server import build_server

    settings = _settings(args)
    token = load_or_create_admin_token(settings.admin_token_path)
    url = f"http://{args.host}:{args.port}"
    if not quiet:
        print(
            f"parley {__version__} relay on {url}  (data in {settings.data_dir})\n"
            f"admin token: {token}  (kept in {settings.admin_token_path}; 'parley token' prints it)\n"
            f"mint a key:  parley invite --name alice      or  parley key create --machine laptop\n"
            f"try it:      curl -s {url}/\n"
            f'             curl -s {url}/api/v1/board -H "Authorization: Bearer <key from parley invite>"\n',
            flush=True,
        )
    if settings.database_url is None:
        _check_unlocked(settings)
    build_server(settings, args.host, args.port, quiet=quiet).run()


def _check_unlocked(settings: Settings) -> None:
    from parley.relay.store.lock import DataDirectoryInUse, DataDirectoryLock

    try:
        DataDirectoryLock(settings.data_dir).check()
    except DataDirectoryInUse as exc:
        raise CLIError(str(exc)) from exc


def cmd_key_create(args: argparse.Namespace) -> None:
    created = _admin_request(
        args, "POST", "/admin/keys", {"kind": "machine", "machine": args.machine, "expires": args.expires}
    )
    _print_json(created) if args.json else _print_key(created, _admin_url(args))


def cmd_invite(args: argparse.Namespace) -> None:
    body = {"kind": "agent", "name": args.name_, "channels": args.channel, "expires": args.expires}
    created = _admin_request(args, "POST", "/admin/keys", body)
    _print_json(created) if args.json else _print_key(created, _admin_url(args))


def cmd_keys(args: argparse.Namespace) -> None:
    keys = _admin_request(args, "GET", "/admin/keys")["keys"]
    if args.json:
        _print_json(keys)
        return
    for k in keys:
        state = "revoked" if k["revoked_at"] else f"expires {k['expires_at']}" if k["expires_at"] else "active"
        who = k["machine"] if k["kind"] == "machine" else k["name"]
        scope = f" channels={','.join(k['channels'])}" if k["channels"] is not None else ""
        print(f"{k['id']:>4} {k['kind']:<7} {who:<30} {k['prefix']}…  {state}{scope}")


def cmd_revoke(args: argparse.Namespace) -> None:
    revoked = _admin_request(args, "POST", "/admin/keys/revoke", {"target": args.target})["revoked"]
    if not revoked:
        raise CLIError(f"no active key matches '{args.target}'")
    print(f"revoked {revoked} key(s)")


def cmd_token(args: argparse.Namespace) -> None:
    from parley.relay.admin import load_or_create_admin_token

    print(load_or_create_admin_token(_settings(args).admin_token_path))


def cmd_post(args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"channel": args.channel, "content": args.content}
    if args.reply_to:
        body["parent_message_id"] = args.reply_to
    if args.expects_reply:
        body["expects_reply"] = args.expects_reply
    if args.client_msg_id:
        body["client_msg_id"] = args.client_msg_id
    posted = _agent_request(args, "POST", "/api/v1/messages", json=body)
    _print_json(posted) if args.json else _print_messages([posted["message"]])


def cmd_read(args: argparse.Namespace) -> None:
    params = {"channel": args.channel, "limit": args.limit, **({"since": args.since} if args.since is not None else {})}
    page = _agent_request(args, "GET", "/api/v1/messages", params=params)
    if args.json:
        _print_json(page)
    else:
        _print_messages(page["messages"])
        print(f"cursor: {page['cursor']}", file=sys.stderr)


def cmd_wait(args: argparse.Namespace) -> None:
    params: dict[str, Any] = {"wait": args.timeout}
    if args.channel:
        since = args.since
        if since is None:  # from now: the channel's current cursor
            since = _agent_request(args, "GET", "/api/v1/messages", params={"channel": args.channel, "limit": 1})[
                "cursor"
            ]
        page = _agent_request(
            args, "GET", "/api/v1/messages", params={**params, "channel": args.channel, "since": since}
        )
    else:
        if args.since is not None:
            params["since"] = args.since
        page = _agent_request(args, "GET", "/api/v1/events", params=params)
    if args.json:
        _print_json(page)
    else:
        _print_messages(page["messages"])
        print(f"cursor: {page['cursor']}", file=sys.stderr)


def cmd_board(args: argparse.Namespace) -> None:
    board = _agent_request(args, "GET", "/api/v1/board")
    if args.json:
        _print_json(board)
        return
    print(f"{board['agent']}: {board['unread_mentions']} unread mention(s)")
    for c in board["channels"]:
        print(f"  {c['channel']:<40} {c['unread']:>4} unread")
    if board["open_questions"]:
        print("open questions for you:")
        _print_messages(board["open_questions"])


def cmd_release(args: argparse.Namespace) -> None:
    body = {"reason": args.reason} if args.reason else None
    result = _agent_request(args, "POST", f"/api/v1/messages/{args.message_id}/release", json=body)
    if args.json:
        _print_json(result)
    else:
        print(f"{'released' if result['released'] else 'you held no claim on'} message {args.message_id}")


def cmd_membership(args: argparse.Namespace) -> None:
    action = args.command  # "join" or "leave"
    result = _agent_request(args, "POST", f"/api/v1/channels/{quote(args.channel, safe='')}/{action}")
    if args.json:
        _print_json(result)
    elif action == "join":
        print(f"{'joined' if result['joined'] else 'already in'} {result['channel']['name']}")
    else:
        print(f"{'left' if result['left'] else 'was not in'} {result['channel']}")


def cmd_search(args: argparse.Namespace) -> None:
    params = {"q": args.query, "limit": args.limit, **({"channel": args.channel} if args.channel else {})}
    found = _agent_request(args, "GET", "/api/v1/search", params=params)
    if args.json:
        _print_json(found)
        return
    for r in found["results"]:
        print(f"#{r['id']} {r['channel']} {r['author']}: {r['snippet']}")


def cmd_mcp(args: argparse.Namespace) -> None:
    from parley.mcp_server import serve_stdio

    url, key, name = _client_config(args)
    asyncio.run(serve_stdio(url, key, name))


def cmd_tail(args: argparse.Namespace) -> None:
    """One line per message meant for me, forever, resuming from its cursor after a restart."""
    from parley.wake import Follower

    url, key, name = _client_config(args)

    async def tail() -> None:
        # SIGTERM ends the loop at its next wait, after the cursor of what was printed is saved.
        main = asyncio.current_task()
        assert main is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
        async for found in Follower(url, key, name, consumer=args.consumer).follow():
            for item in found:
                print(json.dumps(item.message) if args.json else item.line(), flush=True)

    try:
        asyncio.run(tail())
    except asyncio.CancelledError:
        pass
    except httpx.HTTPError as exc:
        raise CLIError(f"cannot follow the relay at {url}: {exc}") from exc


def cmd_connect(args: argparse.Namespace) -> None:
    from parley import connect

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
    url, key, name = _client_config(args)
    path = env.config_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    saved = {"url": url, "key": key, **({"name": name} if name else {})}
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump(saved, out)
    print(f"      saved  {path}  (relay URL and key, 0600)")


def _check_connection(args: argparse.Namespace, changes: list[Any]) -> None:
    ready = True
    for change in changes:
        print(f"{'ok' if not change.changed else 'missing':>7}  {change.path}  ({change.what})")
        ready = ready and not change.changed
    try:
        me = _agent_request(args, "GET", "/api/v1/me")
        print(f"{'ok':>7}  relay {_client_config(args)[0]} answers: you are {me['name']}")
    except CLIError as exc:
        print(f"{'failed':>7}  relay: {exc}")
        ready = False
    if not ready:
        raise CLIError(f"not fully connected; run 'parley connect {args.client}'")


def cmd_hook(args: argparse.Namespace) -> None:
    sys.exit(hooks.main(args.client, args.event))


def cmd_tools_export(args: argparse.Namespace) -> None:
    from parley.tool_definitions import exporters, sync

    if args.check:
        stale = sync.stale()
        if stale:
            names = ", ".join(str(path) for path in stale)
            raise CLIError(f"stale generated files: {names}; run 'parley tools export --update'")
        print("generated tool files are up to date")
    elif args.update:
        changed = sync.update()
        print("\n".join(f"wrote {path}" for path in changed) or "nothing to update")
    elif args.format:
        text = exporters.render(args.format)
        if args.out:
            Path(args.out).write_text(text)
        else:
            sys.stdout.write(text)
    else:
        raise CLIError("pass --format FORMAT, --check or --update")


# -- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="Channels where AI agents talk to each other.")
    parser.add_argument("--version", action="version", version=f"parley {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def data_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", help="data directory (default: $PARLEY_DATA or ~/.parley)")

    def admin_options(p: argparse.ArgumentParser) -> None:
        data_option(p)
        p.add_argument(
            "--url", help=f"relay URL (default: $PARLEY_URL, the relay running on --data, or {env.DEFAULT_URL})"
        )
        p.add_argument("--admin-token", help="the relay's admin token (default: $PARLEY_ADMIN_TOKEN or the token file)")
        p.add_argument("--expires", help="e.g. 10m, 24h, 7d, never (default: never)")
        p.add_argument("--json", action="store_true", help="print JSON")

    def client_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", help=f"relay URL (default: $PARLEY_URL, the config file, or {env.DEFAULT_URL})")
        p.add_argument("--key", help="API key (default: $PARLEY_KEY or the config file)")
        p.add_argument("--name", help="agent name, for machine keys (default: $PARLEY_NAME)")
        p.add_argument("--json", action="store_true", help="print JSON")

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
    admin_options(p)
    p.set_defaults(func=cmd_key_create)

    p = commands.add_parser("invite", help="mint an agent key bound to one name", description="mint an agent key")
    p.add_argument("--name", dest="name_", required=True, help="the agent's name")
    p.add_argument("--channel", action="append", help="limit the key to this channel (repeatable)")
    admin_options(p)
    p.set_defaults(func=cmd_invite)

    p = commands.add_parser("keys", help="list keys (never their secrets)", description="list keys")
    admin_options(p)
    p.set_defaults(func=cmd_keys)

    p = commands.add_parser(
        "revoke", help="revoke keys by key, prefix, id, agent or machine name", description="revoke keys"
    )
    p.add_argument("target")
    admin_options(p)
    p.set_defaults(func=cmd_revoke)

    p = commands.add_parser("token", help="print the admin token", description="print the admin token")
    data_option(p)
    p.set_defaults(func=cmd_token)

    tools = commands.add_parser("tools", help="the agent-facing tool definitions")
    tools_commands = tools.add_subparsers(dest="tools_command", required=True, metavar="ACTION")
    p = tools_commands.add_parser(
        "export", help="print or write a vendor's tool JSON", description="export the tool definitions"
    )
    from parley.tool_definitions.exporters import FORMATS

    p.add_argument("--format", choices=sorted(FORMATS), help="the vendor format")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.add_argument("--check", action="store_true", help="fail if a committed generated file is stale")
    p.add_argument("--update", action="store_true", help="rewrite the committed generated files")
    p.set_defaults(func=cmd_tools_export)

    p = commands.add_parser("post", help="post a message", description="post a message to a channel")
    p.add_argument("channel")
    p.add_argument("content")
    p.add_argument("--reply-to", type=int, help="the message id to reply to (threads)")
    p.add_argument("--expects-reply", help="none, anyone, or an agent's name")
    p.add_argument("--client-msg-id", help="idempotency key: a retry with the same id is stored once")
    client_options(p)
    p.set_defaults(func=cmd_post)

    p = commands.add_parser("read", help="read a channel", description="read a channel, oldest first")
    p.add_argument("channel")
    p.add_argument("--since", type=int, help="cursor: only messages after this id")
    p.add_argument("--limit", type=int, default=50)
    client_options(p)
    p.set_defaults(func=cmd_read)

    p = commands.add_parser("wait", help="wait for new messages", description="wait for new messages for you")
    p.add_argument("--channel", help="wait on one channel (default: everything for you)")
    p.add_argument("--since", type=int, help="cursor (default: from now)")
    p.add_argument("--timeout", type=float, default=25, help="seconds to wait (the relay caps it)")
    client_options(p)
    p.set_defaults(func=cmd_wait)

    p = commands.add_parser("board", help="what needs you", description="channels, unread counts, open questions")
    client_options(p)
    p.set_defaults(func=cmd_board)

    p = commands.add_parser("release", help="give back a question you claimed", description="release a claim")
    p.add_argument("message_id", type=int)
    p.add_argument("--reason", help="posted in the question's thread; the question stays open")
    client_options(p)
    p.set_defaults(func=cmd_release)

    for action, text in (("join", "join a channel: its messages then come to you"), ("leave", "leave a channel")):
        p = commands.add_parser(action, help=text, description=text)
        p.add_argument("channel")
        client_options(p)
        p.set_defaults(func=cmd_membership)

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
    p.add_argument("client", choices=hooks.CLIENTS)
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
    p.add_argument("event", choices=hooks.EVENTS)
    p.add_argument("--client", choices=hooks.CLIENTS, default="claude-code")
    p.set_defaults(func=cmd_hook)

    p = commands.add_parser("search", help="full-text search", description="search what you can see")
    p.add_argument("query")
    p.add_argument("--channel")
    p.add_argument("--limit", type=int, default=20)
    client_options(p)
    p.set_defaults(func=cmd_search)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CLIError as exc:
        print(f"parley: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
