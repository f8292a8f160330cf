"""Each surface keeps the relay's promises when attacked (issue 26): claims, numbers from headers, revocation,
/mcp, downloads, uploads, membership. Every test runs against a live relay on both stores."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Databases, Relay, RelayProcess, assert_error, data, eventually, unique


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


_MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _mcp(http: httpx.Client, method: str, params: dict[str, object] | None = None) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    return http.post("/mcp", json=body, headers=_MCP_HEADERS)


def test_mcp_offers_no_stream_and_every_request_pays(fresh_relay: Callable[..., Relay]) -> None:
    relay = fresh_relay(read_burst=5, read_rate=0.01, write_burst=3, write_rate=0.01)
    agent = relay.agent()
    # No GET stream in stateless mode: nothing that outlives its request, its key or its budget.
    with agent.http.stream("GET", "/mcp", headers={"Accept": "text/event-stream"}) as stream:
        assert stream.status_code == 405
        assert stream.read() and stream.json()["error"]["code"] == "method_not_allowed"
    # initialize and tools/list pay a read each, like GET /api/v1/me would: the sixth is refused.
    statuses = [_mcp(agent.http, "initialize").status_code] + [
        _mcp(agent.http, "tools/list").status_code for _ in range(5)
    ]
    assert statuses[:5] == [200] * 5 and statuses[5] == 429, statuses
    assert_error(_mcp(agent.http, "tools/list"), 429, "rate_limited")
    # A tool call pays what its route costs: send_message spends writes (3), not reads.
    sends = [
        _mcp(agent.http, "tools/call", {"name": "send_message", "arguments": {"channel": unique("c"), "content": "x"}})
        for _ in range(4)
    ]
    results = [response.json()["result"] for response in sends]
    assert [result.get("isError", False) for result in results] == [False, False, False, True], results
    assert "rate" in json.dumps(results[3]).lower()


# -- downloads: streamed, bounded per key, stalled readers cut off ----------------------------------------------

TEN_MB = 10 * 1024 * 1024


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _stalled_download(url: str, key: str, file_id: str) -> socket.socket:
    """A reader that asks for the file and never reads a byte (a tiny receive window)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    request = f"GET /api/v1/files/{file_id} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n"
    sock.sendall(request.encode())
    return sock


def _stats(relay: RelayProcess) -> dict[str, Any]:
    token = (relay.data_dir / "admin.token").read_text().strip()
    return dict(data(httpx.get(f"{relay.url}/admin/stats", headers={"X-Admin-Token": token})))


@pytest.fixture
def file_relay(tmp_path: Path, backend: Databases | None) -> Iterator[RelayProcess]:
    env = {"PARLEY_DATABASE_URL": backend.new()} if backend is not None else {}
    running = RelayProcess.start(tmp_path / "data", env={**env, "PARLEY_DOWNLOAD_STALL_SECONDS": "60"})
    yield running
    running.stop()


def test_forty_stalled_readers_of_a_10_mb_file_do_not_grow_the_relay(file_relay: RelayProcess) -> None:
    keys = []
    for _ in range(10):
        name = unique("reader")
        with file_relay.agent(name) as http:
            keys.append(http.headers["Authorization"].removeprefix("Bearer "))
    with file_relay.agent(unique("sharer")) as sharer:
        content = base64.b64encode(os.urandom(TEN_MB)).decode()
        body = {"channel": unique("files"), "filename": "big.bin", "content": content, "encoding": "base64"}
        shared = data(sharer.post("/api/v1/files", json=body))["file"]
        whole = sharer.get(f"/api/v1/files/{shared['id']}")  # one full download: the bytes come back intact
        assert whole.status_code == 200 and len(whole.content) == TEN_MB
        assert whole.headers["content-length"] == str(TEN_MB)
    before = _rss_bytes(file_relay.process.pid)
    readers = [_stalled_download(file_relay.url, key, shared["id"]) for key in keys for _ in range(4)]
    try:
        eventually(lambda: _stats(file_relay)["downloads"] == 40, timeout=30, what="40 downloads running")
        # A fifth download of one key is refused while its four are running.
        with httpx.Client(base_url=file_relay.url, headers={"Authorization": f"Bearer {keys[0]}"}) as fifth:
            assert_error(fifth.get(f"/api/v1/files/{shared['id']}"), 429, "too_many_downloads")
        grown = _rss_bytes(file_relay.process.pid) - before
        assert grown < 50 * 1024 * 1024, f"the relay grew by {grown / 1e6:.0f} MB for 40 stalled readers"
    finally:
        for reader in readers:
            reader.close()
    eventually(lambda: _stats(file_relay)["downloads"] == 0, timeout=30, what="downloads ended with their readers")


def test_a_stalled_reader_is_cut_off(fresh_relay: Callable[..., Relay]) -> None:
    relay = fresh_relay(download_stall_seconds=1.0)
    agent = relay.agent()
    content = base64.b64encode(os.urandom(4 * 1024 * 1024)).decode()
    body = {"channel": unique("files"), "filename": "big.bin", "content": content, "encoding": "base64"}
    shared = data(agent.http.post("/api/v1/files", json=body))["file"]
    reader = _stalled_download(relay.url, agent.key, shared["id"])
    try:
        eventually(lambda: relay.stats()["downloads"] == 1, what="the download running")
        eventually(lambda: relay.stats()["downloads"] == 0, timeout=20, what="the stalled reader cut off")
        # The relay closed the connection: what was sent, then the end.
        reader.settimeout(10)
        received = b""
        while chunk := reader.recv(1 << 20):
            received += chunk
        assert 0 < len(received) < 4 * 1024 * 1024
    finally:
        reader.close()


