"""Each surface keeps the relay's promises when attacked (issue 26): claims, numbers from headers, revocation,
/mcp, downloads, uploads, membership. Every test runs against a live relay on both stores."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from conftest import Relay, assert_error, data, eventually, unique


def test_a_live_claim_protects_the_answer(relay: Relay) -> None:
    asker, alice, mallory = relay.agent(), relay.agent(), relay.agent()
    channel = unique("room")
    question = asker.post(channel, "who takes the release notes?", expects_reply="anyone")
    data(alice.http.post(f"/api/v1/messages/{question['id']}/claim"))
    mallory.post(channel, "me! (not really)", parent_message_id=question["id"])
    # Mallory's reply did not take the question from alice: she can still claim it and answer it.
    assert data(alice.http.post(f"/api/v1/messages/{question['id']}/claim"))["claimed_by"] == alice.name
    alice.post(channel, "done: notes are in", parent_message_id=question["id"])
    refused = assert_error(mallory.http.post(f"/api/v1/messages/{question['id']}/claim"), 409, "already_answered")
    assert refused["holder"] == alice.name


def test_a_reply_answers_an_unclaimed_question_or_its_own_claim(relay: Relay) -> None:
    asker, bob = relay.agent(), relay.agent()
    channel = unique("room")
    for claim_first in (False, True):
        question = asker.post(channel, "anyone?", expects_reply="anyone")
        if claim_first:
            data(bob.http.post(f"/api/v1/messages/{question['id']}/claim"))
        bob.post(channel, "yes", parent_message_id=question["id"])
        assert question["id"] not in [q["id"] for q in asker.get("/api/v1/board")["open_questions"]]
        assert_error(asker.http.post(f"/api/v1/messages/{question['id']}/claim"), 403, "own_message")
        other = relay.agent()
        assert_error(other.http.post(f"/api/v1/messages/{question['id']}/claim"), 409, "already_answered")


@pytest.mark.parametrize(
    "resume",
    ["\xb2", "99999999999999999999999", "9223372036854775808", "-1", "1e3", "\u0661\u0662", "1 2", "0x10"],
)
def test_a_bad_last_event_id_is_a_clear_400(relay: Relay, resume: str) -> None:
    agent = relay.agent()
    raw = resume.encode("latin-1") if resume == "\xb2" else resume.encode()  # the bytes a client puts on the wire
    headers = {"Last-Event-ID": raw}
    refused = assert_error(agent.http.get("/api/v1/events/stream", headers=headers), 400, "invalid_last_event_id")
    assert "Last-Event-ID" in refused["message"]


def test_a_good_last_event_id_resumes_after_it(relay: Relay) -> None:
    agent = relay.agent()
    channel = unique("room")
    first, second = agent.post(channel, "one"), agent.post(channel, "two")
    headers = {"Last-Event-ID": str(first["id"])}
    with agent.http.stream("GET", "/api/v1/events/stream", headers=headers) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith("id: "):
                assert int(line.removeprefix("id: ")) == second["id"]
                break


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/events", {"since": "\xb2"}),
        ("/api/v1/events", {"since": "99999999999999999999999"}),
        ("/api/v1/events", {"since": "\uff11\uff12"}),
        ("/api/v1/messages", {"channel": "general", "before": "99999999999999999999999"}),
        ("/api/v1/messages", {"channel": "general", "since": "-5"}),
        ("/api/v1/mentions", {"limit": "99999999999999999999999"}),
    ],
)
def test_numbers_in_queries_are_in_range_or_a_4xx(relay: Relay, path: str, params: dict[str, str]) -> None:
    agent = relay.agent()
    response = agent.http.get(path, params=params)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert_error(response, response.status_code)


def _stream_lines(client: httpx.Client, lines: list[str], opened: threading.Event, path: str) -> None:
    with client.stream("GET", path) as stream:
        opened.set()
        for line in stream.iter_lines():
            lines.append(line)
            if line.startswith("event: signed-out"):
                return


@pytest.fixture
def quiet_http() -> Iterator[list[httpx.Client]]:
    clients: list[httpx.Client] = []
    yield clients
    for client in clients:
        client.close()


def test_revoking_a_key_ends_its_parked_waits_and_streams_at_once(relay: Relay) -> None:
    victim, poster = relay.agent(), relay.agent()
    channel = unique("room")
    poster.post(channel, "hello")
    victim.read(channel)
    cursor = victim.events()["cursor"]
    answers: list[httpx.Response] = []
    parked = threading.Thread(
        target=lambda: answers.append(victim.http.get("/api/v1/events", params={"since": cursor, "wait": 20}))
    )
    before = relay.stats()
    parked.start()
    lines: list[str] = []
    opened = threading.Event()
    streamer = threading.Thread(
        target=_stream_lines, args=(relay.client(victim.key), lines, opened, f"/api/v1/events/stream?since={cursor}")
    )
    streamer.start()
    opened.wait(10)
    eventually(lambda: relay.stats().get("parked_waits", 0) >= before.get("parked_waits", 0) + 2, what="two parks")
    with relay.admin() as admin:
        assert data(admin.post("/admin/keys/revoke", json={"target": victim.name}))["revoked"] == 1
    poster.post(channel, "after the revoke: nobody revoked may read this")
    parked.join(15)
    streamer.join(15)
    assert not parked.is_alive() and not streamer.is_alive()
    assert_error(answers[0], 401, "key_revoked")
    assert "after the revoke" not in "\n".join(lines)
    assert "event: signed-out" in lines


def test_a_wait_ends_when_its_key_expires(relay: Relay) -> None:
    agent = relay.agent(expires="2s")
    cursor = agent.events()["cursor"]
    response = agent.http.get("/api/v1/events", params={"since": cursor, "wait": 20})
    assert_error(response, 401, "key_expired")
    assert response.elapsed.total_seconds() < 15  # ended at the expiry, not at the end of the wait
