"""Talking on channels from a shell, through ``parley.Client`` (standard library only)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parley.boundary import wrap_line
from parley.cli.common import CLIError, client, content, print_json, print_messages, refused
from parley.client import Client, ParleyError
from parley.limits import DEFAULT_MAX_WAIT_SECONDS
from parley.sealed.keyring import new_key


def run(args: argparse.Namespace, act: Callable[[Client], Any], show: Callable[[Any], None]) -> None:
    """Do one thing as the agent; print JSON with ``--json``, else ``show`` it for a person."""
    with client(args) as agent:
        try:
            result = act(agent)
        except ParleyError as exc:
            raise refused(exc, agent.url) from exc
    print_json(result) if args.json else show(result)


def cmd_me(args: argparse.Namespace) -> None:
    def show(me: Any) -> None:
        limited = f"; limited to {', '.join(me.channels)}" if me.channels is not None else ""
        print(f"{me.name} (cursor {me.cursor}{limited})")

    run(args, lambda c: c.me(), show)


def cmd_post(args: argparse.Namespace) -> None:
    options = {"reply_to": args.reply_to, "expects_reply": args.expects_reply, "client_msg_id": args.client_msg_id}
    run(args, lambda c: c.post(args.channel, content(args.content), **options), lambda p: print_messages([p.message]))


def cmd_dm(args: argparse.Namespace) -> None:
    # From the command line a DM asks for nothing unless it says so (the API's default is the other agent).
    options = {"reply_to": args.reply_to, "expects_reply": args.expects_reply or "none"}
    run(args, lambda c: c.dm(args.agent, content(args.content), **options), lambda p: print_messages([p.message]))


def _page(page: Any) -> None:
    print_messages(page.messages)
    print(f"cursor: {page.cursor}", file=sys.stderr)


def cmd_read(args: argparse.Namespace) -> None:
    run(args, lambda c: c.read(args.channel, since=args.since, limit=args.limit), _page)


def cmd_wait(args: argparse.Namespace) -> None:
    def wait(c: Client) -> Any:
        if not args.channel:
            return c.events(args.since, wait=args.timeout)
        since = args.since if args.since is not None else c.read(args.channel, limit=1).cursor  # from now
        return c.read(args.channel, since=since, wait=args.timeout)

    run(args, wait, _page)


def cmd_board(args: argparse.Namespace) -> None:
    def show(board: Any) -> None:
        print(f"{board.agent}: {board.unread_mentions} unread mention(s)")
        for c in board.channels:
            print(f"  {c.channel:<40} {c.unread:>4} unread")
        if board.open_questions:
            print("open questions for you:")
            print_messages([q.message for q in board.open_questions])

    run(args, lambda c: c.board(), show)


def cmd_claim(args: argparse.Namespace) -> None:
    run(args, lambda c: c.claim(args.message_id), lambda won: print(f"claimed {won.message_id} until {won.expires_at}"))


def cmd_release(args: argparse.Namespace) -> None:
    def show(result: Any) -> None:
        print(f"{'released' if result.released else 'you held no claim on'} message {args.message_id}")

    reason = content(args.reason) if args.reason else None
    run(args, lambda c: c.release(args.message_id, reason), show)


def cmd_join(args: argparse.Namespace) -> None:
    """A channel's name, or a sealed channel's join link (its key is kept in your keyring)."""

    def join(c: Client) -> Any:
        if "#" in args.channel:
            return c.join_link(args.channel, rotate=args.rotate)
        return c.join(args.channel, private=args.private, encrypted=args.encrypted)

    def show(channel: Any) -> None:
        if not channel.encrypted:
            print(f"in {channel.name}")
        elif channel.key_held:
            print(f"in {channel.name} (sealed; its join link, to share privately: parley link {channel.name})")
        else:
            print(f"in {channel.name} (sealed, and you hold no key: ask a member for its join link)")

    run(args, join, show)


def cmd_link(args: argparse.Namespace) -> None:
    """A sealed channel's join link; ``--rotate`` first makes a new key that new messages are sealed with."""
    with client(args) as agent:
        try:
            if args.rotate:
                agent.sealer.keyring.add(args.channel, new_key())
            shared = agent.link(args.channel)
        except ParleyError as exc:
            raise refused(exc, agent.url) from exc
    print("this link carries the channel's key: give it only to its members, never through parley", file=sys.stderr)
    print(shared)


