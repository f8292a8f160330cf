"""What both stores do the same way around the operations: run them, authenticate, revoke."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from parley.relay import access
from parley.relay.errors import Unauthorized, Unavailable
from parley.relay.models import Agent, Caller, KeyRecord, SearchHit
from parley.relay.settings import Settings
from parley.relay.store import sql
from parley.relay.store.base import Op, P, T

#: A search is stopped after this many seconds; at most SEARCHES run at once (the rest of the reads keep
#: their threads and connections), and at most SEARCH_QUEUE wait or run before new ones are turned away.
SEARCH_SECONDS = 2.0
SEARCHES = 1
SEARCH_QUEUE = 16


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
        self._agents: dict[str, Agent] = {}
        self._full_machines: set[int] = set()  # machine keys at their agent limit (names are never removed)
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

    async def authenticate(self, secret: str, agent_name: str | None) -> Caller:
        digest = access.hash_key(secret)
        key = self._keys.get(digest)
        agent = self._agents.get(agent_name or key.agent_name or "") if key is not None else None
        if key is None or agent is None:
            found = await self._identify(digest, agent_name)
            if found is None:
                raise Unauthorized("this API key is not known to the relay", code="invalid_key")
            key, agent = found
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
        return caller

    async def _identify(self, digest: str, agent_name: str | None) -> tuple[KeyRecord, Agent | None] | None:
        return await self.read(sql.identify, digest, agent_name)

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

    async def revoke(self, target: str) -> int:
        revoked = await self.write(sql.revoke, target)
        for digest in revoked:
            self._keys.pop(digest, None)
        return len(revoked)
