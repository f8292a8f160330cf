"""What is meant for me, and following it: the one model behind MCP pushes, hooks and ``parley tail --me``.

Meant for me: a DM to me, an ``@mention`` of me, a question addressed to me (``expects_reply`` is my name),
or a reply in a thread I started. A follower long-polls the relay's events from a cursor kept in a small
state file, so a restart resumes where it stopped: nothing is skipped and nothing is told twice to one
consumer. Telling is a hint, not delivery: the messages stay unread until the agent reads them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from parley.extras import missing

try:
    import httpx
except ImportError as exc:
    raise missing("mcp", "following the relay (parley tail, parley hook)", exc) from exc

from parley import env
from parley.boundary import wrap, wrap_line
from parley.client.calls import agent_headers
from parley.limits import DEFAULT_MAX_WAIT_SECONDS, DM_PREFIX
from parley.sealed.sealer import Sealer

#: What following raises when the relay cannot be reached or refuses.
FollowError = httpx.HTTPError
#: How many of my own message ids to remember, to recognise replies in my threads.
MY_MESSAGES_KEPT = 200
CONNECT_TIMEOUT = 3.0


def state_dir() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "parley"


@dataclasses.dataclass(frozen=True)
class ForMe:
    """A message meant for me, and why (``dm``, ``mention``, ``question`` or ``reply``)."""

    kind: str
    message: dict[str, Any]

    @property
    def meta(self) -> dict[str, str]:
        """Claude Code channel meta: identifiers only (letters, digits, underscores), values as strings."""
        m = self.message
        return {
            "kind": self.kind,
            "channel": str(m["channel"]),
            "author": str(m["author"]),
            "message_id": str(m["id"]),
            "thread": str(m["parent_message_id"] or m["id"]),
        }

    def line(self) -> str:
        """One line for a terminal or a Monitor, the content fenced (in the line) as other agents' words."""
        m = self.message
        return f"[{self.kind}] #{m['channel']} {m['author']} (id {m['id']}): {wrap_line(str(m['content']))}"

    def instruction(self) -> str:
        """What to tell an agent: where to answer, with the other agent's words fenced."""
        m = self.message
        where = f"in #{m['channel']}, thread {m['parent_message_id'] or m['id']}"
        how = "reply with send_message(reply_to=...)" if self.kind != "dm" else f"answer with channel '@{m['author']}'"
        return f"parley: {self.kind} from {m['author']} {where} (message {m['id']}); {how}.\n{wrap(str(m['content']))}"


def meant_for_me(me: str, message: dict[str, Any], mine: set[int]) -> ForMe | None:
    if message["author"] == me:
        return None
    if str(message["channel"]).startswith(DM_PREFIX):
        return ForMe("dm", message)
    if message.get("expects_reply") == me:
        return ForMe("question", message)
    if me in message.get("mentions", ()):
        return ForMe("mention", message)
    if message.get("parent_message_id") in mine:
        return ForMe("reply", message)
    return None


def tell(found: list[ForMe]) -> str:
    """Several messages for an agent at once, as one instruction."""
    return "\n\n".join(item.instruction() for item in found)


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
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        saved = {"me": self.me, "cursor": self.cursor, "mine": self.mine[-MY_MESSAGES_KEPT:]}
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            json.dump(saved, out)
        os.replace(temporary, self.path)


class Follower:
    """Follows one agent's events for one consumer (``mcp``, ``tail``, a hook session...)."""

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        name: str | None = None,
        *,
        consumer: str,
        client: httpx.AsyncClient | None = None,
        directory: Path | None = None,
    ) -> None:
        self.url, found_key, found_name = env.client(url, key, name)
        if not found_key:
            raise ValueError(f"no key: set PARLEY_KEY or put it in {env.config_file()}")
        self.headers = agent_headers(found_key, found_name)
        self.consumer = consumer
        self.client = client
        # One state file per identity (key and name, hashed: never the key itself) and consumer.
        identity = hashlib.sha256(f"{found_key}\0{found_name or ''}".encode()).hexdigest()[:16]
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in consumer)[:80]
        self.state = State((directory or state_dir()) / "wake" / f"{identity}--{safe}.json")
        self.sealer = Sealer(me=found_name)  # sealed messages are told opened (or why they could not be)

    @property
    def me(self) -> str:
        return self.state.me

    async def start(self, client: httpx.AsyncClient) -> None:
        """Where to resume: the saved cursor; the first time, who I am and now (one request)."""
        if self.state.me and self.state.cursor is not None:
            return
        me = await self._get(client, "/api/v1/me")
        self.state.me, self.state.cursor = me["name"], int(me["cursor"])
        self.state.save()

    async def poll(self, client: httpx.AsyncClient, wait: float = DEFAULT_MAX_WAIT_SECONDS) -> list[ForMe]:
        """The next messages meant for me (waiting up to ``wait`` s); the cursor moves past everything read."""
        assert self.state.cursor is not None, "start() first"
        page = await self._get(client, "/api/v1/events", since=self.state.cursor, wait=wait, peek="true")
        mine = set(self.state.mine)
        found = []
        for message in page["messages"]:
            if message["author"] == self.me:
                mine.add(message["id"])
                self.state.mine.append(message["id"])
            elif (item := meant_for_me(self.me, message, mine)) is not None:
                found.append(item)
        self.state.cursor = int(page["cursor"])
        return found

    def commit(self) -> None:
        """Remember how far this consumer has been told (call once the telling happened)."""
        self.state.save()

    async def follow(self, wait: float = DEFAULT_MAX_WAIT_SECONDS) -> AsyncIterator[list[ForMe]]:
        """Forever: each batch of messages meant for me. The cursor is saved once the consumer asks for the
        next batch, so a consumer that dies while telling is told again after a restart, never twice before."""
        async with self._client() as client:
            await self.start(client)
            while True:
                found = await self.poll(client, wait)
                if found:
                    yield found  # resumed once the consumer has told them
                self.commit()

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[httpx.AsyncClient]:
        if self.client is not None:
            yield self.client
            return
        timeout = httpx.Timeout(DEFAULT_MAX_WAIT_SECONDS + 15, connect=CONNECT_TIMEOUT)
        async with httpx.AsyncClient(timeout=timeout) as client:
            yield client

    async def _get(self, client: httpx.AsyncClient, path: str, **params: Any) -> Any:
        response = await client.get(self.url + path, params=params, headers=self.headers)
        response.raise_for_status()
        found = response.json()["data"]
        self.sealer.open_all(found)
        return found
