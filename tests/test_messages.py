"""Posting and reading: order, cursors, idempotent retries, every limit's error, read marks."""

from __future__ import annotations

import concurrent.futures
import json
import threading

import pytest
from conftest import Relay, assert_error, data, unique

from parley import limits


def test_read_is_chronological_and_since_is_exclusive(relay: Relay) -> None:
    alice = relay.agent()
    channel = unique("c")
    ids = [alice.post(channel, f"message {i}")["id"] for i in range(5)]
    assert ids == sorted(ids)
    page = alice.read(channel)
    assert [m["id"] for m in page["messages"]] == ids
    assert page["cursor"] == ids[-1]
    after = alice.read(channel, since=ids[1])
    assert [m["id"] for m in after["messages"]] == ids[2:]
    limited = alice.read(channel, since=ids[0], limit=2)
    assert [m["id"] for m in limited["messages"]] == ids[1:3] and limited["has_more"] is True
    older = alice.read(channel, before=ids[3], limit=2)
    assert [m["id"] for m in older["messages"]] == ids[1:3]
    assert alice.read(channel, since=ids[-1])["messages"] == []


def test_message_shape(relay: Relay) -> None:
    alice = relay.agent()
    channel = unique("c")
    question = alice.post(channel, "  ship it?  ", metadata={"run": 7}, expects_reply="anyone")
    assert question["content"] == "ship it?"
    assert question["metadata"] == {"run": 7}
    assert question["expects_reply"] == "anyone"
    assert question["channel"] == channel and question["author"] == alice.name
    assert question["created_at"].endswith("Z") and question["timestamp"] == question["created_at"]
    reply = alice.post(channel, "yes", parent_message_id=question["id"])
    assert reply["parent_message_id"] == question["id"]


def test_channel_type_comes_from_the_prefix(relay: Relay) -> None:
    alice = relay.agent()
    suffix = unique("x")
    for name in (f"project-{suffix}", f"tech-{suffix}", suffix):
        alice.post(name, "hi")
    channels = {c["name"]: c for c in alice.get("/api/v1/channels")["channels"]}
    assert channels[f"project-{suffix}"]["type"] == "project"
    assert channels[f"tech-{suffix}"]["type"] == "technology"
    assert channels[suffix]["type"] == "global"
    projects = alice.get("/api/v1/channels", type="project")["channels"]
    assert {c["type"] for c in projects} == {"project"}


def test_retried_client_msg_id_is_stored_once(relay: Relay) -> None:
    alice = relay.agent()
    channel = unique("c")
    body = {"channel": channel, "content": "deploy done", "client_msg_id": "run-42"}
    first = alice.http.post("/api/v1/messages", json=body)
    again = alice.http.post("/api/v1/messages", json=body)
    assert first.status_code == 201 and again.status_code == 200
    assert data(again)["replayed"] is True and data(first)["replayed"] is False
    assert data(again)["message"]["id"] == data(first)["message"]["id"]
    # The Idempotency-Key header works the same way.
    header = {"Idempotency-Key": "run-43"}
    one = data(alice.http.post("/api/v1/messages", json={"channel": channel, "content": "x"}, headers=header))
    two = data(alice.http.post("/api/v1/messages", json={"channel": channel, "content": "x"}, headers=header))
    assert one["message"]["id"] == two["message"]["id"] and two["replayed"]
    # Reusing an id for different content is a conflict, not a silent replay.
    clash = alice.http.post("/api/v1/messages", json={**body, "content": "something else"})
    assert assert_error(clash, 409, "client_msg_id_reused")["message_id"] == data(first)["message"]["id"]
    assert len(alice.read(channel)["messages"]) == 2


def test_concurrent_retries_store_one_copy(relay: Relay) -> None:
    alice = relay.agent()
    channel = unique("c")
    body = {"channel": channel, "content": "once", "client_msg_id": "race"}
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: relay.client(alice.key).post("/api/v1/messages", json=body), range(20)))
    assert len({data(r)["message"]["id"] for r in responses}) == 1
    assert sum(not data(r)["replayed"] for r in responses) == 1
    assert len(alice.read(channel)["messages"]) == 1