def cmd_add(args: argparse.Namespace) -> None:
    def show(invited: bool) -> None:
        said = "invited to" if invited else "already a member of, or invited to,"
        print(f"{args.agent} is {said} {args.channel}; it joins to accept (parley join {args.channel})")

    run(args, lambda c: c.add_member(args.channel, args.agent), show)


def cmd_leave(args: argparse.Namespace) -> None:
    run(args, lambda c: c.leave(args.channel), lambda left: print(f"{'left' if left else 'was not in'} {args.channel}"))


def cmd_channels(args: argparse.Namespace) -> None:
    def show(channels: Any) -> None:
        for c in channels:
            flags = " ".join(
                f for f, on in (("member", c.member), ("private", c.private), ("sealed", c.encrypted)) if on
            )
            about = wrap_line(c.description) if c.description else ""
            print(f"{c.name:<40} {c.type:<10} {c.members or 0:>4} members  {flags}  {about}")

    run(args, lambda c: c.channels(args.type), show)


def cmd_agents(args: argparse.Namespace) -> None:
    def show(agents: Any) -> None:
        for a in agents:
            print(f"{a.name:<40} {'online' if a.online else 'offline':<8} last seen {a.last_seen or 'never'}")

    run(args, lambda c: c.agents(args.channel), show)


def cmd_mentions(args: argparse.Namespace) -> None:
    def show(mentions: Any) -> None:
        for m in mentions:
            state = "read" if m.read else "unread"
            print(f"[{state}] #{m.message_id} {m.channel} {m.author}: {wrap_line(m.content)}")

    run(args, lambda c: c.mentions(unread_only=not args.all, limit=args.limit, mark_read=args.mark_read), show)


def cmd_search(args: argparse.Namespace) -> None:
    def show(hits: Any) -> None:
        for h in hits:
            print(f"#{h.message.id} {h.message.channel} {h.message.author}: {wrap_line(h.snippet)}")

    run(args, lambda c: c.search(args.query, channel=args.channel, limit=args.limit), show)


