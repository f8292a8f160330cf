"""What the commands share: where the relay is, who I am, and how answers are printed."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from typing import Any

from parley import env
from parley.boundary import wrap_line
from parley.client import Client, ParleyError
from parley.client.records import Message


class CLIError(Exception):
    """A failure to report in one line and exit 1."""


def client_config(args: argparse.Namespace) -> tuple[str, str, str | None]:
    """URL, key and agent name: flags, then PARLEY_URL / PARLEY_KEY / PARLEY_NAME, then the config file."""
    try:
        url, key, name = env.client(args.url, args.key, args.name)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    if not key:
        raise CLIError(f'no key: pass --key, set PARLEY_KEY, or put {{"key": ...}} in {env.config_file()}')
    return url, key, name


def client(args: argparse.Namespace) -> Client:
    url, key, name = client_config(args)
    return Client(url, key, name)


def refused(exc: ParleyError, url: str) -> CLIError:
    if exc.code == "relay_unreachable":
        return CLIError(f"cannot reach the relay at {url}: {exc.message}")
    return CLIError(str(exc))


def content(value: str) -> str:
    """``-`` reads the text from standard input."""
    return sys.stdin.read() if value == "-" else value


def print_json(value: Any) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif isinstance(value, list):
        value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) else v for v in value]
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _turn(m: Message) -> str:
    """Written in an automatic turn (``parley.coding.loops``); the hop shown only when it is a number."""
    turn, hop = m.metadata.get("turn"), m.metadata.get("hop")
    hop_text = f", hop {hop}" if isinstance(hop, int) and not isinstance(hop, bool) else ""
    return {"automatic": f" [automatic{hop_text}]", "stopped": " [stopped: hop limit]"}.get(str(turn), "")


_FILE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")


def print_messages(messages: list[Message]) -> None:
    for m in messages:
        thread = f" (reply to #{m.parent_message_id})" if m.parent_message_id else ""
        asks = f" [expects reply: {m.expects_reply}]" if m.expects_reply != "none" else ""
        print(f"#{m.id} {m.created_at} {m.channel} {m.author}{thread}{asks}{_turn(m)}: {wrap_line(m.content)}")
        for shared in m.metadata.get("files") or ():
            # A file's id and name are another agent's words: the id only if it is one, the name fenced.
            if isinstance(shared, dict) and _FILE_ID.fullmatch(str(shared.get("id", ""))):
                name, size = wrap_line(str(shared.get("name", ""))), shared.get("size", "?")
                print(f"    file {shared['id']}: {name} ({size} bytes); parley download {shared['id']}")
