"""Retry policy as small pure functions: which answers to retry, how long to wait, when to give up."""

from __future__ import annotations

import email.utils
import random
import time

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Statuses after which the relay has certainly not acted, so even an unsafe call may be repeated.
NOT_ACTED_STATUSES = frozenset({429, 503})
#: A Retry-After longer than this is not waited out: the model hears about it instead.
MAX_RETRY_AFTER = 30.0


def should_retry(status: int) -> bool:
    return status in RETRY_STATUSES


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        return None
    return max(0.0, parsed.timestamp() - (time.time() if now is None else now))


def backoff(
    attempt: int, retry_after: float | None, *, base: float = 0.25, cap: float = 8.0, rng: random.Random | None = None
) -> float:
    """Seconds before retry number ``attempt`` (0-based): the server's Retry-After when it gave one,
    else exponential backoff with full jitter."""
    if retry_after is not None:
        return retry_after
    ceiling = min(cap, base * 2**attempt)
    return (rng or random).uniform(ceiling / 2, ceiling)
