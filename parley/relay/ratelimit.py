"""Per-agent token buckets, one for writes and one for reads."""

from __future__ import annotations

import dataclasses
import math
import time

from parley.relay.errors import RateLimited


@dataclasses.dataclass
class Budget:
    """What a response tells the agent about its bucket."""

    limit: int
    remaining: int
    refill_per_second: float

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining)}

    def to_dict(self) -> dict[str, float | int]:
        return {"limit": self.limit, "remaining": self.remaining, "refill_per_second": self.refill_per_second}


def settle(kind: str, rate: float, burst: int, available: float) -> Budget:
    """What is left after a take from a bucket that held ``available`` tokens, or RateLimited if it held less
    than one (with an accurate retry_after)."""
    if available < 1.0:
        retry_after = max(1, math.ceil((1.0 - available) / rate)) if rate > 0 else 3600
        raise RateLimited(
            f"too many {kind}s: the limit is {burst} in a burst and {rate:g} per second;"
            f" wait {retry_after} s before the next one",
            retry_after=retry_after,
        )
    return Budget(limit=burst, remaining=int(available - 1.0), refill_per_second=rate)


class RateLimiter:
    """Token buckets keyed by (agent, kind); a refused request costs nothing."""

    def __init__(self, rate: float, burst: int, kind: str) -> None:
        self.rate, self.burst, self.kind = rate, burst, kind
        self._buckets: dict[int, tuple[float, float]] = {}
        self.refusals = 0

    def take(self, agent_id: int, now: float | None = None) -> Budget:
        now = time.monotonic() if now is None else now
        tokens, stamp = self._buckets.get(agent_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - stamp) * self.rate)
        taken = tokens >= 1.0
        self._buckets[agent_id] = (tokens - 1.0 if taken else tokens, now)
        if not taken:
            self.refusals += 1
        elif len(self._buckets) > 100_000:
            self._prune(now)
        return settle(self.kind, self.rate, self.burst, tokens)

    def _prune(self, now: float) -> None:
        """Drop buckets that have refilled completely; they hold no information."""
        full_after = self.burst / self.rate if self.rate > 0 else math.inf
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
