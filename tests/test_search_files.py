"""Search (FTS5, ranked, snippets, scoped) and files (content-addressed, channel-scoped, safe to serve)."""

from __future__ import annotations

import base64
import hashlib
import sqlite3

import pytest
from conftest import Relay, assert_error, data, unique

from parley import limits, rules


def test_search_is_ranked_with_snippets_and_scoped(relay: Relay) -> None:
    alice = relay.agent()
    word = unique("zebra").replace("-", "")
    channel, other = unique("c"), unique("c")
    weak = alice.post(channel, f"one mention of {word} in a long sentence about many other unrelated things")
    strong = alice.post(channel, f"{word} {word} {word} deploy")
    elsewhere = alice.post(other, f"{word} somewhere else")
    results = alice.get("/api/v1/search", q=word)["results"]
    assert {r["id"] for r in results} == {weak["id"], strong["id"], elsewhere["id"]}
    assert results[0]["id"] == strong["id"]
    assert f"[{word}]" in results[0]["snippet"]
    scoped = alice.get("/api/v1/search", q=word, channel=channel)["results"]
    assert {r["id"] for r in scoped} == {weak["id"], strong["id"]}
    # Operators and quotes in the query are just words, never a syntax error.
    assert alice.get("/api/v1/search", q=f'"{word}" AND (deploy OR')["results"][0]["id"] == strong["id"]


def test_search_errors(relay: Relay) -> None:
    alice = relay.agent()
    assert_error(
        alice.http.get("/api/v1/search", params={"q": "x", "channel": unique("none")}), 404, "channel_not_found"
    )
    assert_error(alice.http.get("/api/v1/search", params={"q": "a" * (limits.MAX_SEARCH_CHARS + 1)}), 422)
    assert_error(alice.http.get("/api/v1/search", params={"q": "!!! ???"}), 422, "invalid_query")
    assert_error(alice.http.get("/api/v1/search"), 422)


def test_upload_as_json_or_raw_and_download(relay: Relay) -> None:
    alice, bob = relay.agent(), relay.agent()
    channel = unique("c")
    payload = bytes(range(256)) * 10
    stored = data(
        alice.http.post(
            "/api/v1/files",
            json={
                "channel": channel,
                "filename": "blob.bin",
                "content": base64.b64encode(payload).decode(),
                "encoding": "base64",
                "message": "the blob",
            },
        )
    )["file"]
    assert stored["size"] == len(payload) and stored["sha256"] == hashlib.sha256(payload).hexdigest()
    announced = bob.read(channel)["messages"][-1]
    assert announced["content"] == "the blob" and announced["metadata"]["files"][0]["id"] == stored["id"]
    download = bob.http.get(stored["url"])
    assert download.content == payload and download.headers["content-disposition"].startswith("attachment")

    raw = data(
        alice.http.post(
            "/api/v1/files",
            params={"channel": channel, "filename": "notes.txt", "announce": "false"},
            content=b"plain notes",
            headers={"Content-Type": "text/plain"},
        )
    )["file"]
    assert raw["content_type"] == "text/plain" and raw["message_id"] is None
    fetched = bob.http.get(raw["url"])
    assert fetched.text == "plain notes" and fetched.headers["content-disposition"].startswith("inline")
    assert fetched.headers["x-content-type-options"] == "nosniff"
    # Content-addressed: the same bytes are stored once on disk.
    again = data(
        alice.http.post(
            "/api/v1/files",
            params={"channel": channel, "filename": "copy.txt"},
            content=b"plain notes",
            headers={"Content-Type": "text/plain"},
        )
    )["file"]
    assert again["id"] != raw["id"] and again["sha256"] == raw["sha256"]
    if relay.settings.database_url:
        assert relay.query(f"SELECT count(*) FROM blobs WHERE sha256 = '{raw['sha256']}'") == [(1,)]
    else:
        assert len(list(relay.settings.files_dir.rglob(raw["sha256"]))) == 1


def test_dangerous_files_download_as_attachments(relay: Relay) -> None:
    alice = relay.agent()
    page = data(
        alice.http.post(
            "/api/v1/files",
            params={"channel": unique("c"), "filename": "x.html"},
            content=b"<script>alert(1)</script>",
            headers={"Content-Type": "text/html"},
        )
    )["file"]
    served = alice.http.get(page["url"])
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment")
    assert served.headers["content-security-policy"] == "sandbox"


def test_file_errors(relay: Relay) -> None:
    alice = relay.agent()
    channel = unique("c")
    too_big = b"x" * (limits.MAX_FILE_BYTES + 1)
    assert_error(
        alice.http.post(
            "/api/v1/files",
            params={"channel": channel, "filename": "big"},
            content=too_big,
            headers={"Content-Type": "application/octet-stream"},
        ),
        413,
        "file_too_large",
    )
    assert_error(
        alice.http.post("/api/v1/files", content=b"x", headers={"Content-Type": "application/octet-stream"}),
        400,
        "missing_file_fields",
    )
    assert_error(
        alice.http.post(
            "/api/v1/files", json={"channel": channel, "filename": "a", "content": "%%%", "encoding": "base64"}
        ),
        422,
        "invalid_base64",
    )
    assert_error(
        alice.http.post("/api/v1/files", json={"channel": "Bad!", "filename": "a", "content": "x"}), 422, "invalid_name"
    )
    assert_error(
        alice.http.post("/api/v1/files", content=b"{", headers={"Content-Type": "application/json"}),
        400,
        "invalid_json",
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("deploy failed", {"deploy failed on monday"}),
        ('"failed on"', {"deploy failed on monday"}),
        ("deploy OR lunch", {"deploy failed on monday", "lunch at noon"}),
        ("deploy -monday", set()),
        ('AND OR NOT NEAR( "unbalanced', set()),
        ("lunch) * ^ : {", {"lunch at noon"}),
    ],
)
def test_search_syntax_never_breaks_fts5(query: str, expected: set[str]) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5 (content, tokenize='porter unicode61')")
    db.executemany("INSERT INTO t VALUES (?)", [("deploy failed on monday",), ("lunch at noon",)])
    match = rules.fts_query(query)
    found = {row[0] for row in db.execute("SELECT content FROM t WHERE t MATCH ?", (match,))} if match else set()
    assert found == expected


def test_search_looks_past_newest_matches_the_caller_may_not_see(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    import parley.relay.store.sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "SEARCH_CANDIDATES", 3)  # the SQLite store ranks the newest 3 first
    alice, eve, bob = relay.agent(), relay.agent(), relay.agent()
    word = unique("zeta").replace("-", "")
    public = unique("c")
    visible = [alice.post(public, f"{word} visible {i}")["id"] for i in range(2)]
    private = eve.private_channel()
    for i in range(10):
        eve.post(private, f"{word} secret {i}")
    found = bob.get("/api/v1/search", q=word, limit=2)["results"]
    assert sorted(r["id"] for r in found) == visible
