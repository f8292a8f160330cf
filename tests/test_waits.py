"""Long-polls: a parked wait returns as soon as a message it may see lands, and never for one it may not."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any

from conftest import Agent, Relay, assert_error, data, eventually, unique

from parley.relay.hub import Hub
from parley.relay.models import Caller, Message, Page, Posted


def _park(
    pool: concurrent.futures.ThreadPoolExecutor, relay: Relay, agent: Agent, path: str, **params: Any
) -> concurrent.futures.Future[dict[str, Any]]:
    """Start a waiting GET in a thread and return once the relay has parked it."""
    parked_before = relay.stats()["parked_waits"]
    http = relay.client(agent.key)
    future = pool.submit(lambda: dict(data(http.get(path, params=params))))
    eventually(lambda: relay.stats()["parked_waits"] > parked_before or future.done(), what="the wait to park")
    return future


def test_parked_channel_read_wakes_for_a_new_message(relay: Relay) -> None:
    alice, bob = relay.agent(), relay.agent()
    channel = unique("c")
    cursor = alice.post(channel, "first")["id"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = _park(pool, relay, bob, "/api/v1/messages", channel=channel, since=cursor, wait=20)
        sent = alice.post(channel, "second")
        page = waiting.result(timeout=15)
    assert [m["id"] for m in page["messages"]] == [sent["id"]]
    assert page["cursor"] == sent["id"]


def test_events_wake_for_a_first_dm_and_a_mention_outside_my_channels(relay: Relay) -> None:
    alice, bob = relay.agent(), relay.agent()
    cursor = bob.events()["cursor"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = _park(pool, relay, bob, "/api/v1/events", since=cursor, wait=20)
        dm = alice.dm(bob.name, "are you there?")
        page = waiting.result(timeout=15)
        assert [m["id"] for m in page["messages"]] == [dm["id"]]

        waiting = _park(pool, relay, bob, "/api/v1/events", since=page["cursor"], wait=20)
        mention = alice.post(unique("c"), f"@{bob.name} look at this")
        page = waiting.result(timeout=15)
        assert [m["id"] for m in page["messages"]] == [mention["id"]]


def test_a_wait_is_not_woken_by_what_it_may_not_see(fresh_relay: Callable[..., Relay]) -> None:
    relay = fresh_relay(max_wait=1.5)
    alice, bob, eve = relay.agent(), relay.agent(), relay.agent()
    mine, elsewhere = unique("c"), unique("c")
    bob.post(mine, "bob's channel")
    private = eve.private_channel()
    cursor = bob.events()["cursor"]
    wakeups = relay.stats()["wakeups"]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        events = _park(pool, relay, bob, "/api/v1/events", since=cursor, wait=30)
        channel_wait = _park(pool, relay, bob, "/api/v1/messages", channel=mine, since=cursor, wait=30)
        eve.dm(alice.name, "between us")
        alice.post(elsewhere, "a channel bob never joined")
        eve.post(private, f"private, even with @{bob.name}")
        assert events.result(timeout=15)["messages"] == []
        assert channel_wait.result(timeout=15)["messages"] == []
    assert relay.stats()["wakeups"] == wakeups
    # wait above the relay's cap is clamped (the request returns), never refused.
    assert bob.read(mine, since=10**9, wait=1000)["messages"] == []


def test_many_waiters_each_get_the_message_once(relay: Relay) -> None:
    alice = relay.agent()
    channel = unique("c")
    cursor = alice.post(channel, "start")["id"]
    readers = [relay.agent() for _ in range(30)]
    for reader in readers:
        reader.read(channel)  # join
    parked_before = relay.stats()["parked_waits"]
    with concurrent.futures.ThreadPoolExecutor(len(readers)) as pool:
        futures = [pool.submit(lambda r=r: r.read(channel, since=cursor, wait=20)) for r in readers]
        eventually(lambda: relay.stats()["parked_waits"] >= parked_before + len(readers), what="all waits parked")
        sent = alice.post(channel, "for everyone")
        pages = [f.result(timeout=15) for f in futures]
    assert all([m["id"] for m in p["messages"]] == [sent["id"]] for p in pages)


def _caller(agent_id: int) -> Caller:
    return Caller(agent_id=agent_id, name=f"agent-{agent_id}", key_id=agent_id)


def _posted(message_id: int, channel_id: int, notify: tuple[int, ...] = ()) -> Posted:
    message = Message(message_id, channel_id, f"c{channel_id}", "a", "x", None, None, "none", 0.0)
    return Posted(message, replayed=False, notify_agents=notify)


def test_hub_catches_messages_published_between_the_read_and_the_park() -> None:
    async def scenario() -> None:
        hub = Hub(recent=4)
        page = Page(messages=[], cursor=10, channels=frozenset({1}))
        hub.publish([_posted(11, 2), _posted(12, 1)])  # after the read, before the park
        assert [m.id for m in await hub.wait(page, caller=_caller(1), timeout=5) or []] == [12]
        hub.publish([_posted(13 + i, 3) for i in range(4)])  # the buffer drops 11 and 12
        assert await hub.wait(page, caller=_caller(1), timeout=5) is None  # cannot vouch: read again
        assert await hub.wait(Page([], 16, frozenset({1})), caller=_caller(1), timeout=0.01) == []

    asyncio.run(scenario())


def test_hub_wakes_only_subscribers_and_delivers_each_message_once() -> None:
    async def scenario() -> None:
        hub = Hub()
        feed = Page(messages=[], cursor=0, channels=frozenset({1}), agent_id=7)
        other = Page(messages=[], cursor=0, channels=frozenset({2}))
        waiting = asyncio.ensure_future(hub.wait(feed, caller=_caller(7), timeout=5))
        bystander = asyncio.ensure_future(hub.wait(other, caller=_caller(8), timeout=5))
        while hub.parked < 2:  # let both park
            await asyncio.sleep(0)
        hub.publish([_posted(1, 1, notify=(7,)), _posted(2, 5, notify=(7,)), _posted(3, 9)])
        assert [m.id for m in await waiting or []] == [1, 2]
        assert not bystander.done()
        hub.close()
        assert await bystander == []
        assert hub.parked == 0 and hub.wakeups == 1

    asyncio.run(scenario())


def test_events_for_one_channel_start_from_now_and_ignore_the_rest(relay: Relay) -> None:
    alice, bob = relay.agent(), relay.agent()
    mine, other = unique("c"), unique("c")
    alice.post(mine, "history")
    start = bob.events(channel=mine)
    assert start["messages"] == []  # no since: from now
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = _park(pool, relay, bob, "/api/v1/events", channel=mine, since=start["cursor"], wait=20)
        alice.dm(bob.name, "not this channel")
        alice.post(other, f"@{bob.name} nor this one")
        sent = alice.post(mine, "this one")
        page = waiting.result(timeout=15)
    assert [m["id"] for m in page["messages"]] == [sent["id"]]


def test_hub_resync_makes_waits_read_again() -> None:
    async def scenario() -> None:
        hub = Hub()
        page = Page(messages=[], cursor=5, channels=frozenset({1}))
        waiting = asyncio.ensure_future(hub.wait(page, caller=_caller(1), timeout=5))
        while hub.parked < 1:
            await asyncio.sleep(0)
        hub.resync(high_water=9)  # notifications up to 9 may have been missed
        assert await waiting is None  # parked waits read again
        assert await hub.wait(page, caller=_caller(1), timeout=5) is None  # and so does a wait from an older cursor
        assert await hub.wait(Page([], 9, frozenset({1})), caller=_caller(1), timeout=0.01) == []

    asyncio.run(scenario())


def test_a_channel_limited_key_is_not_woken_or_told_about_what_lies_outside_its_channels(relay: Relay) -> None:
    allowed, elsewhere = unique("c"), unique("c")
    friend, outsider = relay.agent(), relay.agent()
    limited = relay.agent(channels=[allowed])
    friend.post(allowed, "hello")
    outsider.post(elsewhere, "setting up")
    limited.read(allowed)  # joins it
    cursor = limited.events()["cursor"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = _park(pool, relay, limited, "/api/v1/events", since=cursor, wait=20)
        outsider.post(elsewhere, f"@{limited.name} the secret is 42")  # outside its scope: must not wake it
        inside = friend.post(allowed, "a message it may read")
        page = waiting.result(timeout=15)
    assert [m["id"] for m in page["messages"]] == [inside["id"]]

    board = limited.get("/api/v1/board")
    assert board["unread_mentions"] == 0 and board["mentions"] == []
    assert "secret" not in limited.http.get("/api/v1/events", params={"since": 0}).text
    # Agents: itself and those it shares a channel with, nobody else, and nobody else to DM or ask.
    names = {a["name"] for a in limited.get("/api/v1/agents")["agents"]}
    assert {limited.name, friend.name} <= names and outsider.name not in names
    assert_error(
        limited.http.post("/api/v1/dm", json={"target_agent": outsider.name, "content": "hi"}), 404, "agent_not_found"
    )
    asked = {"channel": allowed, "content": "can you?", "expects_reply": outsider.name}
    assert_error(limited.http.post("/api/v1/messages", json=asked), 404, "agent_not_found")
    assert limited.dm(friend.name, "hi friend")["channel"].startswith("dm:")