def test_no_message_is_skipped_when_sends_race_a_reader(relay: Relay) -> None:
    """Eight senders post while a reader follows the cursor; it sees every message exactly once."""
    reader = relay.agent()
    channel = unique("c")
    start = reader.post(channel, "start")["id"]
    senders = [relay.agent() for _ in range(8)]
    per_sender = 40
    done = threading.Event()

    def send(agent_index: int) -> list[int]:
        http = relay.client(senders[agent_index].key)
        return [
            data(http.post("/api/v1/messages", json={"channel": channel, "content": f"{agent_index}/{i}"}))["message"][
                "id"
            ]
            for i in range(per_sender)
        ]

    seen: list[int] = []

    def follow() -> None:
        cursor = start
        http = relay.client(reader.key)
        while True:
            finished = done.is_set()
            page = data(http.get("/api/v1/messages", params={"channel": channel, "since": cursor, "limit": 7}))
            seen.extend(m["id"] for m in page["messages"])
            cursor = page["cursor"]
            if finished and not page["messages"]:
                return

    follower = threading.Thread(target=follow)
    follower.start()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        sent = [i for ids in pool.map(send, range(8)) for i in ids]
    done.set()
    follower.join(timeout=60)
    assert sorted(seen) == sorted(sent)
    assert len(seen) == len(set(seen)) == 8 * per_sender
    assert seen == sorted(seen)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"channel": "ok-channel", "content": "x" * (limits.MAX_CONTENT_CHARS + 1)}, 422, "content_too_long"),
        ({"channel": "ok-channel", "content": "   "}, 422, "content_required"),
        ({"channel": "Bad Channel!", "content": "x"}, 422, "invalid_name"),
        (
            {"channel": "ok-channel", "content": "x", "metadata": {"k": "v" * limits.MAX_METADATA_BYTES}},
            422,
            "metadata_too_large",
        ),
        ({"channel": "ok-channel", "content": "x", "metadata": ["not", "an", "object"]}, 422, "invalid_request"),
        ({"channel": "ok-channel", "content": "x", "expects_reply": "Not A Name"}, 422, "invalid_expects_reply"),
        ({"channel": "ok-channel", "content": "x", "client_msg_id": "x" * 129}, 422, "invalid_request"),
        ({"channel": "ok-channel", "content": "x", "parent_message_id": 0}, 422, "invalid_request"),
        ({"channel": "ok-channel", "content": "x", "unexpected": 1}, 422, "invalid_request"),
        ({"channel": "ok-channel"}, 422, "content_required"),
    ],
)
def test_bad_posts_get_one_clear_error(relay: Relay, body: dict[str, object], status: int, code: str) -> None:
    alice = relay.agent()
    error = assert_error(alice.http.post("/api/v1/messages", json=body), status, code)
    field = next(
        iter(
            k
            for k in (
                "content",
                "channel",
                "metadata",
                "expects_reply",
                "client_msg_id",
                "parent_message_id",
                "unexpected",
            )
            if k in error["message"]
        ),
        None,
    )
    assert field is not None, error["message"]


def test_content_at_the_limit_is_accepted(relay: Relay) -> None:
    alice = relay.agent()
    message = alice.post(unique("c"), "y" * limits.MAX_CONTENT_CHARS)
    assert len(message["content"]) == limits.MAX_CONTENT_CHARS


def test_malformed_and_oversized_bodies(relay: Relay) -> None:
    alice = relay.agent()
    headers = {"Content-Type": "application/json"}
    assert_error(alice.http.post("/api/v1/messages", content=b"{not json", headers=headers), 400, "invalid_json")
    assert_error(alice.http.post("/api/v1/messages", content=b"", headers=headers), 422, "invalid_request")
    huge = json.dumps({"channel": "c-big", "content": "x" * (limits.MAX_BODY_BYTES + 10)}).encode()
    assert_error(alice.http.post("/api/v1/messages", content=huge, headers=headers), 413, "body_too_large")

    def chunks() -> object:
        yield huge

    assert_error(alice.http.post("/api/v1/messages", content=chunks(), headers=headers), 413, "body_too_large")


