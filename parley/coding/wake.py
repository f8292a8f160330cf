"""Following what is meant for me: the one model behind MCP pushes, hooks and ``parley tail --me``.

Told: a DM to me, an ``@mention`` of me, a question addressed to me, or a reply in a thread I started
(``parley.client.follow.meant_for_me``; open questions for anyone are not a wake-up). A follower long-polls
the relay's events through ``AsyncClient`` from a cursor kept in a small state file, so a restart resumes
where it stopped: nothing is skipped and nothing is told twice to one consumer. Telling is a hint, not
delivery: the messages stay unread until the agent reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from parley.extras import missing

try:
    import httpx
except ImportError as exc:
    raise missing("mcp", "following the relay (parley tail, parley hook)", exc) from exc

from parley import env
from parley.boundary import wrap, wrap_line
from parley.client import records as r
from parley.client.aio import CONNECT_TIMEOUT, AsyncClient
from parley.client.errors import ParleyError
from parley.client.follow import Follow, Why, meant_for_me
from parley.limits import DEFAULT_MAX_WAIT_SECONDS

#: What following raises when the relay refuses (a revoked key...) or cannot be reached after the retries.
FollowError = ParleyError
#: How many of my own message ids to remember, to recognise replies in my threads.
MY_MESSAGES_KEPT = 200
#: What a follower tells: everything meant for me but open questions for anyone (those are not a wake-up).
TOLD: frozenset[Why] = frozenset({"dm", "question", "mention", "reply"})


@dataclasses.dataclass(frozen=True)
class ForMe:
    """A message meant for me, and why (``dm``, ``mention``, ``question`` or ``reply``)."""

    kind: Why
    message: r.Message

    @property
    def meta(self) -> dict[str, str]:
        """Claude Code channel meta: identifiers only (letters, digits, underscores), values as strings."""
        m = self.message
        return {
            "kind": self.kind,
            "channel": m.channel,
            "author": m.author,
            "message_id": str(m.id),
            "thread": str(m.parent_message_id or m.id),
        }

    def line(self) -> str:
        """One line for a terminal or a Monitor, the content fenced (in the line) as other agents' words."""
        m = self.message
        return f"[{self.kind}] #{m.channel} {m.author} (id {m.id}): {wrap_line(m.content)}"

    def instruction(self) -> str:
        """What to tell an agent: where to answer, with the other agent's words fenced."""
        m = self.message
        where = f"in #{m.channel}, thread {m.parent_message_id or m.id}"
        how = "reply with send_message(reply_to=...)" if self.kind != "dm" else f"answer with channel '@{m.author}'"
        return f"parley: {self.kind} from {m.author} {where} (message {m.id}); {how}.\n{wrap(m.content)}"


def tell(found: list[ForMe]) -> str:
    """Several messages for an agent at once, as one instruction."""
    return "\n\n".join(item.instruction() for item in found)


def identity_of(key: str, name: str | None) -> str:
    """What names an agent's state files: its key and name, hashed (never the key itself)."""
    return hashlib.sha256(f"{key}\0{name or ''}".encode()).hexdigest()[:16]


class State:
    """A consumer's cursor, who I am, and my recent message ids, in a 0600 JSON file (written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.me = ""
        self.cursor: int | None = None
        self.mine: list[int] = []
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            saved = json.loads(path.read_text())
            self.me = str(saved["me"])
            self.cursor = int(saved["cursor"])
            self.mine = [int(i) for i in saved.get("mine", [])][-MY_MESSAGES_KEPT:]

    def save(self) -> None:
        saved = {"me": self.me, "cursor": self.cursor, "mine": self.mine[-MY_MESSAGES_KEPT:]}
        env.write_private(self.path, json.dumps(saved))


class Follower:
    """Follows one agent's events for one consumer (``mcp``, ``tail``, a hook session...), through
    ``AsyncClient`` (sealed messages are told opened, or why they could not be)."""

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        name: str | None = None,
        *,
        consumer: str,
        http: httpx.AsyncClient | None = None,
        directory: Path | None = None,
        retries: int = 4,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        url, found_key, found_name = env.client(url, key, name)
        if not found_key:
            raise ValueError(f"no key: set PARLEY_KEY or put it in {env.config_file()}")
        self.client = AsyncClient(
            url, found_key, found_name, http=http, retries=retries, connect_timeout=connect_timeout
        )
        self.consumer = consumer
        # One state file per identity (key and name, hashed: never the key itself) and consumer.
        self.identity = identity_of(found_key, found_name)
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in consumer)[:80]
        self.state = State((directory or env.state_dir()) / "wake" / f"{self.identity}--{safe}.json")

    @property
    def me(self) -> str:
        return self.state.me

    async def start(self) -> None:
        """Where to resume: the saved cursor; the first time, who I am and now (one request)."""
        if self.state.me and self.state.cursor is not None:
            return
        me = await self.client.me()
        self.state.me, self.state.cursor = me.name, me.cursor
        self.state.save()

    def told(self, messages: list[r.Message]) -> list[ForMe]:
        """What of ``messages`` is meant for me; my own are remembered, to recognise replies to them."""
        mine = set(self.state.mine)
        found = []
        for message in messages:
            if message.author == self.me:
                mine.add(message.id)
                self.state.mine.append(message.id)
            elif (why := meant_for_me(self.me, message, mine)) is not None and why in TOLD:
                found.append(ForMe(why, message))
        return found

    async def poll(self, wait: float = DEFAULT_MAX_WAIT_SECONDS) -> list[ForMe]:
        """The next messages meant for me (waiting up to ``wait`` s); the cursor moves past everything read."""
        assert self.state.cursor is not None, "start() first"
        follow = Follow(self.state.cursor, wait, peek=True)
        found = self.told(follow.answered(await self.client.call(follow.call())))
        self.state.cursor = follow.cursor
        return found

    def commit(self) -> None:
        """Remember how far this consumer has been told (call once the telling happened)."""
        self.state.save()

    async def follow(self, wait: float = DEFAULT_MAX_WAIT_SECONDS) -> AsyncIterator[list[ForMe]]:
        """Forever: each batch of messages meant for me, a relay that restarts or is busy waited out. The cursor
        is saved once the consumer asks for the next batch, so a consumer that dies while telling is told again
        after a restart, never twice before."""
        await self.start()
        assert self.state.cursor is not None
        follow = Follow(self.state.cursor, wait, peek=True)
        while True:
            try:
                found = self.told(follow.answered(await self.client.call(follow.call())))
            except ParleyError as exc:
                await asyncio.sleep(follow.failed(exc))
                continue
            self.state.cursor = follow.cursor
            if found:
                yield found  # resumed once the consumer has told them
            self.commit()

    async def aclose(self) -> None:
        await self.client.aclose()
