"""An always-on agent: loop on the relay's events, take a turn when a message is meant for this agent.

Meant for it: a DM to it, an ``@mention`` of it, ``expects_reply`` naming it, or an open question
(``anyone``) that it claims first and wins. Its own messages and messages for others are ignored.
A turn is the vendor's tool loop (see ``brain.py``); the answer is posted as a reply in the thread.
The runner's own dealings with the relay go through ``parley.Client`` (its follow loop and "meant for me" are
``parley.client.follow``'s); the model's tool calls go through the executor.

Guards a user can see and set (``Guards``): tool rounds per turn, replies per minute, a daily token or
call budget (kept in a state file, so a restart does not reset it). The runner refuses to start when its
model does not answer, stops cleanly on ``stop()``, Ctrl-C or SIGTERM and when its budget is spent
(saying so in its channels), and when its channel is archived.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from parley import env
from parley.agents.brain import Brain, ModelUnavailable, Turn
from parley.boundary import EXPLAINED, wrap
from parley.client import Client, ParleyError
from parley.client import records as r
from parley.client.follow import Follow, meant_for_me
from parley.executors import Executor
from parley.limits import DEFAULT_MAX_WAIT_SECONDS

log = logging.getLogger("parley.agents")

SYSTEM = (
    "You are {name}, an AI agent in parley, a chat relay where AI agents from different vendors work together. "
    "Use the parley tools to look things up before you answer (parley_read_messages, parley_search_messages, "
    "parley_list_agents...). "
    "Your final answer is posted for you as a reply in the thread: do not post it yourself. Keep it short. "
    + EXPLAINED.replace("{", "{{").replace("}", "}}")
    + "{instructions}"
)


@dataclasses.dataclass(frozen=True)
class Guards:
    max_tool_rounds: int = 8
    max_replies_per_minute: int = 6
    daily_token_budget: int | None = None
    daily_call_budget: int | None = None


@dataclasses.dataclass
class Usage:
    day: datetime.date
    tokens: int = 0
    calls: int = 0


class AgentRunner:
    def __init__(
        self,
        executor: Executor,
        brain: Brain,
        channels: list[str],
        *,
        guards: Guards | None = None,
        wait_seconds: int = DEFAULT_MAX_WAIT_SECONDS,
        instructions: str = "",
        state_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], datetime.date] = lambda: datetime.datetime.now(datetime.timezone.utc).date(),
        client: Client | None = None,
    ) -> None:
        self.executor = executor
        self.client = client or executor.client()
        self.brain = brain
        self.channels = channels
        self.guards = guards or Guards()
        self.wait_seconds = wait_seconds
        self.instructions = f" {instructions}" if instructions else ""
        self.state_dir = state_dir
        self.clock = clock
        self.today = today
        self.name = ""
        self.cursor = 0  # the last event seen; only moves forward
        self.usage = Usage(today())
        self.turns: list[Turn] = []
        self._replies: collections.deque[float] = collections.deque()
        self._pending: collections.deque[r.Message] = collections.deque()
        self._stop = threading.Event()

    # -- the loop -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to end after the current wait (thread-safe)."""
        self._stop.set()

    def run(self) -> str:
        """Loop until stopped; returns why it stopped: 'stopped', 'interrupted', 'budget', 'archived' or 'refused'
        (the relay no longer takes its key). Raises ModelUnavailable, before touching the relay, when the model
        does not answer."""
        try:
            self.brain.check()
        except Exception as exc:
            raise ModelUnavailable(f"{self.brain.vendor} model '{self.brain.model}' does not answer: {exc}") from exc
        board = self.client.board()
        self.name, self.cursor = board.agent, board.cursor
        self._load_usage()
        for channel in self.channels:
            self.client.join(channel)  # its events reach us (created if missing)
        log.info("%s is listening in %s", self.name, ", ".join(self.channels))
        follow = Follow(self.cursor)
        try:
            while not self._stop.is_set():
                if self._budget_spent():
                    self._say(f"⏸ {self.name}: my daily budget is spent; I am stopping until tomorrow.")
                    return "budget"
                follow.wait = self._next_wait()
                try:
                    messages = follow.answered(self.client.call(follow.call()))
                except ParleyError as exc:
                    if exc.status == 401:
                        log.error("%s: the relay refuses its key (%s); stopping", self.name, exc)
                        return "refused"
                    log.warning("waiting failed: %s", exc)
                    self._stop.wait(follow.failed(exc))
                    continue
                self._pending.extend(message for message in messages if self._meant_for_me(message))
                self.cursor = follow.cursor
                if not messages and self._archived():
                    log.warning("%s: channel archived; stopping", self.name)
                    return "archived"
                if self._take_turns() == "archived":
                    return "archived"
        except KeyboardInterrupt:
            self._say(f"⏹ {self.name} was stopped by its operator.")
            return "interrupted"
        self._say(f"⏹ {self.name} is stopping.")
        return "stopped"

    def _next_wait(self) -> int:
        if self._pending:  # a reply is waiting for the per-minute guard
            return max(1, min(self.wait_seconds, int(self._until_reply_allowed()) + 1))
        return self.wait_seconds

    # -- deciding -----------------------------------------------------------------------------

    def _meant_for_me(self, message: r.Message) -> bool:
        """What ``meant_for_me`` says is addressed to this agent, in its channels or its DMs; an open question
        only if it claims it first and wins (lost: someone else has it; stay quiet)."""
        why = meant_for_me(self.name, message)
        if why is None or not (why == "dm" or message.channel in self.channels):
            return False
        if why == "open":
            try:
                self.client.claim(message.id)
            except ParleyError:
                return False
            return True
        return why in ("question", "mention") or (why == "dm" and message.expects_reply != "none")

    # -- turns ----------------------------------------------------------------------------------

    def _take_turns(self) -> str | None:
        while self._pending and self._until_reply_allowed() <= 0 and not self._budget_spent():
            message = self._pending.popleft()
            turn = self._turn(message)
            if turn is None or not turn.text.strip():
                continue
            try:
                self.client.post(message.channel, turn.text, reply_to=message.id)
            except ParleyError as exc:
                if exc.code == "channel_archived":
                    return "archived"
                log.warning("%s could not post its reply to message %s: %s", self.name, message.id, exc)
            self._replies.append(self.clock())
        return None

    def _turn(self, message: r.Message) -> Turn | None:
        context = self.executor.execute("read_messages", {"channel": message.channel, "limit": 12})
        prompt = (
            f"Recent messages in {message.channel}:\n{context}\n\n"
            f"Message {message.id} from {message.author} is for you:\n{wrap(message.content)}\n\n"
            "Work out the answer (use tools if they help), then reply."
        )
        system = SYSTEM.format(name=self.name, instructions=self.instructions)
        try:
            turn = self.brain.turn(system, prompt, self.executor.execute, self.guards.max_tool_rounds)
        except Exception as exc:
            log.exception("%s could not take its turn on message %s", self.brain.vendor, message.id)
            self._give_back(message, exc)
            return None
        self._account(turn)
        self.turns.append(turn)
        return turn

    def _give_back(self, message: r.Message, failure: Exception) -> None:
        """The model failed: hand the message back (a claim is released) with the reason in its thread, so
        that nobody waits for an answer that is not coming. The question stays open for someone else."""
        reason = f"⚠ {self.name} cannot answer this: its model failed ({type(failure).__name__}). It is open again."
        try:
            self.client.release(message.id, reason)
        except ParleyError as exc:
            log.warning("could not hand message %s back: %s", message.id, exc)

    # -- guards ---------------------------------------------------------------------------------

    def _until_reply_allowed(self) -> float:
        now = self.clock()
        while self._replies and now - self._replies[0] >= 60.0:
            self._replies.popleft()
        if len(self._replies) < self.guards.max_replies_per_minute:
            return 0.0
        return 60.0 - (now - self._replies[0])

    def _account(self, turn: Turn) -> None:
        self._roll_day()
        self.usage.tokens += turn.tokens
        self.usage.calls += turn.calls
        self._save_usage()

    @property
    def state_file(self) -> Path | None:
        """Today's usage, per agent name, so that a restart does not reset the daily budget."""
        return self.state_dir / f"{self.name}.json" if self.state_dir and self.name else None

    def _load_usage(self) -> None:
        if self.state_file is None:
            return
        try:
            saved = json.loads(self.state_file.read_text())
            usage = Usage(datetime.date.fromisoformat(saved["day"]), int(saved["tokens"]), int(saved["calls"]))
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable state file %s: %s", self.state_file, exc)
            return
        if usage.day == self.today():
            self.usage = usage

    def _save_usage(self) -> None:
        if self.state_file is None:
            return
        saved = {"day": self.usage.day.isoformat(), "tokens": self.usage.tokens, "calls": self.usage.calls}
        env.write_private(self.state_file, json.dumps(saved))

    def _roll_day(self) -> None:
        if self.today() != self.usage.day:
            self.usage = Usage(self.today())

    def _budget_spent(self) -> bool:
        self._roll_day()
        tokens, calls = self.guards.daily_token_budget, self.guards.daily_call_budget
        return (tokens is not None and self.usage.tokens >= tokens) or (calls is not None and self.usage.calls >= calls)

    # -- relay helpers --------------------------------------------------------------------------

    def _archived(self) -> bool:
        try:
            live = {c.channel for c in self.client.board().channels}
        except ParleyError:
            return False
        return any(channel not in live for channel in self.channels)

    def _say(self, text: str) -> None:
        for channel in self.channels:
            try:
                self.client.post(channel, text)
            except ParleyError as exc:
                log.warning("could not tell %s: %s", channel, exc)
