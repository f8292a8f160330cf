"""``parley hook EVENT --client CLIENT``: tell a coding agent what arrived for it, in its client's hook format.

Events: ``session-start`` (what is waiting: unread mentions, DMs and questions for me), ``prompt`` (what arrived
since the last turn, one request) and ``stop`` (the end of a turn). For Claude Code, ``stop`` runs as an
``async``/``asyncRewake`` hook: it sleeps on the relay and exits 2 with the message on stderr when something
arrives, which wakes the idle session; only the newest sleeper of a session tells. Codex, Gemini CLI and
Cursor cannot be woken while idle: their stop hooks check at the end of each turn and ask for another turn
(``decision: block`` / ``deny``, ``followup_message``) when something is waiting.

Fail-safe: a relay that is down, a key that is missing or input that is not JSON ends the hook at once with
exit 0 and nothing said; a hook never blocks or breaks the session.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import httpx

from parley import env
from parley.client.errors import ParleyError
from parley.coding import identity, loops, trouble
from parley.coding.connect import CURSOR_LOOP_LIMIT, SLEEP_SECONDS
from parley.coding.wake import Follower, ForMe, State, tell
from parley.limits import DEFAULT_MAX_WAIT_SECONDS, DM_PREFIX

#: Each client's name for the events, where it has them.
EVENT_NAMES = {
    "claude-code": {"session-start": "SessionStart", "prompt": "UserPromptSubmit", "stop": "Stop"},
    "codex": {"session-start": "SessionStart", "prompt": "UserPromptSubmit", "stop": "Stop"},
    "gemini": {"session-start": "SessionStart", "prompt": "BeforeAgent", "stop": "AfterAgent"},
    "cursor": {"prompt": "beforeSubmitPrompt", "stop": "stop"},
}
#: A hook never holds up its session: a relay that does not connect within this is away (and not retried).
HOOK_CONNECT_SECONDS = 3.0


class Hook:
    def __init__(
        self,
        client: str,
        event: str,
        payload: dict[str, Any],
        *,
        directory: Path | None = None,
        acting_as: tuple[str | None, str | None, str | None] = (None, None, None),
    ) -> None:
        self.client, self.event, self.payload = client, event, payload
        self.acting_as = acting_as
        session = str(payload.get("session_id") or payload.get("conversation_id") or "default")
        self.consumer = f"{client}-{session}"
        self.directory = directory or env.state_dir()

    async def run(self, out: TextIO, err: TextIO, *, sleep_seconds: float = SLEEP_SECONDS) -> int:
        follower = Follower(
            *self.acting_as,
            consumer=self.consumer,
            directory=self.directory,
            retries=0,
            connect_timeout=HOOK_CONNECT_SECONDS,
        )
        turns = loops.Turns(follower.identity, self.directory)
        try:
            if self.event in ("session-start", "prompt"):
                turns.by_person()  # what the agent writes now, a person asked for
                if self.client == "cursor":
                    out.write(json.dumps({"continue": True}))  # Cursor's beforeSubmitPrompt: let the prompt go
                    return 0
                if self.event == "session-start":
                    return self._context(out, await self._waiting(follower))
                return self._context(out, tell(await self._since_last_turn(follower)))
            if self.client == "claude-code":
                return await self._sleep(follower, turns, err, sleep_seconds)
            if self._continuing():
                return self._continue(out, "")  # the next prompt's hook tells what arrived meanwhile
            waking = await loops.hold(follower, turns, await self._since_last_turn(follower))
            if waking:
                turns.woken_by([item.message for item in waking])
            return self._continue(out, tell(waking))
        finally:
            await follower.aclose()

    # -- what to say -------------------------------------------------------------------------------

    async def _waiting(self, follower: Follower) -> str:
        """At the start of a session: what is unread for me, and from here on the session's cursor."""
        board = await follower.client.board()
        follower.state.me, follower.state.cursor = board.agent, board.cursor
        follower.commit()
        me = board.agent
        found = [ForMe("question", q.message) for q in board.open_questions if q.message.expects_reply == me]
        seen = {item.message.id for item in found}
        found += [ForMe("mention", m.message()) for m in board.mentions if m.message_id not in seen]
        dms = [c for c in board.channels if c.channel.startswith(DM_PREFIX) and c.unread]
        lines = [tell(found)] if found else []
        lines += [f"parley: {c.unread} unread in your DM {c.channel} (read it with read_messages)." for c in dms]
        return "\n\n".join(lines)

    async def _since_last_turn(self, follower: Follower) -> list[ForMe]:
        await follower.start()
        found = await follower.poll(wait=0)
        follower.commit()
        return found

    def _context(self, out: TextIO, text: str) -> int:
        name = EVENT_NAMES[self.client].get(self.event)
        if text and name:
            out.write(json.dumps({"hookSpecificOutput": {"hookEventName": name, "additionalContext": text}}))
        elif self.client == "gemini":
            out.write("{}")  # Gemini CLI parses stdout as JSON
        return 0

    def _continuing(self) -> bool:
        """This turn is already one a stop hook asked for (``stop_hook_active``; Cursor: ``loop_count`` at its
        limit): asking for yet another is how two agents answering each other would loop forever."""
        if self.payload.get("stop_hook_active") is True:
            return True
        loops = self.payload.get("loop_count")
        return isinstance(loops, int) and loops >= CURSOR_LOOP_LIMIT

    def _continue(self, out: TextIO, text: str) -> int:
        """Codex, Gemini CLI, Cursor: at the end of a turn, ask for another when something is waiting."""
        if not text:
            out.write("{}")
        elif self.client == "cursor":
            out.write(json.dumps({"followup_message": text}))
        else:
            decision = "deny" if self.client == "gemini" else "block"
            out.write(json.dumps({"decision": decision, "reason": text}))
        return 0

    # -- Claude Code's sleeper -------------------------------------------------------------------------

    async def _sleep(self, follower: Follower, turns: loops.Turns, err: TextIO, sleep_seconds: float) -> int:
        """Wait on the relay; exit 2 with the message on stderr (which wakes the session) when one arrives."""
        pidfile = self.directory / "wake" / f"sleeper-{self.consumer}.pid"
        pidfile.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pidfile.write_text(str(os.getpid()))
        await follower.start()
        deadline = asyncio.get_running_loop().time() + sleep_seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            found = await follower.poll(wait=min(DEFAULT_MAX_WAIT_SECONDS, left))
            if not _newest(pidfile):
                return 0  # a newer turn has its own sleeper
            told = State(follower.state.path).cursor or 0  # a prompt hook may have told some meanwhile
            fresh = await loops.hold(follower, turns, [item for item in found if item.message.id > told])
            if fresh:
                follower.commit()
                turns.woken_by([item.message for item in fresh])
                err.write(tell(fresh) + "\n")
                return 2
        return 0


