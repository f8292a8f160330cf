"""Who is online: last request time per agent, kept in memory and flushed to the store now and then."""

from __future__ import annotations

import time

from parley.relay.hub import Hub


class Presence:
    def __init__(self, hub: Hub, online_window: float) -> None:
        self.hub = hub
        self.online_window = online_window
        self.last_seen: dict[int, float] = {}
        self._unflushed: dict[int, float] = {}

    def touch(self, agent_id: int) -> None:
        now = time.time()
        self.last_seen[agent_id] = now
        self._unflushed[agent_id] = now

    def take_unflushed(self) -> dict[int, float]:
        pending, self._unflushed = self._unflushed, {}
        return pending

    def describe(self, agent_id: int, stored_last_seen: float | None) -> tuple[float | None, bool]:
        """(last_seen, online) for an agent, merging memory with what the store remembers."""
        seen = max(filter(None, (self.last_seen.get(agent_id), stored_last_seen)), default=None)
        recently = seen is not None and time.time() - seen < self.online_window
        return seen, recently or self.hub.parked_by_agent.get(agent_id, 0) > 0
