"""Parked long-polls, woken only by messages they may see, handed the messages directly.

A wait subscribes to keys: ``("c", channel_id)`` for each channel its read covered, and
``("a", agent_id)`` for an events feed (a first DM, a mention in a channel it has not joined).
The store publishes each commit's messages in id order; the hub delivers each message to the
waiters subscribed to its keys and resolves them: no database query per wake, no waking the room.

A wait starts from the cursor of a read made just before it parked. Messages committed between
that read and the park are caught by a short buffer of recent publishes; if the buffer has
already dropped messages newer than the cursor, ``wait`` answers None and the caller reads again.

A wait is also bound to its key: a revoke (``revoke``, on every replica) ends the key's parked waits at
once, a wait ends when its key expires, and a woken wait checks its key before it answers, so nothing
posted after a revoke reaches the revoked key.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Iterable

from parley.relay import access
from parley.relay.models import Caller, Message, Page, Posted

Key = tuple[str, int]

RECENT = 4096


def message_keys(posted: Posted) -> frozenset[Key]:
    return frozenset([("c", posted.message.channel_id), *(("a", agent) for agent in posted.notify_agents)])


def page_keys(page: Page) -> frozenset[Key]:
    keys = {("c", channel_id) for channel_id in page.channels}
    if page.agent_id is not None:
        keys.add(("a", page.agent_id))
    return frozenset(keys)


class _Waiter:
    __slots__ = ("after", "caller", "future", "keys", "messages")

    def __init__(
        self, keys: frozenset[Key], after: int, caller: Caller, future: asyncio.Future[list[Message] | None]
    ) -> None:
        self.keys, self.after, self.caller, self.future = keys, after, caller, future
        self.messages: list[Message] = []

    def wants(self, message: Message) -> bool:
        """Newer than its cursor, and within its key's scope (a mention elsewhere wakes nobody)."""
        return message.id > self.after and self.caller.may_use(message.channel)


class Hub:
    def __init__(self, recent: int = RECENT) -> None:
        self._subscribers: dict[Key, set[_Waiter]] = collections.defaultdict(set)
        self._recent: collections.deque[tuple[Message, frozenset[Key]]] = collections.deque(maxlen=recent)
        self._dropped_upto = 0
        self._closed = False
        self.parked = 0
        self.parked_by_agent: collections.Counter[int] = collections.Counter()
        self.wakeups = 0
        self.published = 0
        #: Keys revoked while this relay runs (ids are never reused): their waits end, and none parks again.
        self.revoked: set[int] = set()

    def publish(self, posted: Iterable[Posted]) -> None:
        """Deliver committed messages (in id order) to the waits that may see them."""
        woken: list[_Waiter] = []
        for item in posted:
            self.published += 1
            message, keys = item.message, message_keys(item)
            if len(self._recent) == self._recent.maxlen:
                self._dropped_upto = self._recent[0][0].id
            self._recent.append((message, keys))
            for key in keys:
                for waiter in self._subscribers.get(key, ()):
                    if not waiter.wants(message):
                        continue
                    if not waiter.messages:
                        woken.append(waiter)
                    if not waiter.messages or waiter.messages[-1] is not message:
                        waiter.messages.append(message)
        for waiter in woken:
            self._unsubscribe(waiter)
            if not waiter.future.done():
                waiter.future.set_result(waiter.messages)
                self.wakeups += 1

    async def wait(self, page: Page, caller: Caller, timeout: float) -> list[Message] | None:
        """Messages newer than ``page.cursor`` on the page's keys; [] on timeout or shutdown;
        None when the caller must read again because the recent buffer cannot vouch for the gap."""
        self.check_key(caller)
        if caller.expires_at is not None:
            timeout = min(timeout, caller.expires_at - time.time())
        if self._closed or timeout <= 0:
            return self._checked(caller, [])
        after = page.cursor
        if self._dropped_upto > after:
            return None
        keys = page_keys(page)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(keys, after, caller, loop.create_future())
        missed = [m for m, k in self._recent_after(after) if not keys.isdisjoint(k) and waiter.wants(m)]
        if missed:
            return missed
        for key in keys:
            self._subscribers[key].add(waiter)
        agent_id = caller.agent_id
        self.parked += 1
        self.parked_by_agent[agent_id] += 1
        timer = loop.call_later(timeout, _expire, waiter.future)
        try:
            return self._checked(caller, await waiter.future)
        finally:
            timer.cancel()
            self._unsubscribe(waiter)
            self.parked -= 1
            self.parked_by_agent[agent_id] -= 1
            if self.parked_by_agent[agent_id] <= 0:
                del self.parked_by_agent[agent_id]

    def check_key(self, caller: Caller) -> None:
        """Refuse a caller whose key was revoked, or has expired, since the request was authenticated."""
        if caller.key_id in self.revoked:
            raise access.key_revoked()
        if caller.expires_at is not None and time.time() >= caller.expires_at:
            raise access.key_expired()

    def _checked(self, caller: Caller, delivered: list[Message] | None) -> list[Message] | None:
        self.check_key(caller)
        return delivered

    def revoke(self, key_ids: Iterable[int]) -> None:
        """End the parked waits of these keys now; they answer with the key's refusal."""
        self.revoked.update(key_ids)
        for waiters in list(self._subscribers.values()):
            for waiter in list(waiters):
                if waiter.caller.key_id in self.revoked:
                    self._unsubscribe(waiter)
                    _expire(waiter.future)

    def _recent_after(self, after: int) -> list[tuple[Message, frozenset[Key]]]:
        newer = []
        for item in reversed(self._recent):
            if item[0].id <= after:
                break
            newer.append(item)
        newer.reverse()
        return newer

    def _unsubscribe(self, waiter: _Waiter) -> None:
        for key in waiter.keys:
            subscribers = self._subscribers.get(key)
            if subscribers is not None:
                subscribers.discard(waiter)
                if not subscribers:
                    del self._subscribers[key]

    def resync(self, high_water: int) -> None:
        """The store may have missed publishes (e.g. its listener reconnected): every wait, parked or
        starting from a cursor below ``high_water``, reads again instead of trusting the buffer."""
        self._dropped_upto = max(self._dropped_upto, high_water)
        for waiters in list(self._subscribers.values()):
            for waiter in list(waiters):
                self._unsubscribe(waiter)
                if not waiter.future.done():
                    waiter.future.set_result(None)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Answer every parked wait (with nothing new) so shutdown does not hang on them."""
        self._closed = True
        for waiters in list(self._subscribers.values()):
            for waiter in list(waiters):
                _expire(waiter.future)


def _expire(future: asyncio.Future[list[Message] | None]) -> None:
    if not future.done():
        future.set_result([])
