"""Post a run's status to a channel without the run noticing the relay.

The handler's hooks only put a small event on a bounded queue (never waiting; when full, the event is
dropped and counted). A background thread turns events into posts: at most one post per run every
``min_interval`` seconds (events in between are coalesced into one message), each threaded under the
run's first message and carrying metadata (event, run id, elapsed). A relay that is down, slow or
refusing costs the run nothing; failures are counted in ``stats``.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from parley import env
from parley.executors import Executor

MAX_TEXT = 1_500


@dataclasses.dataclass(frozen=True)
class StatusEvent:
    root: UUID
    event: str  # run_start | final_answer | tool_call | tool_error | llm_error | chain_error
    text: str
    elapsed: float


_STOP = object()


class StatusPoster:
    """The background half: a thread that posts queued events, throttled and coalesced per run."""

    def __init__(self, executor: Executor, channel: str, *, min_interval: float, max_queue: int) -> None:
        self.executor = executor
        self.channel = channel
        self.min_interval = min_interval
        self.stats = {"queued": 0, "posted": 0, "dropped": 0, "failed": 0}
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._threads: dict[UUID, int | None] = {}  # run -> its first message's id (None: that post failed)
        self._last_post: dict[UUID, float] = {}
        self._pending: dict[UUID, list[StatusEvent]] = {}
        self._idle = threading.Condition()
        self._busy = 0
        self._worker = threading.Thread(target=self._loop, name="parley-status", daemon=True)
        self._worker.start()

    def submit(self, event: StatusEvent) -> None:
        """Never blocks: a full queue drops the event."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._count("dropped")
            return
        self._count("queued", busy=1)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far has been posted (or has failed); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy or self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Post what is queued, stop the thread, close the connection."""
        self.flush(timeout)
        self._queue.put(_STOP)
        self._worker.join(timeout)
        self.executor.close()

    def _count(self, stat: str, busy: int = 0) -> None:
        with self._idle:
            self.stats[stat] += 1
            self._busy += busy
            self._idle.notify_all()

    def _done(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    def _loop(self) -> None:
        while True:
            timeout = self._next_due()
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            if item is not None:
                self._pending.setdefault(item.root, []).append(item)
            self._post_due()
            if item is not None:
                self._done()

    def _next_due(self) -> float | None:
        if not self._pending:
            return None
        now = time.monotonic()
        return max(0.0, min(self._last_post.get(root, 0.0) + self.min_interval - now for root in self._pending))

    def _post_due(self) -> None:
        now = time.monotonic()
        for root in list(self._pending):
            events = self._pending[root]
            if root not in self._threads:  # the run's first message opens its thread
                self._post(root, [events.pop(0)])
            elif now >= self._last_post.get(root, 0.0) + self.min_interval:
                self._post(root, events[:])
                events.clear()
            if not events:
                del self._pending[root]
        with self._idle:
            self._idle.notify_all()

    def _post(self, root: UUID, events: Sequence[StatusEvent]) -> None:
        metadata = {"events": [e.event for e in events], "run_id": str(root), "elapsed": events[-1].elapsed}
        arguments: dict[str, Any] = {"channel": self.channel, "content": "\n".join(e.text for e in events)}
        if self._threads.get(root) is not None:
            arguments["reply_to"] = self._threads[root]
        try:
            result = self.executor.execute_json("send_message", arguments, extra={"metadata": metadata})
        except Exception:  # never let the poster die; the run must not notice
            result = None
        self._last_post[root] = time.monotonic()
        ok = result is not None and result.ok
        self._count("posted" if ok else "failed")
        self._threads.setdefault(root, result.data["message"]["id"] if ok and result else None)


class _Reporter:
    """The run-facing half: turns LangChain callbacks into status events. Cheap and non-blocking."""

    def __init__(self, poster: StatusPoster, post_tool_calls: bool) -> None:
        self.poster = poster
        self.post_tool_calls = post_tool_calls
        self._roots: dict[UUID, UUID] = {}
        self._started: dict[UUID, float] = {}

    def _root(self, run_id: UUID, parent_run_id: UUID | None) -> UUID:
        root = self._roots.get(parent_run_id, parent_run_id) if parent_run_id else run_id
        self._roots[run_id] = root or run_id
        return root or run_id

    def _emit(self, root: UUID, event: str, text: str) -> None:
        elapsed = time.monotonic() - self._started.get(root, time.monotonic())
        self.poster.submit(StatusEvent(root, event, _clip(text), round(elapsed, 3)))

    def chain_start(
        self, serialized: dict[str, Any] | None, run_id: UUID, parent_run_id: UUID | None, name: str | None
    ) -> None:
        root = self._root(run_id, parent_run_id)
        if parent_run_id is None:
            self._started[root] = time.monotonic()
            label = name or (serialized or {}).get("name") or "run"
            self._emit(root, "run_start", f"▶ {label} started (run {run_id})")

    def chain_end(self, outputs: Any, run_id: UUID, parent_run_id: UUID | None) -> None:
        if parent_run_id is None:
            self._emit(run_id, "final_answer", f"✔ {final_answer(outputs)}")
            self._forget(run_id)

    def chain_error(self, error: BaseException, run_id: UUID, parent_run_id: UUID | None) -> None:
        if parent_run_id is None:
            self._emit(run_id, "chain_error", f"✖ run failed: {type(error).__name__}: {error}")
            self._forget(run_id)

    def llm_error(self, error: BaseException, run_id: UUID, parent_run_id: UUID | None) -> None:
        self._emit(self._root(run_id, parent_run_id), "llm_error", f"✖ model error: {type(error).__name__}: {error}")

    def tool_start(
        self, serialized: dict[str, Any] | None, input_str: str, run_id: UUID, parent_run_id: UUID | None
    ) -> None:
        root = self._root(run_id, parent_run_id)
        if self.post_tool_calls:
            name = (serialized or {}).get("name", "tool")
            self._emit(root, "tool_call", f"→ {name}({input_str})")

    def tool_error(self, error: BaseException | str, run_id: UUID, parent_run_id: UUID | None) -> None:
        self._emit(self._root(run_id, parent_run_id), "tool_error", f"✖ tool failed: {error}")

    def tool_end(self, output: Any, run_id: UUID, parent_run_id: UUID | None) -> None:
        # A tool that handles its own errors (handle_tool_error) ends "successfully" with an error message.
        if getattr(output, "status", None) == "error":
            self.tool_error(str(getattr(output, "content", output)), run_id, parent_run_id)

    def _forget(self, root: UUID) -> None:
        self._started.pop(root, None)
        for run, owner in list(self._roots.items()):
            if owner == root:
                del self._roots[run]


def final_answer(outputs: Any) -> str:
    """The answer a person wants to see: a LangGraph run's last AI message, not the state."""
    if isinstance(outputs, dict):
        messages = outputs.get("messages")
        if isinstance(messages, list):
            for message in reversed(messages):
                if getattr(message, "type", None) == "ai" and getattr(message, "content", None):
                    return _text(message.content)
        for key in ("output", "answer", "result"):
            if key in outputs:
                return _text(outputs[key])
    if isinstance(outputs, str):
        return outputs
    return _clip(repr(outputs))


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content).strip()
    return str(content)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class ParleyCallbackHandler(BaseCallbackHandler):
    """Posts run status to ``channel``: start, final answer, errors, and (opt-in) each tool call.

    ``flush()`` waits until what was queued has been posted, e.g. before a script exits.
    """

    run_inline = True  # the hooks only enqueue, so they may run inline in async runs too
    raise_error = False

    def __init__(
        self,
        channel: str,
        *,
        url: str | None = None,
        key: str | None = None,
        agent_name: str | None = None,
        executor: Executor | None = None,
        min_interval: float = 2.0,
        max_queue: int = 1_000,
        post_tool_calls: bool = False,
    ) -> None:
        if executor is None:
            executor = Executor(env.relay_url(url), env.require_key(key), env.agent_name(agent_name))
        self.poster = StatusPoster(executor, channel, min_interval=min_interval, max_queue=max_queue)
        self._reporter = _Reporter(self.poster, post_tool_calls)

    @property
    def stats(self) -> dict[str, int]:
        return self.poster.stats

    def flush(self, timeout: float = 10.0) -> bool:
        return self.poster.flush(timeout)

    def close(self) -> None:
        self.poster.close()

    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._reporter.chain_start(serialized, run_id, parent_run_id, kwargs.get("name"))

    def on_chain_end(
        self, outputs: dict[str, Any], *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        self._reporter.chain_end(outputs, run_id, parent_run_id)

    def on_chain_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        self._reporter.chain_error(error, run_id, parent_run_id)

    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        self._reporter.llm_error(error, run_id, parent_run_id)

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._reporter.tool_start(serialized, input_str, run_id, parent_run_id)

    def on_tool_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        self._reporter.tool_error(error, run_id, parent_run_id)

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._reporter.tool_end(output, run_id, parent_run_id)


class AsyncParleyCallbackHandler(AsyncCallbackHandler):
    """The async flavour for async-only callback managers; the hooks enqueue and return at once."""

    def __init__(self, channel: str, **options: Any) -> None:
        self.sync = ParleyCallbackHandler(channel, **options)

    @property
    def stats(self) -> dict[str, int]:
        return self.sync.stats

    def flush(self, timeout: float = 10.0) -> bool:
        return self.sync.flush(timeout)

    def close(self) -> None:
        self.sync.close()

    async def on_chain_start(self, *args: Any, **kwargs: Any) -> None:
        self.sync.on_chain_start(*args, **kwargs)

    async def on_chain_end(self, *args: Any, **kwargs: Any) -> None:
        self.sync.on_chain_end(*args, **kwargs)

    async def on_chain_error(self, *args: Any, **kwargs: Any) -> None:
        self.sync.on_chain_error(*args, **kwargs)

    async def on_llm_error(self, *args: Any, **kwargs: Any) -> None:
        self.sync.on_llm_error(*args, **kwargs)

    async def on_tool_start(self, *args: Any, **kwargs: Any) -> None:
        self.sync.on_tool_start(*args, **kwargs)

    async def on_tool_error(self, *args: Any, **kwargs: Any) -> None:
        self.sync.on_tool_error(*args, **kwargs)

    async def on_tool_end(self, *args: Any, **kwargs: Any) -> None:
        self.sync.on_tool_end(*args, **kwargs)