def test_bad_queries_get_clear_errors(relay: Relay) -> None:
    alice = relay.agent()
    channel = unique("c")
    alice.post(channel, "x")
    assert_error(alice.http.get("/api/v1/messages", params={"channel": channel, "limit": 0}), 422)
    assert_error(alice.http.get("/api/v1/messages", params={"channel": channel, "since": -1}), 422)
    assert_error(alice.http.get("/api/v1/messages", params={"channel": channel, "since": "abc"}), 422)
    assert_error(alice.http.get("/api/v1/messages", params={"channel": channel, "wait": -2}), 422)
    assert_error(
        alice.http.get("/api/v1/messages", params={"channel": channel, "since": 1, "before": 5}),
        400,
        "conflicting_cursors",
    )
    assert_error(alice.http.get("/api/v1/messages"), 422)
    assert_error(alice.http.get("/api/v1/messages", params={"channel": unique("none")}), 404, "channel_not_found")
    assert_error(alice.http.get("/api/v1/nowhere"), 404, "no_such_endpoint")
    assert_error(alice.http.delete("/api/v1/messages"), 405, "method_not_allowed")
    big = alice.read(channel, limit=10_000)
    assert len(big["messages"]) == 1  # limits above the cap are clamped, not refused


def test_reply_to_unknown_or_foreign_parent(relay: Relay) -> None:
    alice = relay.agent()
    here, there = unique("c"), unique("c")
    elsewhere = alice.post(there, "q")
    assert_error(
        alice.http.post(
            "/api/v1/messages", json={"channel": here, "content": "a", "parent_message_id": elsewhere["id"]}
        ),
        404,
        "parent_not_found",
    )
    assert_error(
        alice.http.post("/api/v1/messages", json={"channel": here, "content": "a", "parent_message_id": 10**9}),
        404,
        "parent_not_found",
    )
    assert_error(
        alice.http.post("/api/v1/messages", json={"channel": here, "content": "a", "expects_reply": unique("ghost")}),
        404,
        "agent_not_found",
    )


def test_reading_marks_read_up_to_the_newest_message_returned(relay: Relay) -> None:
    alice, bob = relay.agent(), relay.agent()
    channel = unique("c")
    ids = [alice.post(channel, f"m{i}")["id"] for i in range(5)]
    bob.read(channel, limit=1, before=ids[0] + 1)  # joins and reads only the first
    unread = {c["channel"]: c["unread"] for c in bob.get("/api/v1/board")["channels"]}
    assert unread[channel] == 4
    bob.read(channel, since=ids[0], limit=2)
    unread = {c["channel"]: c for c in bob.get("/api/v1/board")["channels"]}
    assert unread[channel]["unread"] == 2 and unread[channel]["last_read_id"] == ids[2]
    assert unread[channel]["latest"]["id"] == ids[-1]


