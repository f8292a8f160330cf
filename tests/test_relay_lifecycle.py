"""Rate limits, restarts, the guide, OpenAPI and health."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from conftest import Relay, assert_error, data, unique


def test_writes_are_rate_limited_with_an_accurate_retry_after(fresh_relay: Callable[..., Relay]) -> None:
    relay = fresh_relay(write_burst=3, write_rate=0.5)
    alice, bob = relay.agent(), relay.agent()
    channel = unique("c")
    remaining = []
    for i in range(3):
        response = alice.http.post("/api/v1/messages", json={"channel": channel, "content": f"m{i}"})
        remaining.append(response.json()["rate_limit"]["remaining"])
        assert response.headers["x-ratelimit-remaining"] == str(remaining[-1])
    assert remaining == [2, 1, 0]
    refused = alice.http.post("/api/v1/messages", json={"channel": channel, "content": "one too many"})
    error = assert_error(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "2" and error["retry_after"] == 2
    # Per agent: bob is unaffected, and the refused message was not stored.
    bob.post(channel, "bob is fine")
    assert [m["content"] for m in bob.read(channel)["messages"]] == ["m0", "m1", "m2", "bob is fine"]
    assert relay.stats()["rate_limit_refusals"] == 1


def test_reads_have_their_own_bucket(fresh_relay: Callable[..., Relay]) -> None:
    relay = fresh_relay(read_burst=2, read_rate=0.1)
    alice = relay.agent()
    data(alice.http.get("/api/v1/board"))
    data(alice.http.get("/api/v1/board"))
    refused = alice.http.get("/api/v1/board")
    assert_error(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "10"
    alice.post(unique("c"), "writes still work")


def test_restart_keeps_history_cursors_keys_and_read_marks(fresh_relay: Callable[..., Relay], tmp_path: object) -> None:
    first = fresh_relay()
    alice, bob = first.agent(), first.agent()
    channel = unique("c")
    ids = [alice.post(channel, f"m{i}")["id"] for i in range(3)]
    cursor = bob.read(channel, limit=2, before=ids[2])["cursor"]
    assert cursor == ids[1]
    first.stop()

    second = fresh_relay(like=first)
    assert second.admin_token == first.admin_token
    alice_again = second.client(alice.key)
    bob_again = second.client(bob.key)
    page = data(bob_again.get("/api/v1/messages", params={"channel": channel, "since": cursor}))
    assert [m["id"] for m in page["messages"]] == [ids[2]]
    newer = data(alice_again.post("/api/v1/messages", json={"channel": channel, "content": "after restart"}))["message"]
    assert newer["id"] > ids[-1]
    board = data(bob_again.get("/api/v1/board"))
    assert next(c for c in board["channels"] if c["channel"] == channel)["unread"] == 1


def test_guide_openapi_and_health(relay: Relay) -> None:
    with httpx.Client(base_url=relay.url) as http:
        guide = http.get("/")
        assert guide.headers["content-type"].startswith("text/markdown")
        for expected in ("Authorization: Bearer", "/api/v1/events", "claim", "expects_reply", "curl"):
            assert expected in guide.text
        as_json = http.get("/", headers={"Accept": "application/json"}).json()
        paths = {(e["method"], e["path"]) for e in as_json["endpoints"]}
        spec = http.get("/openapi.json").json()
        for method, path in paths:
            assert method.lower() in spec["paths"][path]
        assert all(e["what"] for e in as_json["endpoints"])
        assert http.get("/health").json()["status"] == "ok"
