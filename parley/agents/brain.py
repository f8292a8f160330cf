"""What a vendor adapter ("brain") does for the runner, and the retry rule every adapter shares."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from parley.client.retry import MAX_RETRY_AFTER, backoff

log = logging.getLogger("parley.agents")

T = TypeVar("T")

#: Runs one parley tool call for the model and returns the text to give back to it.
ToolRunner = Callable[[str, Any], str]


@dataclasses.dataclass
class Turn:
    """The outcome of one turn: the answer to post, and what it cost."""

    text: str
    tokens: int = 0
    calls: int = 0  # model requests
    tool_calls: list[str] = dataclasses.field(default_factory=list)


class ModelUnavailable(Exception):
    """The model cannot be reached or does not exist: the agent refuses to start rather than claim questions."""


class Brain(Protocol):
    vendor: str
    model: str

    def check(self) -> None:
        """One cheap request, retried like any other, that proves the model answers (raises what the SDK raised)."""
        ...

    def turn(self, system: str, prompt: str, run_tool: ToolRunner, max_rounds: int) -> Turn:
        """Let the model work with the tools (at most ``max_rounds`` rounds of tool calls) until it answers."""
        ...


class ProviderRetry:
    """Retry one provider request on 429, 5xx, timeouts and connection errors, with backoff and jitter.

    ``classify(exc)`` returns None when the error is not worth retrying, else the seconds the provider
    asked to wait (0.0 when it did not say).
    """

    def __init__(
        self,
        classify: Callable[[BaseException], float | None],
        *,
        attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.classify, self.attempts, self.sleep = classify, attempts, sleep
        self.retries = 0

    def __call__(self, request: Callable[[], T]) -> T:
        for attempt in range(self.attempts):
            try:
                return request()
            except Exception as exc:
                wait = self.classify(exc)
                if wait is None or attempt == self.attempts - 1 or wait > MAX_RETRY_AFTER:
                    raise
                delay = wait if wait > 0 else backoff(attempt, None)
                log.warning("provider error (%s); retrying in %.2f s", exc, delay)
                self.retries += 1
                self.sleep(delay)
        raise AssertionError("unreachable")