def test_archived_channel_takes_no_posts(relay: Relay) -> None:
    alice = relay.agent()
    channel = unique("c")
    alice.post(channel, "before")
    with relay.admin() as admin:
        assert data(admin.post(f"/admin/channels/{channel}/archive"))["channel"]["archived"] is True
        assert_error(admin.post(f"/admin/channels/{unique('none')}/archive"), 404, "channel_not_found")
    assert_error(
        alice.http.post("/api/v1/messages", json={"channel": channel, "content": "after"}), 409, "channel_archived"
    )
    assert [m["content"] for m in alice.read(channel)["messages"]] == ["before"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/api/v1/messages", {"params": {"channel": "x-huge", "since": 10**30}}),
        ("GET", "/api/v1/messages", {"params": {"channel": "x-huge", "before": 10**30}}),
        ("GET", "/api/v1/messages", {"params": {"channel": "x-huge", "wait": "nan"}}),
        ("GET", "/api/v1/events", {"params": {"since": 2**63}}),
        ("POST", f"/api/v1/messages/{10**30}/claim", {}),
        ("POST", "/api/v1/messages", {"json": {"channel": "x-huge", "content": "x", "parent_message_id": 10**30}}),
        ("POST", "/api/v1/mentions", {"json": {"mention_ids": [10**30]}}),
        ("POST", "/api/v1/messages", {"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}),
        ("POST", "/api/v1/messages", {"json": ["a", "list"]}),
        ("POST", "/api/v1/messages", {"json": {"channel": "x" * 5000, "content": "x"}}),
        ("GET", "/api/v1/messages", {"params": {"channel": "\x00\x01"}}),
        ("POST", "/api/v1/channels/%00/members", {"json": {"agent": "nobody-here"}}),
    ],
)
def test_odd_input_is_a_4xx_never_a_500(relay: Relay, method: str, path: str, kwargs: dict[str, object]) -> None:
    alice = relay.agent()
    response = alice.http.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/api/v1/messages", {"json": {"channel": "x-nul", "content": "a\x00b"}}),
        ("POST", "/api/v1/messages", {"json": {"channel": "x-nul", "content": "ok", "metadata": {"k\x00": 1}}}),
        ("GET", "/api/v1/search", {"params": {"q": "a\x00b"}}),
        ("GET", "/api/v1/files/a%00b", {}),
        ("GET", "/api/v1/dm", {"params": {"agent": "a\x00b"}}),
    ],
)
def test_nul_characters_are_refused_everywhere(relay: Relay, method: str, path: str, kwargs: dict[str, object]) -> None:
    alice = relay.agent()
    response = alice.http.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert_error(response, 422)


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_an_infinite_number_is_refused_not_stored(relay: Relay, number: str) -> None:
    """JSON has no Infinity: a number too large for a float would be stored as one no reader could parse."""
    alice = relay.agent()
    channel = unique("c")
    body = f'{{"channel": "{channel}", "content": "x", "metadata": {{"n": {number}}}}}'
    response = alice.http.post("/api/v1/messages", content=body, headers={"Content-Type": "application/json"})
    assert "finite" in assert_error(response, 422, "invalid_number")["message"]
    assert_error(alice.http.get("/api/v1/messages", params={"channel": channel}), 404, "channel_not_found")


def test_a_new_agent_starts_in_general_and_join_and_leave_decide_what_events_bring(relay: Relay) -> None:
    alice, bob = relay.agent(), relay.agent()
    assert "general" in {c["channel"] for c in alice.get("/api/v1/board")["channels"]}
    cursor = alice.get("/api/v1/me")["cursor"]
    hello = bob.post("general", f"hello from {bob.name}")
    assert hello["id"] in [m["id"] for m in alice.events(since=cursor)["messages"]]  # no read needed first

    side = unique("c")
    bob.post(side, "before alice joined")
    joined = data(alice.http.post(f"/api/v1/channels/{side}/join"))
    assert joined["joined"] is True and joined["channel"]["name"] == side
    assert data(alice.http.post(f"/api/v1/channels/{side}/join"))["joined"] is False
    cursor = alice.get("/api/v1/me")["cursor"]
    inside = bob.post(side, "now she is in")
    assert [m["id"] for m in alice.events(since=cursor)["messages"]] == [inside["id"]]

    assert data(alice.http.post(f"/api/v1/channels/{side}/leave"))["left"] is True
    cursor = alice.get("/api/v1/me")["cursor"]
    bob.post(side, "she left")
    mention = bob.post(side, f"@{alice.name} but a mention still reaches her")
    assert [m["id"] for m in alice.events(since=cursor)["messages"]] == [mention["id"]]
    dm = alice.dm(bob.name, "hi")
    assert_error(alice.http.post(f"/api/v1/channels/{dm['channel']}/leave"), 403, "dm_members_fixed")


def test_a_limited_key_starts_only_in_the_default_channels_it_may_use(relay: Relay) -> None:
    allowed = unique("c")
    limited = relay.agent(channels=[allowed])
    assert "general" not in {c["channel"] for c in limited.get("/api/v1/board")["channels"]}
    helped = relay.agent(channels=[allowed, "general"])
    assert "general" in {c["channel"] for c in helped.get("/api/v1/board")["channels"]}


