"""AgentChat's clients, unchanged, against parley: each of its twelve MCP tools' calls in AgentChat's wire format
(``x-agent-api-key`` + ``x-agent-name`` from a machine key, the ``_agentchat`` envelope unwrapped, ids sent back
as strings, Python's ``unread=False``, ISO ``before=``, ``PUT``/``GET /api/files``), per
``../shared/reference/agentchat.md``."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Relay, unique


class AgentChat:
    """What AgentChat's SDK and MCP server send and how they read the answers."""

    def __init__(self, relay: Relay, key: str, name: str) -> None:
        self.name = name
        headers = {"x-agent-api-key": key, "x-agent-name": name, "Content-Type": "application/json"}
        self.http = httpx.Client(base_url=relay.url, headers=headers, timeout=30)

    def v1(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"/api/v1{path}", **kwargs)
        assert response.is_success, response.text
        body = response.json()
        assert body["_agentchat"] == "response" and "not as instructions" in body["_notice"]
        return body["data"]


@pytest.fixture
def laptop(relay: Relay) -> Iterator[tuple[AgentChat, AgentChat]]:
    machine = unique("laptop")
    key = relay.mint(kind="machine", machine=machine)
    me, other = AgentChat(relay, key, f"{machine}-myproj"), AgentChat(relay, key, f"{machine}-other")
    yield me, other
    me.http.close()
    other.http.close()


def test_agentchats_twelve_tools_get_correct_answers(relay: Relay, laptop: tuple[AgentChat, AgentChat]) -> None:
    me, other = laptop
    channel = unique("project-x")

    # agentchat_help is static text in AgentChat's MCP server; parley's guide is GET / (for agents, markdown).
    guide = httpx.get(relay.url, headers={"Accept": "text/markdown"}).text
    assert "POST /api/v1/messages" in guide and "/api/v1/messages/{message_id}/claim" in guide

    # send_message: the channel is created on first post; metadata and a parent id sent as a string.
    first = me.v1("POST", "/messages", json={"channel": channel, "content": "first", "metadata": {"project": "x"}})
    first = first["message"]
    reply = me.v1(
        "POST", "/messages", json={"channel": channel, "content": "second", "parent_message_id": str(first["id"])}
    )["message"]
    assert reply["parent_message_id"] == first["id"] and first["metadata"] == {"project": "x"}

    # read_messages: chronological, AgentChat's field names, ISO `before` pages back in time.
    page = other.v1("GET", "/messages", params={"channel": channel, "limit": 20})
    assert [(m["author"], m["content"]) for m in page["messages"]] == [(me.name, "first"), (me.name, "second")]
    assert all(m["timestamp"] and "parent_message_id" in m for m in page["messages"])
    older = other.v1("GET", "/messages", params={"channel": channel, "before": reply["timestamp"]})
    assert [m["content"] for m in older["messages"]] == ["first"]

    # check_board: the channels it is in, unread counts, the latest message.
    me.v1("POST", "/messages", json={"channel": channel, "content": f"@{other.name} please review"})
    board = other.v1("GET", "/board")
    mine = next(c for c in board["channels"] if c["channel"] == channel)
    assert mine["unread"] == 1 and mine["latest"]["content"] == f"@{other.name} please review"

    # list_channels, with AgentChat's type filter.
    listed = other.v1("GET", "/channels", params={"type": "project"})["channels"]
    assert channel in [c["name"] for c in listed] and all(c["type"] == "project" for c in listed)

    # search_messages.
    results = other.v1("GET", "/search", params={"q": "review", "channel": channel})["results"]
    assert [(r["channel"], r["author"], r["content"]) for r in results] == [
        (channel, me.name, f"@{other.name} please review")
    ]

    # check_mentions (the SDK sends Python's str(bool)), mark_mentions_read with string ids.
    mentions = other.v1("GET", "/mentions", params={"unread": "true", "limit": 20})["mentions"]
    assert [(m["channel"], m["from"], m["read"]) for m in mentions] == [(channel, me.name, False)]
    marked = other.v1("POST", "/mentions", json={"mention_ids": [str(mentions[0]["mention_id"])]})
    assert marked["marked_read"] == 1
    assert other.v1("GET", "/mentions", params={"unread": "true"})["mentions"] == []
    assert len(other.v1("GET", "/mentions", params={"unread": "False"})["mentions"]) == 1

    # send_direct_message: only the two of them read it.
    dm = me.v1("POST", "/dm", json={"target_agent": other.name, "content": "just us"})["message"]
    assert other.v1("GET", "/dm", params={"agent": me.name})["messages"][-1]["id"] == dm["id"]

    # upload_file (PUT /api/files, not enveloped), then download_file and get_file_url by its path.
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    uploaded = me.http.put(
        "/api/files",
        json={
            "filename": "plot.png",
            "content": base64.b64encode(png).decode(),
            "channel": channel,
            "content_type": "image/png",
            "encoding": "base64",
            "post_message": True,
        },
    )
    assert uploaded.status_code == 201, uploaded.text
    file = uploaded.json()["file"]
    assert (file["name"], file["size"], file["bucket"]) == ("plot.png", len(png), "parley")
    downloaded = other.http.get("/api/files", params={"path": file["path"]})
    assert downloaded.content == png and downloaded.headers["content-type"] == "image/png"
    link = other.http.get("/api/files", params={"path": file["path"], "url": "true"}).json()
    assert link["signed_url"].endswith(f"/api/v1/files/{file['path']}") and link["needs_key"] is True
    assert other.http.get(link["signed_url"]).content == png  # with the caller's headers
    announced = other.v1("GET", "/messages", params={"channel": channel})["messages"][-1]
    assert announced["metadata"]["files"][0]["id"] == file["id"]

    text = me.http.put("/api/files", json={"filename": "n.md", "content": "# notes", "channel": channel})
    quiet = me.http.put(
        "/api/files", json={"filename": "q.md", "content": "shh", "channel": channel, "post_message": False}
    )
    assert other.http.get("/api/files", params={"path": text.json()["file"]["path"]}).text == "# notes"
    assert other.v1("GET", "/messages", params={"channel": channel})["messages"][-1]["content"] != "shh"
    assert quiet.status_code == 201


def test_agentchat_file_routes_keep_parleys_rules(relay: Relay, laptop: tuple[AgentChat, AgentChat]) -> None:
    me, other = laptop
    outsider = relay.agent()
    private = me.v1("POST", "/channels", json={"name": unique("secret"), "private": True})["channel"]["name"]
    stored = me.http.put("/api/files", json={"filename": "k.txt", "content": "key", "channel": private})
    path = stored.json()["file"]["path"]
    for params in ({"path": path}, {"path": path, "url": "true"}):
        refused = outsider.http.get("/api/files", params=params)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "file_not_found"
    assert httpx.get(f"{relay.url}/api/files", params={"path": path}).status_code == 401
    bad = me.http.put("/api/files", json={"filename": "x", "content": "%%%", "channel": private, "encoding": "base64"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_base64"
    unknown = me.http.put("/api/files", json={"filename": "x", "content": "y", "channel": private, "colour": 1})
    assert unknown.status_code == 422
