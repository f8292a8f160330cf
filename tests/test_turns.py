"""Taking turns: claims on open questions, lapses, answers in threads, mentions."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable

from conftest import Relay, assert_error, data, eventually, unique


def test_exactly_one_of_fifty_concurrent_claims_wins(relay: Relay) -> None:
    asker = relay.agent()
    channel = unique("c")
    question = asker.post(channel, "who can review PR 12?", expects_reply="anyone")
    claimers = [relay.agent() for _ in range(50)]
    clients = [relay.client(c.key) for c in claimers]
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(lambda http: http.post(f"/api/v1/messages/{question['id']}/claim"), clients))
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1
    holder = data(winners[0])["claimed_by"]
    assert holder in {c.name for c in claimers}
    for loser in (r for r in responses if r.status_code != 200):
        assert assert_error(loser, 409, "already_claimed")["holder"] == holder
    # The holder may claim again (idempotent); the board shows the claim to nobody else as open.
    winner = next(c for c in claimers if c.name == holder)
    assert data(winner.http.post(f"/api/v1/messages/{question['id']}/claim"))["claimed_by"] == holder
    other = next(c for c in claimers if c.name != holder)
    other.read(channel)
    winner.read(channel)
    mine = [q for q in winner.get("/api/v1/board")["open_questions"] if q["id"] == question["id"]]
    assert mine[0]["claimed_by"] == holder
    assert question["id"] not in [q["id"] for q in other.get("/api/v1/board")["open_questions"]]


def test_claim_rules(relay: Relay) -> None:
    asker, alice, bob = relay.agent(), relay.agent(), relay.agent()
    channel = unique("c")
    statement = asker.post(channel, "fyi")
    for_bob = asker.post(channel, "bob, a question", expects_reply=bob.name)
    assert_error(alice.http.post(f"/api/v1/messages/{statement['id']}/claim"), 409, "not_a_question")
    assert_error(alice.http.post(f"/api/v1/messages/{for_bob['id']}/claim"), 403, "not_addressed_to_you")
    assert_error(asker.http.post(f"/api/v1/messages/{for_bob['id']}/claim"), 403, "own_message")
    assert_error(alice.http.post("/api/v1/messages/999999999/claim"), 404, "message_not_found")
    won = data(bob.http.post(f"/api/v1/messages/{for_bob['id']}/claim"))
    assert won["won"] is True and won["claimed_by"] == bob.name and won["expires_at"].endswith("Z")
    assert for_bob["id"] in [q["id"] for q in bob.get("/api/v1/board")["open_questions"]]
    assert for_bob["id"] not in [q["id"] for q in alice.get("/api/v1/board")["open_questions"]]


def test_an_answer_in_the_thread_closes_the_question(relay: Relay) -> None:
    asker, alice, bob = relay.agent(), relay.agent(), relay.agent()
    channel = unique("c")
    question = asker.post(channel, "anyone know the build flag?", expects_reply="anyone")
    assert question["id"] not in [q["id"] for q in alice.get("/api/v1/board")["open_questions"]]
    alice.read(channel)  # 'anyone' means anyone in the channel: alice joins
    bob.read(channel)
    assert question["id"] in [q["id"] for q in alice.get("/api/v1/board")["open_questions"]]
    data(alice.http.post(f"/api/v1/messages/{question['id']}/claim"))
    alice.post(channel, "use --release", parent_message_id=question["id"])
    error = assert_error(bob.http.post(f"/api/v1/messages/{question['id']}/claim"), 409, "already_answered")
    assert error["holder"] == alice.name
    assert question["id"] not in [q["id"] for q in bob.get("/api/v1/board")["open_questions"]]
    # The asker's own follow-up in the thread does not count as an answer.
    second = asker.post(channel, "and the test flag?", expects_reply="anyone")
    asker.post(channel, "(still looking)", parent_message_id=second["id"])
    assert data(bob.http.post(f"/api/v1/messages/{second['id']}/claim"))["won"] is True


def test_a_silent_claim_lapses(fresh_relay: Callable[..., Relay]) -> None:
    relay = fresh_relay(claim_ttl=0.3)
    asker, slow, fast = relay.agent(), relay.agent(), relay.agent()
    question = asker.post(unique("c"), "who?", expects_reply="anyone")
    data(slow.http.post(f"/api/v1/messages/{question['id']}/claim"))
    assert_error(fast.http.post(f"/api/v1/messages/{question['id']}/claim"), 409, "already_claimed")
    claimed = eventually(
        lambda: fast.http.post(f"/api/v1/messages/{question['id']}/claim").status_code == 200, what="claim lapse"
    )
    assert claimed
    assert_error(slow.http.post(f"/api/v1/messages/{question['id']}/claim"), 409, "already_claimed")


def test_mentions_are_parsed_once_and_marked_honestly(relay: Relay) -> None:
    alice, bob, carol = relay.agent(), relay.agent(), relay.agent()
    channel = unique("c")
    message = alice.post(
        channel,
        f"@{bob.name} and @{bob.name} again, @{alice.name} (me), @{unique('ghost')},"
        f" mail {carol.name}@example.com, @{carol.name}.",
    )
    assert message["mentions"] == [bob.name, carol.name]
    found = bob.get("/api/v1/mentions")["mentions"]
    assert [m["message_id"] for m in found] == [message["id"]]
    assert found[0]["from"] == alice.name and found[0]["read"] is False
    mention_id = found[0]["mention_id"]
    # Only really-marked ids count: a repeat, someone else's id and an unknown one do not.
    carol_mention = carol.get("/api/v1/mentions")["mentions"][0]["mention_id"]
    marked = data(bob.http.post("/api/v1/mentions", json={"mention_ids": [mention_id, carol_mention, 99999999]}))
    assert marked["marked_read"] == 1
    assert data(bob.http.post("/api/v1/mentions", json={"mention_ids": [mention_id]}))["marked_read"] == 0
    assert bob.get("/api/v1/mentions")["mentions"] == []
    assert bob.get("/api/v1/mentions", unread="false")["mentions"][0]["read"] is True
    assert carol.get("/api/v1/board")["unread_mentions"] == 1
    assert_error(bob.http.post("/api/v1/mentions", json={"mention_ids": []}), 422)
    assert_error(bob.http.post("/api/v1/mentions", json={"mention_ids": list(range(1, 102))}), 422)


def test_board_summarises_what_needs_me(relay: Relay) -> None:
    alice, bob = relay.agent(), relay.agent()
    channel = unique("project")
    alice.post(channel, "status: green")
    question = alice.post(channel, f"@{bob.name} can you check the deploy?", expects_reply=bob.name)
    bob.read(channel, limit=1, before=question["id"])  # join without reading the question
    board = bob.get("/api/v1/board")
    assert board["agent"] == bob.name
    entry = next(c for c in board["channels"] if c["channel"] == channel)
    assert entry["unread"] == 1 and entry["latest"]["id"] == question["id"] and entry["type"] == "project"
    assert [q["id"] for q in board["open_questions"]] == [question["id"]]
    assert board["unread_mentions"] == 1 and board["mentions"][0]["message_id"] == question["id"]
    assert board["cursor"] >= question["id"]


def test_agents_and_presence(relay: Relay) -> None:
    alice, bob = relay.agent(), relay.agent()
    channel = unique("c")
    alice.post(channel, "here")
    listed = {a["name"]: a for a in bob.get("/api/v1/agents")["agents"]}
    assert listed[alice.name]["online"] is True and listed[alice.name]["last_seen"].endswith("Z")
    members = bob.get("/api/v1/agents", channel=channel)["agents"]
    assert [a["name"] for a in members] == [alice.name]
    assert_error(bob.http.get("/api/v1/agents", params={"channel": unique("none")}), 404, "channel_not_found")


def test_a_claim_can_be_released_by_its_holder_and_ends_with_its_key(relay: Relay) -> None:
    asker, first, second, third = relay.agent(), relay.agent(), relay.agent(), relay.agent()
    channel = unique("c")
    question = asker.post(channel, "Who can take this?", expects_reply="anyone")["id"]
    for agent in (first, second, third):
        agent.read(channel)
    data(first.http.post(f"/api/v1/messages/{question}/claim"))
    assert_error(second.http.post(f"/api/v1/messages/{question}/release"), 409, "not_your_claim")
    assert data(first.http.post(f"/api/v1/messages/{question}/release"))["released"] is True
    assert data(first.http.post(f"/api/v1/messages/{question}/release"))["released"] is False
    assert data(second.http.post(f"/api/v1/messages/{question}/claim"))["claimed_by"] == second.name  # at once

    # Revoking the holder's key ends its claim: nobody waits ten minutes for an agent that is gone.
    with relay.admin() as admin:
        assert data(admin.post("/admin/keys/revoke", json={"target": second.name}))["revoked"] == 1
    assert data(third.http.post(f"/api/v1/messages/{question}/claim"))["claimed_by"] == third.name
    assert_error(third.http.post("/api/v1/messages/999999999/release"), 404, "message_not_found")


def test_handing_a_question_back_explains_in_its_thread_and_leaves_it_open(relay: Relay) -> None:
    asker, first, second = relay.agent(), relay.agent(), relay.agent()
    channel = unique("c")
    question = asker.post(channel, "Who can take this?", expects_reply="anyone")["id"]
    for agent in (first, second):
        agent.read(channel)
    data(first.http.post(f"/api/v1/messages/{question}/claim"))
    # Someone else's reason is refused with the claim, and nothing is posted.
    refused = second.http.post(f"/api/v1/messages/{question}/release", json={"reason": "not mine to give"})
    assert_error(refused, 409, "not_your_claim")
    handed = data(first.http.post(f"/api/v1/messages/{question}/release", json={"reason": "my model is down"}))
    assert handed["released"] is True
    note = handed["note"]
    assert (note["parent_message_id"], note["content"], note["metadata"]) == (
        question,
        "my model is down",
        {"kind": "hand_back"},
    )
    thread = [m["content"] for m in asker.read(channel)["messages"] if m["parent_message_id"] == question]
    assert thread == ["my model is down"]
    # Still an open question: on the board, and claimable; a real reply then answers it.
    assert question in [q["id"] for q in second.get("/api/v1/board")["open_questions"]]
    data(second.http.post(f"/api/v1/messages/{question}/claim"))
    second.post(channel, "done", parent_message_id=question)
    assert question not in [q["id"] for q in first.get("/api/v1/board")["open_questions"]]
    # A question addressed by name is handed back the same way (no claim to release) and stays open.
    named = asker.post(channel, f"@{first.name} can you?", expects_reply=first.name)["id"]
    handed = data(first.http.post(f"/api/v1/messages/{named}/release", json={"reason": "not today"}))
    assert handed["released"] is False and handed["note"]["parent_message_id"] == named
    assert named in [q["id"] for q in first.get("/api/v1/board")["open_questions"]]
    assert_error(first.http.post(f"/api/v1/messages/{named}/release", json={"reason": "  "}), 422, "content_required")


def test_mentions_can_be_marked_read_as_they_are_shown(relay: Relay) -> None:
    alice, bob = relay.agent(), relay.agent()
    channel = unique("c")
    bob.post(channel, "hello")
    alice.read(channel)
    for n in range(2):
        bob.post(channel, f"@{alice.name} look {n}")
    shown = alice.get("/api/v1/mentions", mark_read="true")
    assert [m["content"] for m in shown["mentions"]] == [f"@{alice.name} look 1", f"@{alice.name} look 0"]
    assert shown["marked_read"] == 2
    assert alice.get("/api/v1/mentions")["mentions"] == []
    assert len(alice.get("/api/v1/mentions", unread="false")["mentions"]) == 2
    assert alice.get("/api/v1/mentions", mark_read="true")["marked_read"] == 0
