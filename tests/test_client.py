"""``parley.Client`` and ``parley.AsyncClient``: every method against a live relay on both stores, a retried send
stored once, and ``follow`` living through a relay restart without skipping or repeating a message."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import Relay, RelayProcess, eventually, unique

import parley
from parley.client import Client, ParleyError, RelayUnreachable
from parley.client.transport import KeepAliveTransport, Response, TransportError


def test_every_method_against_a_live_relay(relay: Relay) -> None:
    alice_agent, bob_agent = relay.agent(), relay.agent()
    channel = unique("c")
    with (
        Client(relay.url, alice_agent.key) as alice,
        Client(relay.url, bob_agent.key) as bob,
        Client(relay.url, admin_token=relay.admin_token) as operator,
    ):
        assert alice.me().name == alice_agent.name and alice.me().channels is None
        joined = bob.join(channel, description="work")
        assert (joined.name, joined.description) == (channel, "work")
        question = bob.post(channel, "who reviews #7?", expects_reply="anyone", metadata={"pr": 7})
        assert not question.replayed and question.message.metadata == {"pr": 7}
        page = alice.read(channel)
        assert [m.id for m in page.messages] == [question.message.id] and page.cursor == question.message.id
        assert channel in [c.name for c in alice.channels() if c.member]
        claim = alice.claim(question.message.id)
        assert claim.claimed_by == alice_agent.name
        released = alice.release(question.message.id, "not today")
        assert released.released and released.note is not None and released.note.content == "not today"
        answer = bob.post(channel, f"@{alice_agent.name} then you?", reply_to=question.message.id)
        assert answer.message.parent_message_id == question.message.id
        assert [m.content for m in alice.mentions(mark_read=True)] == [f"@{alice_agent.name} then you?"]
        assert alice.mentions() == []
        every = alice.mentions(unread_only=False)
        assert alice.mark_mentions_read([m.mention_id for m in every]) == 0  # already read
        dm = alice.dm(bob_agent.name, "ping")
        assert dm.message.expects_reply == bob_agent.name
        assert bob.read(f"@{alice_agent.name}").messages[-1].content == "ping"
        assert [h.message.id for h in bob.search("reviews", channel=channel)] == [question.message.id]
        assert alice_agent.name in [a.name for a in bob.agents(channel)]
        board = bob.board()
        assert board.agent == bob_agent.name and any(c.channel == channel for c in board.channels)
        shared = alice.upload(channel, "notes.md", "# notes", message="my notes")
        assert (shared.name, shared.size) == ("notes.md", 7)
        got = bob.download(shared.id)
        assert got.text() == "# notes" and got.filename == "notes.md"
        private = alice.join(unique("p"), private=True)
        assert private.name.startswith(f"{alice_agent.name}~") and private.private
        assert alice.add_member(private.name, bob_agent.name) is True
        assert alice.leave(channel) is True
        since = bob.events().cursor
        bob.post(channel, "after")
        assert [m.content for m in bob.events(since).messages] == ["after"]
        # The operator's calls.
        minted = operator.create_key(name=unique("new"))
        assert minted.secret and minted.secret.startswith("pa_")
        assert minted.id in [k.id for k in operator.list_keys()]
        assert operator.revoke(minted.name or "") == 1
        assert operator.stats()["messages"] >= 4
        assert operator.archive(channel).archived
        # Refusals carry the relay's code.
        with pytest.raises(ParleyError) as refused:
            alice.read(unique("none"))
        assert refused.value.code == "channel_not_found" and refused.value.status == 404


class DropsTheFirstAnswer(KeepAliveTransport):
    """Delivers the first send, then loses the relay's answer: what a client sees on a timeout."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.dropped = 0

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes | None, timeout: float) -> Response:
        response = super().handle(method, path, headers, body, timeout)
        if method == "POST" and not self.dropped:
            self.dropped += 1
            raise TransportError("timed out (simulated)", sent=True)
        return response


def test_a_retried_send_is_stored_once(relay: Relay) -> None:
    alice = relay.agent()
    channel = unique("c")
    transport = DropsTheFirstAnswer(relay.url)
    with Client(relay.url, alice.key, transport=transport, sleep=lambda _: None) as client:
        posted = client.post(channel, "exactly once")
    assert transport.dropped == 1 and posted.replayed is True
    assert [m["content"] for m in alice.read(channel)["messages"]] == ["exactly once"]


def test_an_unreachable_relay_is_an_error_not_a_hang() -> None:
    with (
        Client("http://127.0.0.1:9", "pa_x", retries=1, sleep=lambda _: None) as client,
        pytest.raises(RelayUnreachable),
    ):
        client.me()


def test_follow_lives_through_a_relay_restart(tmp_path: Path) -> None:
    relay = RelayProcess.start(tmp_path / "data")
    port = int(relay.url.rsplit(":", 1)[1])
    with relay.agent("alice") as alice_http, relay.agent("bob") as bob_http:
        alice_key = alice_http.headers["Authorization"].removeprefix("Bearer ")
        bob_key = bob_http.headers["Authorization"].removeprefix("Bearer ")
    seen: list[str] = []
    with Client(relay.url, alice_key) as client:
        since = client.me().cursor

    def follow() -> None:
        with Client(relay.url, alice_key, sleep=lambda s: threading.Event().wait(min(s, 0.2))) as client:
            for message in client.follow(since, wait=2):
                seen.append(message.content)
                if message.content == "last":
                    return

    with Client(relay.url, bob_key) as bob:
        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        for n in range(3):
            bob.dm("alice", f"before {n}")
        eventually(lambda: len(seen) == 3, what="the first three")
        relay.stop()
        relay = RelayProcess.start(tmp_path / "data", port=port)
        for n in range(3):
            bob.dm("alice", f"after {n}")
        bob.dm("alice", "last")
        follower.join(timeout=60)
    relay.stop()
    assert not follower.is_alive()
    assert seen == ["before 0", "before 1", "before 2", "after 0", "after 1", "after 2", "last"]


def test_the_async_client_speaks_the_same_calls(relay: Relay) -> None:
    alice, bob = relay.agent(), relay.agent()
    channel = unique("c")

    async def main() -> list[Any]:
        async with parley.AsyncClient(relay.url, alice.key) as client:
            posted = await client.post(channel, "async hello")
            page = await client.read(channel)
            with pytest.raises(ParleyError, match="channel_not_found"):
                await client.read(unique("none"))
            follow = client.follow(posted.message.id, wait=5)
            bob.dm(alice.name, "async dm")
            first = await anext(follow)
            await follow.aclose()
            return [posted.message.content, [m.content for m in page.messages], first.content]

    assert anyio.run(main) == ["async hello", ["async hello"], "async dm"]
