"""Following the relay, once: the loop's state as sans-IO steps, and what is meant for me.

``Client.follow``, ``AsyncClient.follow``, the wake follower (MCP pushes, hooks, ``parley tail``) and the
always-on agents all drive ``Follow``: ask for the events after the cursor, move the cursor past what came
back, wait out a relay that restarts or is busy, raise everything else. Nothing is skipped or repeated,
because the cursor moves only past what was answered. Standard library only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Literal

from parley.client import calls
from parley.client import records as r
from parley.client.errors import ParleyError
from parley.client.retry import backoff
from parley.limits import DEFAULT_MAX_WAIT_SECONDS, DM_PREFIX

#: Answers worth waiting out while following (the relay restarting, or busy): everything else is raised.
FOLLOW_THROUGH = frozenset({"relay_unreachable", "http_502", "http_503", "http_504", "service_unavailable"})

#: Why a message is for me: a DM, a question addressed to me, an @mention, a reply in a thread I started, or
#: an open question for anyone (which the always-on agents try to claim; the wake follower leaves to them).
Why = Literal["dm", "question", "mention", "reply", "open"]


def meant_for_me(me: str, message: r.Message, mine: Collection[int] = ()) -> Why | None:
    """Why ``message`` is for ``me``, or None (my own, or not addressed to me). ``mine``: ids of messages I
    wrote, to recognise replies in my threads."""
    if message.author == me:
        return None
    if message.channel.startswith(DM_PREFIX):
        return "dm"
    if message.expects_reply == me:
        return "question"
    if me in message.mentions:
        return "mention"
    if message.parent_message_id is not None and message.parent_message_id in mine:
        return "reply"
    if message.expects_reply == "anyone":
        return "open"
    return None


@dataclasses.dataclass
class Follow:
    """The follow loop without I/O: the next call, and what an answer or a failure does to it."""

    cursor: int
    wait: float = DEFAULT_MAX_WAIT_SECONDS
    #: Leave what is returned unread (notifiers and hooks tell, the agent reads).
    peek: bool = False
    failures: int = 0

    def call(self) -> calls.Call[r.Page]:
        return calls.events(self.cursor, wait=self.wait, peek=self.peek)

    def answered(self, page: r.Page) -> list[r.Message]:
        """The messages of an answer; the cursor moves past them."""
        self.failures = 0
        self.cursor = page.cursor
        return page.messages

    def failed(self, error: ParleyError) -> float:
        """Seconds to wait before asking again, or ``error`` raised when it is not worth waiting out."""
        if error.code not in FOLLOW_THROUGH:
            raise error
        self.failures += 1
        return backoff(min(self.failures - 1, 5), None)
