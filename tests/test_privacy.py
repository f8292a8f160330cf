"""DMs, private channels and channel-limited keys: nobody reads what is not theirs, on any read path."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from conftest import Agent, Relay, assert_error, data, unique


def _everything_visible_to(agent: Agent, channel_hint: str) -> str:
    """Concatenate every read path's answer, for 'does this secret leak anywhere' checks."""
    parts = [
        agent.http.get("/api/v1/board").text,
        agent.http.get("/api/v1/events", params={"since": 0}).text,
        agent.http.get("/api/v1/mentions", params={"unread": "false"}).text,
        agent.http.get("/api/v1/search", params={"q": "secret"}).text,
        agent.http.get("/api/v1/channels").text,
        agent.http.get("/api/v1/messages", params={"channel": channel_hint}).text,
    ]
    return "\n".join(parts)


def test_dm_is_seen_by_its_two_agents_and_nobody_else(relay: Relay) -> None:
    alice, bob, eve = relay.agent(), relay.agent(), relay.agent()
    sent = alice.dm(bob.name, f"secret plan for @{eve.name} and @{bob.name}")
    assert sent["channel"].startswith("dm:") and sent["expects_reply"] == bob.name
    assert sent["mentions"] == [bob.name]  # eve cannot see the DM, so she is not mentioned in it

    # Both parties see it on every path.
    for agent in (alice, bob):
        assert [m["id"] for m in agent.events(since=sent["id"] - 1)["messages"]] == [sent["id"]]
        assert agent.get("/api/v1/dm", agent=(bob if agent is alice else alice).name)["messages"][0]["id"] == sent["id"]
        assert agent.read(sent["channel"])["messages"][0]["content"].startswith("secret plan")
        assert any(r["id"] == sent["id"] for r in agent.get("/api/v1/search", q="secret plan")["results"])
        assert any(c["channel"] == sent["channel"] for c in agent.get("/api/v1/board")["channels"])
    assert bob.get("/api/v1/board")["open_questions"][0]["id"] == sent["id"]

    # Eve sees nothing on any path, and the DM channel does not exist for her.
    assert "secret plan" not in _everything_visible_to(eve, sent["channel"])
    assert_error(eve.http.get("/api/v1/messages", params={"channel": sent["channel"]}), 404, "channel_not_found")
    assert_error(eve.http.get("/api/v1/dm", params={"agent": alice.name}), 404, "channel_not_found")
    assert_error(eve.http.post(f"/api/v1/messages/{sent['id']}/claim"), 404, "message_not_found")
    assert_error(
        eve.http.post("/api/v1/messages", json={"channel": sent["channel"], "content": "let me in"}),
        404,
        "channel_not_found",
    )
    assert_error(
        eve.http.post(f"/api/v1/channels/{sent['channel']}/members", json={"agent": eve.name}), 404, "channel_not_found"
    )
    assert_error(
        alice.http.post(f"/api/v1/channels/{sent['channel']}/members", json={"agent": eve.name}),
        403,
        "dm_members_fixed",
    )


def test_dm_errors(relay: Relay) -> None:
    alice = relay.agent()
    assert_error(
        alice.http.post("/api/v1/dm", json={"target_agent": unique("ghost"), "content": "hi"}), 404, "agent_not_found"
    )
    assert_error(alice.http.post("/api/v1/dm", json={"target_agent": alice.name, "content": "hi"}), 422, "dm_to_self")
    assert_error(alice.http.post("/api/v1/dm", json={"target_agent": "NO", "content": "hi"}), 422, "invalid_name")


def test_private_channel_is_for_members_only(relay: Relay) -> None:
    alice, bob, eve = relay.agent(), relay.agent(), relay.agent()
    own_name = unique("priv")
    created = data(alice.http.post("/api/v1/channels", json={"name": own_name, "private": True, "description": "ops"}))
    assert created["created"] is True and created["channel"]["private"] is True
    channel = created["channel"]["name"]
    assert channel == f"{alice.name}~{own_name}"
    secret = alice.post(channel, f"secret rota, @{eve.name} @{bob.name}")
    assert secret["mentions"] == []  # neither is a member yet
    assert "secret rota" not in _everything_visible_to(eve, channel)
    assert_error(
        eve.http.post("/api/v1/messages", json={"channel": channel, "content": "hi"}), 404, "channel_not_found"
    )
    assert_error(eve.http.post("/api/v1/channels", json={"name": channel}), 403, "not_your_namespace")
    assert_error(eve.http.post(f"/api/v1/channels/{channel}/join"), 404, "channel_not_found")
    # A member invites bob, who accepts by joining; now he reads it, and eve still cannot.
    data(alice.http.post(f"/api/v1/channels/{channel}/members", json={"agent": bob.name}))
    data(bob.http.post("/api/v1/channels", json={"name": channel}))
    assert bob.read(channel)["messages"][0]["id"] == secret["id"]
    assert_error(
        eve.http.post(f"/api/v1/channels/{channel}/members", json={"agent": eve.name}), 404, "channel_not_found"
    )
    assert "secret rota" not in _everything_visible_to(eve, channel)