def test_a_failing_write_in_a_busy_batch_spoils_nothing_else(relay: Relay) -> None:
    """Writes are committed in batches; one that fails halfway (its channel created, then its parent missing)
    leaves no trace, and the others in its batch are all stored, once."""
    alice = relay.agent()
    good_channel = unique("ok")
    alice.post(good_channel, "start")
    bad_channels = [unique("bad") for _ in range(8)]

    def good(n: int) -> int:
        return alice.http.post("/api/v1/messages", json={"channel": good_channel, "content": f"good {n}"}).status_code

    def bad(name: str) -> int:
        body = {"channel": name, "content": "orphan reply", "parent_message_id": 999_999_999}
        return alice.http.post("/api/v1/messages", json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        goods = [pool.submit(good, n) for n in range(16)]
        bads = [pool.submit(bad, name) for name in bad_channels]
        assert [f.result() for f in goods] == [201] * 16
        assert [f.result() for f in bads] == [404] * 8
    stored = [m["content"] for m in alice.read(good_channel)["messages"]]
    assert sorted(stored) == sorted(["start", *(f"good {n}" for n in range(16))])
    visible = {c["name"] for c in alice.get("/api/v1/channels")["channels"]}
    assert not visible & set(bad_channels)  # the failed writes created nothing


def test_every_kind_of_post_in_one_burst_is_stored_once(relay: Relay) -> None:
    """Concurrent posts share write batches (on PostgreSQL the plain ones are stored by one statement, the rest
    one by one, in the same transaction): each is stored as it would be alone, once."""
    alice, bob = relay.agent(), relay.agent()
    joined, theirs, retried, before = unique("joined"), unique("theirs"), unique("retry"), unique("before")
    parent = alice.post(joined, "start")["id"]
    bob.post(theirs, "bob's channel")
    stored_before = alice.post(joined, "sent before", client_msg_id=before)
    requests: list[tuple[str, dict[str, object]]] = [
        *((f"plain {n}", {"channel": joined}) for n in range(12)),
        ("retried", {"channel": joined, "client_msg_id": retried}),
        ("retried", {"channel": joined, "client_msg_id": retried}),
        ("sent before", {"channel": joined, "client_msg_id": before}),
        (f"hello @{bob.name}", {"channel": joined}),
        ("question", {"channel": joined, "expects_reply": bob.name}),
        ("reply", {"channel": joined, "parent_message_id": parent}),
        ("joining", {"channel": theirs}),
        ("dm", {"channel": f"@{bob.name}"}),
    ]

    def send(request: tuple[str, dict[str, object]]) -> dict[str, object]:
        content, fields = request
        return dict(data(alice.http.post("/api/v1/messages", json={"content": content, **fields}), (200, 201)))

    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(send, requests))
    by_content: dict[str, list[dict[str, object]]] = {}
    for (content, _), answer in zip(requests, answers, strict=True):
        by_content.setdefault(content, []).append(answer)
    retries = by_content["retried"]
    assert retries[0]["message"]["id"] == retries[1]["message"]["id"]  # type: ignore[index]
    assert sorted(r["replayed"] for r in retries) == [False, True]
    assert by_content["sent before"][0] == {"message": stored_before, "replayed": True}
    assert by_content["reply"][0]["message"]["parent_message_id"] == parent  # type: ignore[index]

    stored = [m["content"] for m in alice.read(joined, limit=100)["messages"]]
    expected = ["start", "sent before", *(f"plain {n}" for n in range(12)), "retried"]
    assert sorted(stored) == sorted([*expected, f"hello @{bob.name}", "question", "reply"])
    assert [m["content"] for m in bob.read(theirs)["messages"]] == ["bob's channel", "joining"]
    assert theirs in {c["channel"] for c in alice.get("/api/v1/board")["channels"]}  # posting joined it
    assert [m["content"] for m in bob.get("/api/v1/mentions")["mentions"]] == [f"hello @{bob.name}"]
    assert [m["content"] for m in bob.read(f"@{alice.name}")["messages"]] == ["dm"]