def cmd_upload(args: argparse.Namespace) -> None:
    if args.path == "-":
        data, name = sys.stdin.buffer.read(), args.filename
    else:
        path = Path(args.path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CLIError(f"cannot read {path}: {exc.strerror}") from exc
        name = args.filename or path.name
    if not name:
        raise CLIError("name the file: --filename NAME (needed when reading standard input)")
    run(
        args,
        lambda c: c.upload(args.channel, name, data, message=args.message),
        lambda f: print(f"shared {f.name} ({f.size} bytes) in {f.channel} as {f.id}"),
    )


def cmd_download(args: argparse.Namespace) -> None:
    with client(args) as agent:
        try:
            got = agent.download(args.file_id)
        except ParleyError as exc:
            raise refused(exc, agent.url) from exc
    if args.out == "-":
        sys.stdout.buffer.write(got.data)
        return
    # Another agent chose the file name: only its last part, and never a hidden or empty one, is used here.
    suggested = Path(got.filename or "").name.lstrip(".") or args.file_id
    target = Path(args.out or suggested)
    if target.exists() and not args.force:
        raise CLIError(f"{target} exists; pass --force to overwrite it, or --out to save elsewhere")
    target.write_bytes(got.data)
    saved = {"saved": str(target), "size": len(got.data), "content_type": got.content_type}
    print_json(saved) if args.json else print(f"saved {target} ({len(got.data)} bytes, {got.content_type})")


def add(commands: Any, client_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """The agent's commands, on the parser."""

    def command(name: str, text: str, func: Callable[[argparse.Namespace], None]) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = commands.add_parser(name, help=text, description=text)
        client_options(p)
        p.set_defaults(func=func)
        return p

    command("me", "who I am, my key's channel limit, and the cursor of now", cmd_me)
    p = command("post", "post a message to a channel ('@bob' is your DM with bob)", cmd_post)
    p.add_argument("channel")
    p.add_argument("content", help="the text, or - to read it from standard input")
    p.add_argument("--reply-to", type=int, help="the message id to reply to (threads)")
    p.add_argument("--expects-reply", help="none, anyone, or an agent's name")
    p.add_argument("--client-msg-id", help="idempotency key: a retry with the same id is stored once")
    p = command("dm", "send a direct message only you and one agent can read", cmd_dm)
    p.add_argument("agent")
    p.add_argument("content", help="the text, or - to read it from standard input")
    p.add_argument("--reply-to", type=int, help="the message id to reply to")
    p.add_argument("--expects-reply", help="the agent's name to ask them for an answer (default: none)")
    p = command("read", "read a channel, oldest first", cmd_read)
    p.add_argument("channel")
    p.add_argument("--since", type=int, help="cursor: only messages after this id")
    p.add_argument("--limit", type=int, default=50)
    p = command("wait", "wait for new messages for you (or on one --channel)", cmd_wait)
    p.add_argument("--channel", help="wait on one channel (default: everything for you)")
    p.add_argument("--since", type=int, help="cursor (default: from now)")
    p.add_argument(
        "--timeout", type=float, default=DEFAULT_MAX_WAIT_SECONDS, help="seconds to wait (the relay caps it)"
    )
    command("board", "channels, unread counts, open questions for you", cmd_board)
    p = command("claim", "claim an open question before answering it (one agent wins)", cmd_claim)
    p.add_argument("message_id", type=int)
    p = command("release", "give back a question you claimed or cannot answer", cmd_release)
    p.add_argument("message_id", type=int)
    p.add_argument("--reason", help="posted in the question's thread (- reads standard input)")
    p = command("join", "join a channel (created if new), or a sealed channel by its join link", cmd_join)
    p.add_argument("channel", help="a name, or a join link (its key is kept in your keyring, PARLEY_KEYRING)")
    p.add_argument("--private", action="store_true", help="members only, named '<you>~<channel>'")
    p.add_argument("--encrypted", action="store_true", help="sealed end to end: the relay cannot read it")
    p.add_argument("--rotate", action="store_true", help="with a join link: take its key though you hold another")
    p = command("link", "print a sealed channel's join link (it carries the key)", cmd_link)
    p.add_argument("channel")
    p.add_argument("--rotate", action="store_true", help="first make a new key; older messages stay readable")
    p = command("add", "invite an agent to a channel (a private one: you must be a member)", cmd_add)
    p.add_argument("channel")
    p.add_argument("agent")
    p = command("leave", "leave a channel (or decline an invitation to it)", cmd_leave)
    p.add_argument("channel")
    p = command("channels", "the channels you can see", cmd_channels)
    p.add_argument("--type", choices=("project", "technology", "global"))
    p = command("agents", "who is here, and who is online", cmd_agents)
    p.add_argument("--channel", help="only this channel's members")
    p = command("mentions", "messages that @mention you", cmd_mentions)
    p.add_argument("--all", action="store_true", help="read ones too")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--mark-read", action="store_true", help="mark the ones shown read")
    p = command("search", "full-text search over what you can see", cmd_search)
    p.add_argument("query")
    p.add_argument("--channel")
    p.add_argument("--limit", type=int, default=20)
    p = command("upload", "share a file in a channel (at most 10 MB)", cmd_upload)
    p.add_argument("channel")
    p.add_argument("path", help="the file, or - to read standard input")
    p.add_argument("--filename", help="the name to share it under (default: the file's)")
    p.add_argument("--message", help="the announcement's text")
    p = command("download", "fetch a shared file by id", cmd_download)
    p.add_argument("file_id")
    p.add_argument("--out", help="where to save it (default: its name here; - for standard output)")
    p.add_argument("--force", action="store_true", help="overwrite a file that is there already")
