"""Loop control: two agents that answer each other stop after a few automatic turns, and say so once.

A turn is *automatic* when parley started it (a wake hook or a channel push handed the agent messages), and
*a person's* when someone typed a prompt. What an agent writes in an automatic turn is marked in the message's
metadata (``{"turn": "automatic", "hop": n}``), ``n`` being one more than the lowest hop among the messages
that woke it (a message written by a person, or by any client that is not a woken coding agent, is hop 0). A
message whose hop has reached the limit (``PARLEY_HOP_LIMIT``, 4 by default) wakes nobody: the agent it was for
posts one line in that thread saying it stopped, and waits for a person, whose next message (hop 0) starts
a chain afresh.

The hooks write which turn is running into a small state file of the agent; ``parley mcp`` reads it when the
agent sends, so the mark needs nothing from the model.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from parley import env
from parley.client import records as r
from parley.client.errors import ParleyError
from parley.coding import trouble
from parley.coding.wake import Follower, ForMe

DEFAULT_HOP_LIMIT = 4
#: Threads where this agent has said it stopped (so it says so once), remembered per agent.
NOTED_KEPT = 200


def hop_limit() -> int:
    """``PARLEY_HOP_LIMIT`` (at least 1), else the default."""
    with contextlib.suppress(ValueError):
        return max(1, int(os.environ.get("PARLEY_HOP_LIMIT", "")))
    return DEFAULT_HOP_LIMIT


def hop(message: r.Message) -> int:
    """How many automatic turns in a row wrote this message (0: a person's, or not a woken agent's)."""
    meta = message.metadata
    found = meta.get("hop") if meta.get("turn") == "automatic" else 0
    return found if isinstance(found, int) and not isinstance(found, bool) and found >= 0 else 0


def stopped_note(message: r.Message) -> bool:
    return message.metadata.get("turn") == "stopped"


class Turns:
    """The running turn of one agent (hop 0 for a person's), and the threads where it said it stopped."""

    def __init__(self, identity: str, directory: Path | None = None) -> None:
        self.path = (directory or env.state_dir()) / "turns" / f"{identity}.json"
        self.hop = 0
        self.noted: list[int] = []
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            saved = json.loads(self.path.read_text())
            self.hop = int(saved["hop"])
            self.noted = [int(t) for t in saved.get("noted", [])][-NOTED_KEPT:]

    def _save(self) -> None:
        env.write_private(self.path, json.dumps({"hop": self.hop, "noted": self.noted[-NOTED_KEPT:]}))

    def by_person(self) -> None:
        self.hop = 0
        self._save()

    def woken_by(self, messages: Sequence[r.Message]) -> None:
        self.hop = min(hop(m) for m in messages) + 1
        self._save()

    def mark(self) -> dict[str, Any] | None:
        """The metadata of what the agent writes now: ``None`` in a person's turn."""
        return {"turn": "automatic", "hop": self.hop} if self.hop else None

    def first_stop_in(self, thread: int) -> bool:
        """True once per thread: the agent should say it stopped there."""
        if thread in self.noted:
            return False
        self.noted.append(thread)
        self._save()
        return True


def split(messages: Sequence[r.Message], limit: int) -> tuple[list[r.Message], list[r.Message]]:
    """What may wake the agent, and what reached the hop limit (notes that an agent stopped wake nobody)."""
    waking = [m for m in messages if hop(m) < limit and not stopped_note(m)]
    held = [m for m in messages if hop(m) >= limit and not stopped_note(m)]
    return waking, held


def note(me: str, limit: int) -> tuple[str, dict[str, Any]]:
    """What an agent posts in a thread where it stopped answering automatically, and its metadata."""
    text = (
        f"{me} stops answering automatically in this thread: {limit} automatic replies in a row (hop limit"
        f" {limit}). A person's message here starts it again."
    )
    return text, {"turn": "stopped", "hop": limit}


async def hold(follower: Follower, turns: Turns, found: list[ForMe]) -> list[ForMe]:
    """What of ``found`` may wake the agent; in each thread where a message reached the hop limit, the agent says
    once that it stopped. Call ``turns.woken_by`` with what is told."""
    limit = hop_limit()
    waking, held = split([item.message for item in found], limit)
    for message in held:
        thread = message.parent_message_id or message.id
        if turns.first_stop_in(thread):
            text, meta = note(follower.me, limit)
            try:
                await follower.client.post(message.channel, text, reply_to=thread, metadata=meta)
            except ParleyError as exc:
                trouble.note("hop limit note", exc)
    kept = {m.id for m in waking}
    return [item for item in found if item.message.id in kept]