# -- uploads: checked before a byte is kept, nothing left by a refusal ------------------------------------------


def _blobs(relay: Relay) -> int:
    if relay.settings.database_url:
        return int(relay.query("SELECT count(*) FROM blobs")[0][0])
    return sum(1 for _ in relay.settings.files_dir.glob("*/*"))


def test_refused_uploads_leave_nothing(relay: Relay) -> None:
    owner, outsider = relay.agent(), relay.agent()
    private = owner.private_channel()
    archived = unique("old")
    owner.post(archived, "soon archived")
    with relay.admin() as admin:
        data(admin.post(f"/admin/channels/{archived}/archive"))
    sealed = data(owner.http.post("/api/v1/channels", json={"name": unique("vault"), "encrypted": True}))
    before = _blobs(relay)
    payload = base64.b64encode(os.urandom(64 * 1024)).decode()
    attempts = [
        (outsider, "POST", "/api/v1/files", {"channel": private}, 404),
        (outsider, "POST", "/api/v1/files", {"channel": archived}, 409),
        (owner, "POST", "/api/v1/files", {"channel": sealed["channel"]["name"]}, 422),
        (outsider, "PUT", "/api/files", {"channel": private}, 404),
        (outsider, "PUT", "/api/files", {"channel": archived}, 409),
        (owner, "PUT", "/api/files", {"channel": sealed["channel"]["name"]}, 422),
        (outsider, "POST", "/api/v1/files", {"channel": "dm:nobody+someone"}, 404),
    ]
    for who, method, path, fields, status in attempts:
        body = {**fields, "filename": "x.bin", "content": payload, "encoding": "base64"}
        assert_error(who.http.request(method, path, json=body), status)
    assert _blobs(relay) == before


# -- membership: nobody is put in a channel without consent; the board stays bounded ----------------------------


def test_adding_an_agent_invites_it_and_only_joining_accepts(relay: Relay) -> None:
    alice, bob, mallory = relay.agent(), relay.agent(), relay.agent()
    private = alice.private_channel()
    alice.post(private, "the plan")
    invited = data(alice.http.post(f"/api/v1/channels/{private}/members", json={"agent": bob.name}))
    assert (invited["invited"], invited["member"]) == (True, False)
    # Invited is not a member: nothing of the channel reaches bob until he joins.
    assert private not in [c["channel"] for c in bob.get("/api/v1/board")["channels"]]
    assert [(i["channel"], i["from"]) for i in bob.get("/api/v1/board")["invitations"]] == [(private, alice.name)]
    assert_error(bob.http.get("/api/v1/messages", params={"channel": private}), 404, "channel_not_found")
    joined = data(bob.http.post(f"/api/v1/channels/{private}/join"))
    assert joined["joined"] is True and bob.read(private)["messages"][0]["content"] == "the plan"
    assert bob.get("/api/v1/board")["invitations"] == []
    again = data(alice.http.post(f"/api/v1/channels/{private}/members", json={"agent": bob.name}))
    assert (again["invited"], again["member"]) == (False, True)
    # Declining: leaving a channel one is only invited to.
    other = mallory.private_channel()
    data(mallory.http.post(f"/api/v1/channels/{other}/members", json={"agent": bob.name}))
    assert data(bob.http.post(f"/api/v1/channels/{other}/leave"))["left"] is False
    assert bob.get("/api/v1/board")["invitations"] == []
    assert_error(bob.http.post(f"/api/v1/channels/{other}/join"), 404, "channel_not_found")


def test_a_flood_of_invitations_does_not_reach_the_board(relay: Relay) -> None:
    victim, mallory = relay.agent(), relay.agent()
    before = victim.get("/api/v1/board")
    statuses = []
    for _ in range(105):
        channel = unique("spam")
        mallory.post(channel, "join me")
        statuses.append(mallory.http.post(f"/api/v1/channels/{channel}/members", json={"agent": victim.name}))
    assert all(response.status_code == 200 for response in statuses[:100])
    assert_error(statuses[100], 409, "too_many_invitations")
    board = victim.get("/api/v1/board")
    assert board["channels"] == before["channels"]  # not one channel the victim did not choose
    assert len(board["invitations"]) == 20


def test_the_board_is_a_page_of_channels_with_a_way_to_see_more(relay: Relay) -> None:
    agent = relay.agent()
    mine = sorted(unique(f"c{i:03d}") for i in range(120))
    for channel in mine:
        agent.post(channel, "x")
    seen: list[str] = []
    after = None
    while True:
        board = agent.get("/api/v1/board", **({"after": after} if after else {}))
        assert len(board["channels"]) <= 50
        seen += [c["channel"] for c in board["channels"]]
        after = board["next_after"]
        if after is None:
            break
    assert [name for name in seen if name in set(mine)] == mine  # every channel once, in order