def test_channel_limited_key_sees_nothing_else(relay: Relay) -> None:
    allowed, other = unique("allowed"), unique("other")
    outsider = relay.agent()
    outsider.post(other, "secret elsewhere")
    outsider.post(allowed, "hello allowed")
    limited = relay.agent(channels=[allowed])
    assert limited.get("/api/v1/me")["channels"] == [allowed]
    assert {c["name"] for c in limited.get("/api/v1/channels")["channels"]} == {allowed}
    assert_error(limited.http.get("/api/v1/messages", params={"channel": other}), 403, "channel_not_allowed")
    assert_error(
        limited.http.post("/api/v1/messages", json={"channel": other, "content": "x"}), 403, "channel_not_allowed"
    )
    assert_error(
        limited.http.post("/api/v1/messages", json={"channel": unique("new"), "content": "x"}),
        403,
        "channel_not_allowed",
    )
    assert_error(
        limited.http.get("/api/v1/search", params={"q": "secret", "channel": other}), 403, "channel_not_allowed"
    )
    assert limited.get("/api/v1/search", q="secret")["results"] == []
    assert limited.get("/api/v1/search", q="hello")["results"][0]["channel"] == allowed
    # Mentioned in a channel outside its scope: the mention is not shown to this key.
    outsider.post(other, f"@{limited.name} secret ping")
    leaked = _everything_visible_to(limited, allowed)
    assert "secret ping" not in leaked and "secret elsewhere" not in leaked
    # It still works normally inside its channel, and DMs are its own.
    limited.post(allowed, "inside")
    outsider.dm(limited.name, "direct hello")
    assert [m["content"] for m in limited.events(since=0)["messages"]][-2:] == ["inside", "direct hello"]


def test_files_follow_channel_visibility(relay: Relay) -> None:
    alice, eve = relay.agent(), relay.agent()
    channel = alice.private_channel()
    upload = data(
        alice.http.post(
            "/api/v1/files",
            json={
                "channel": channel,
                "filename": "plan.txt",
                "content": base64.b64encode(b"secret").decode(),
                "encoding": "base64",
            },
        )
    )["file"]
    assert alice.http.get(upload["url"]).content == b"secret"
    assert_error(eve.http.get(upload["url"]), 404, "file_not_found")
    assert_error(eve.http.get("/api/v1/files/nonexistent"), 404, "file_not_found")


def test_nobody_can_take_another_agents_private_channel_name(relay: Relay) -> None:
    eve, alice = relay.agent(), relay.agent()
    team = unique("team")

    def create(agent: Agent, name: str, **body: Any) -> httpx.Response:
        return agent.http.post("/api/v1/channels", json={"name": name, **body})

    # The same name, private, is two channels: each creator's own; a public one of that name is a third.
    eve.post(team, "squatting the name in public")
    eves = data(create(eve, team, private=True))["channel"]["name"]
    alices = data(create(alice, team, private=True))
    assert alices["created"] is True and alices["channel"]["name"] == f"{alice.name}~{team}" != eves
    assert alice.name not in {a["name"] for a in alice.get("/api/v1/agents", channel=team)["agents"]}
    # Pre-creating a name in alice's namespace fails on every path (create, post, join), public or private.
    planned = f"{alice.name}~{unique('plans')}"
    assert_error(create(eve, planned, private=True), 403, "not_your_namespace")
    assert_error(create(eve, planned), 403, "not_your_namespace")
    assert_error(eve.http.post("/api/v1/messages", json={"channel": planned, "content": "mine now"}), 404)
    assert_error(eve.http.post(f"/api/v1/channels/{planned}/join"), 404, "channel_not_found")
    # A key the operator limits to that channel waits for alice to create it; it cannot create it either.
    helper = relay.agent(channels=[planned])
    assert_error(create(helper, planned, private=True), 403, "not_your_namespace")
    assert data(create(alice, planned, private=True))["created"] is True
    assert data(helper.http.post(f"/api/v1/channels/{planned}/join"))["joined"] is True
    # Names a channel can never have: a DM's, or a '~' in the wrong place.
    assert_error(create(eve, f"dm:{eve.name}+{alice.name}"), 422, "invalid_name")
    for bad in (f"{alice.name}~", f"~{team}", f"{alice.name}~a~b"):
        assert_error(create(eve, bad, private=True), 422, "invalid_name")


def test_at_name_is_always_the_callers_own_dm(relay: Relay) -> None:
    alice, bob, eve = relay.agent(), relay.agent(), relay.agent()
    sent = data(alice.http.post("/api/v1/messages", json={"channel": f"@{bob.name}", "content": "secret between us"}))
    assert sent["message"]["channel"].startswith("dm:") and sent["message"]["expects_reply"] == bob.name
    assert [m["content"] for m in bob.read(f"@{alice.name}")["messages"]] == ["secret between us"]
    # Eve's '@bob' is her own conversation with bob (none yet), never theirs.
    assert_error(eve.http.get("/api/v1/messages", params={"channel": f"@{bob.name}"}), 404, "channel_not_found")
    assert_error(eve.http.post(f"/api/v1/channels/@{bob.name}/join"), 404, "channel_not_found")
    assert "secret between us" not in _everything_visible_to(eve, f"@{alice.name}")
    # '@name' never becomes a channel of its own, and a DM cannot be left.
    assert_error(eve.http.post("/api/v1/channels", json={"name": f"@{bob.name}"}), 422, "invalid_name")
    assert_error(alice.http.post(f"/api/v1/channels/@{bob.name}/leave"), 403, "dm_members_fixed")
    assert_error(alice.http.post("/api/v1/messages", json={"channel": "@", "content": "x"}), 422, "invalid_name")
