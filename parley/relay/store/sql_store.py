"""What both stores do the same way around the operations: run them, authenticate, revoke."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal, Protocol

from parley.relay import access
from parley.relay.errors import Unauthorized, Unavailable
from parley.relay.models import AgentRow, Caller, KeyRecord, SearchHit
from parley.relay.ratelimit import Budget, settle
from parley.relay.settings import Settings
from parley.relay.store import sql
from parley.relay.store.base import Op, P, Subscriber, T

#: A search is stopped after this many seconds; at most SEARCHES run at once (the rest of the reads keep
#: their threads and connections), and at most SEARCH_QUEUE wait or run before new ones are turned away.
SEARCH_SECONDS = 2.0
#: Results are the best-ranked among this many of the newest matches the caller may see: ranking every match
#: of a common word in a million messages would cost more than the answer is worth.
SEARCH_CANDIDATES = 500
SEARCHES = 1
SEARCH_QUEUE = 16


@dataclasses.dataclass(frozen=True)
class Taken:
    """A token taken from ``bucket``, which held ``available`` tokens before."""

    bucket: int
    available: float


def budget(settings: Settings, kind: Literal["read", "write"], available: float) -> Budget:
    """What is left after a take from a bucket of ``kind`` that held ``available`` tokens (or RateLimited)."""
    return settle(kind, *settings.rate_limit(kind), available)


class Engine(Protocol):
    """A database's plumbing: snapshots for reads, one writer with group commits."""

    batches: int

    async def read(self, op: Callable[..., Coroutine[Any, Any, Any]], /, *args: Any, **kwargs: Any) -> Any: ...
    async def write(self, op: Callable[..., Coroutine[Any, Any, Any]], /, *args: Any, **kwargs: Any) -> Any: ...
    async def close(self) -> None: ...


class SQLStore:
    """The ``Store`` methods both stores share; a subclass supplies its engine and the parts that differ."""

    #: One process owns the database, so keys and agents may be remembered between requests.
    #: (With several replicas, a revoke on one must hold on every other at once: no memory.)
    remembers_identities = False

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._keys: dict[str, KeyRecord] = {}
        self._agents: dict[str, AgentRow] = {}
        self._full_machines: set[int] = set()  # machine keys at their agent limit (names are never removed)
        self.subscriber: Subscriber | None = None
        self._search_slots = asyncio.Semaphore(SEARCHES)
        self._searches = 0

    async def close(self) -> None:
        await self.engine.close()

    async def read(self, op: Op[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = await self.engine.read(op, *args, **kwargs)
        return result

    async def write(self, op: Op[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = await self.engine.write(op, *args, **kwargs)
        return result

    async def authenticate(self, digest: str, agent_name: str | None) -> Caller:
        caller, _ = await self._authenticate(digest, agent_name, None)
        return caller

    async def admit(self, digest: str, agent_name: str | None, kind: Literal["read", "write"]) -> tuple[Caller, Budget]:
        """``authenticate``, then ``spend`` a token of the caller's bucket; a store may take the token in the
        same round trip as the key lookup (``_identify``)."""
        caller, taken = await self._authenticate(digest, agent_name, kind)
        if taken is None or taken.bucket != caller.bucket:
            return caller, await self.spend(caller.bucket, kind)
        return caller, budget(self.settings, kind, taken.available)

    async def _authenticate(
        self, digest: str, agent_name: str | None, take: Literal["read", "write"] | None
    ) -> tuple[Caller, Taken | None]:
        key = self._keys.get(digest)
        agent = self._agents.get(agent_name or key.agent_name or "") if key is not None else None
        taken = None
        if key is None or agent is None:
            found = await self._identify(digest, agent_name, take)
            if found is None:
                raise Unauthorized("this API key is not known to the relay", code="invalid_key")
            key, agent, taken = found
        name = access.acting_name(key, agent_name, time.time())
        if key.kind == "machine" and (agent is None or agent.key_id != key.id):
            if agent is None and key.id in self._full_machines:  # refuse a flood of new names without a write
                raise sql.TooManyAgents(f"machine '{key.machine}' has all the agents it may have")
            try:
                agent = await self.write(
                    sql.register,
                    key,
                    name,
                    most=self.settings.max_agents_per_machine,
                    welcome=self.settings.welcome_channels,
                )
            except sql.TooManyAgents:
                self._full_machines.add(key.id)
                raise
        caller = access.caller(key, agent, name)
        if self.remembers_identities and agent is not None:
            self._keys[digest], self._agents[name] = key, agent
        return caller, taken

    async def _identify(
        self, digest: str, agent_name: str | None, take: Literal["read", "write"] | None
    ) -> tuple[KeyRecord, AgentRow | None, Taken | None] | None:
        """The key and its agent; with ``take``, a store may also take a token from the bucket of the caller
        the key makes (None: not taken, and ``admit`` calls ``spend``)."""
        found = await self.read(sql.identify, digest, agent_name)
        return (*found, None) if found is not None else None

    async def search(self, caller: Caller, query: str, *, channel: str | None, limit: int) -> list[SearchHit]:
        """Full-text search, gated so that searches cannot starve other reads."""
        if self._searches >= SEARCH_QUEUE:
            raise Unavailable("too many searches are running; retry shortly", retry_after=1, code="search_busy")
        self._searches += 1
        try:
            async with self._search_slots:
                return await self._search(caller, query, channel, limit)
        finally:
            self._searches -= 1

    async def _search(self, caller: Caller, query: str, channel: str | None, limit: int) -> list[SearchHit]:
        raise NotImplementedError

    async def spend(self, bucket: int, kind: Literal["read", "write"]) -> Budget:
        raise NotImplementedError

    async def revoke(self, target: str) -> int:
        revoked = await self.write(sql.revoke, target)
        for _, digest in revoked:
            self._keys.pop(digest, None)
        if revoked:
            await self._announce_revoked([key_id for key_id, _ in revoked])
        return len(revoked)

    async def _announce_revoked(self, key_ids: list[int]) -> None:
        """End the revoked keys' parked waits and streams (on every replica, where there are several)."""
        if self.subscriber is not None:
            self.subscriber.revoke(key_ids)
