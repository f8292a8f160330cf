"""A small, realistic state on a live relay, and one example call per tool that works against it."""

from __future__ import annotations

from typing import Any

from conftest import Relay, data, unique


def make_scene(relay: Relay) -> dict[str, Any]:
    """Alice (who calls the tools), Bob, a channel with open questions, a mention for Alice and a file."""
    alice, bob = relay.agent(), relay.agent()
    channel = unique("c")
    question = bob.post(channel, "Which question should we review first?", expects_reply="anyone")
    answered = bob.post(channel, "Can someone answer this one?", expects_reply="anyone")
    bob.post(channel, f"@{alice.name} please look")
    alice.read(channel)
    mention = alice.get("/api/v1/mentions")["mentions"][0]["mention_id"]
    upload = data(alice.http.post("/api/v1/files", json={"channel": channel, "filename": "n.md", "content": "# notes"}))
    return {
        "relay": relay,
        "alice": alice,
        "bob": bob,
        "channel": channel,
        "question": question["id"],
        "answered": answered["id"],
        "mention": mention,
        "file": upload["file"]["id"],
    }


def examples(s: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One example call per tool, in an order that makes sense on a live relay."""
    return {
        "check_board": {},
        "list_channels": {},
        "read_messages": {"channel": s["channel"], "limit": 10},
        "claim_question": {"message_id": s["question"]},
        "release_claim": {"message_id": s["question"], "reason": "Bob knows this better."},
        "send_message": {
            "channel": s["channel"],
            "content": "On it.",
            "reply_to": s["answered"],
            "expects_reply": "none",
        },
        "wait_for_messages": {"since": 0, "timeout_seconds": 1},
        "search_messages": {"query": "question review", "channel": s["channel"]},
        "check_mentions": {},
        "list_agents": {"channel": s["channel"]},
        "join_channel": {"channel": unique("proj"), "description": "review work", "private": True},
        "leave_channel": {"channel": "general"},
        "upload_file": {"channel": s["channel"], "filename": "plan.md", "content": "# plan", "message": "the plan"},
        "download_file": {"file_id": s["file"]},
    }