def _newest(pidfile: Path) -> bool:
    try:
        return pidfile.read_text().strip() == str(os.getpid())
    except OSError:
        return False


def project(payload: dict[str, Any]) -> Path:
    """The directory the session works in: ``cwd`` in the payload (Cursor: its first workspace root)."""
    roots = payload.get("workspace_roots")
    return identity.project_root(payload.get("cwd") or (roots[0] if isinstance(roots, list) and roots else None))


def main(client: str, event: str, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """Run one hook; never fail the session (exit 0 on every error, quietly, with why in the trouble log)."""
    try:
        raw = stdin.read()
        payload = json.loads(raw) if raw.strip() else {}
        if not isinstance(payload, dict):
            raise ValueError("the hook's input is not a JSON object")
        url, key, name, _ = identity.resolve(client, project(payload))
        if not key:
            raise ValueError(f"no identity for {client} in {project(payload)}: run 'parley connect {client}' there")
        hook = Hook(client, event, payload, acting_as=(url, key, name))
        return asyncio.run(hook.run(stdout, sys.stderr))
    except (ParleyError, httpx.HTTPError, OSError, ValueError, KeyError, TypeError) as exc:
        trouble.note(f"parley hook {event} --client {client}", exc)
        if client == "cursor" and event == "prompt":
            stdout.write(json.dumps({"continue": True}))  # never hold a person's prompt back
        elif client == "gemini" or (event == "stop" and client != "claude-code"):
            stdout.write("{}")
        return 0
    except KeyboardInterrupt:
        return 0
