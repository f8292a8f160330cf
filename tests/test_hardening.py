"""Promises kept under attack: one relay per data directory, private files, bad input answered in the error shape."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import Relay, RelayProcess, assert_error, data, free_port, postgres_databases, start_relay, unique

from parley.cli import main


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_second_relay_on_one_sqlite_data_directory_refuses_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    first = start_relay(data_dir)
    try:
        alice = first.agent()
        second = subprocess.run(
            [sys.executable, "-m", "parley", "serve", "--port", str(free_port()), "--data", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "another parley relay" in second.stderr and "PostgreSQL" in second.stderr, second.stderr
        # Nor may an admin command that cannot reach the running relay change its data behind its back.
        unreachable = f"http://127.0.0.1:{free_port()}"
        assert main(["revoke", alice.name, "--data", str(data_dir), "--url", unreachable]) == 1
        assert "another parley relay" in capsys.readouterr().err
        assert data(alice.http.get("/api/v1/me"))["name"] == alice.name  # the key still works
    finally:
        first.stop()
    restarted = start_relay(data_dir)  # the lock went with the first relay
    restarted.stop()


def test_the_data_directory_and_its_files_are_private_to_their_owner(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    relay = start_relay(data_dir)
    try:
        alice = relay.agent()
        channel = unique("c")
        data(alice.http.post("/api/v1/files", params={"channel": channel, "filename": "a.txt"}, content=b"private"))
        blobs = [path for path in (data_dir / "files").rglob("*") if path.is_file()]
        assert blobs
    finally:
        relay.stop()
    assert _mode(data_dir) == 0o700
    for path in [data_dir / "parley.db", data_dir / "admin.token", *blobs]:
        assert _mode(path) == 0o600, path
    assert not [path for path in data_dir.rglob("*.part")]


def test_a_key_cannot_be_minted_with_an_expiry_past_any_calendar(relay: Relay) -> None:
    with relay.admin() as admin:
        refused = admin.post("/admin/keys", json={"kind": "agent", "name": unique("a"), "expires": "100000000"})
        assert_error(refused, 422, "invalid_expires")
        listed = data(admin.get("/admin/keys"))["keys"]  # nothing half-stored that breaks the listing
    assert all(key["expires_at"] is None or key["expires_at"] < "9999" for key in listed)


@pytest.mark.parametrize("token", ["{token}x", "{token}\u00e9", "\u00e9", "wrong", ""])
def test_a_wrong_admin_token_is_a_401_whatever_it_holds(relay: Relay, token: str) -> None:
    sent = token.format(token=relay.admin_token).encode()
    response = httpx.get(f"{relay.url}/admin/keys", headers=[(b"X-Admin-Token", sent)])
    assert_error(response, 401, "invalid_admin_token")


def _raw_get(relay: Relay, path: str, header: bytes) -> tuple[int, bytes]:
    """A request as a careless client sends it (httpx refuses to send some of these)."""
    host, port = relay.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + header + b"\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_whitespace_around_the_admin_token_is_not_part_of_it(relay: Relay) -> None:
    for sent in (f"{relay.admin_token} ", f" {relay.admin_token}\t"):
        status, body = _raw_get(relay, "/admin/keys", b"X-Admin-Token: " + sent.encode())
        assert status == 200, body


def test_text_with_lone_surrogates_is_refused_not_a_500(relay: Relay) -> None:
    alice, bob = relay.agent(), relay.agent()
    bodies = {
        "/api/v1/dm": {"target_agent": bob.name, "content": "hi \ud800 there"},
        "/api/v1/messages": {"channel": unique("c"), "content": "\udfff", "metadata": {"k": "\ud801"}},
    }
    for path, body in bodies.items():
        sent = json.dumps(body)  # escapes each lone surrogate as \\udXXX, as a client's JSON library would
        response = alice.http.post(path, content=sent, headers={"Content-Type": "application/json"})
        assert response.status_code in (400, 422), response.text  # invalid JSON, or invalid text in valid JSON
        assert_error(response, response.status_code)
    assert {c["channel"] for c in bob.get("/api/v1/board")["channels"]} <= {"general"}  # nothing half-stored


@pytest.mark.parametrize("name", ["line\nbreak.txt", "carriage\rreturn.txt", "tab\x0bvt.txt", "form\x0cfeed.txt"])
def test_file_names_with_control_characters_download_cleanly(relay: Relay, name: str) -> None:
    alice = relay.agent()
    stored = data(
        alice.http.post("/api/v1/files", json={"channel": unique("c"), "filename": name, "content": "hello"})
    )["file"]
    assert not any(ord(ch) < 32 for ch in stored["name"])
    download = alice.http.get(stored["url"])
    assert download.status_code == 200 and download.content == b"hello"
    disposition = download.headers["content-disposition"]
    assert "\n" not in disposition and "\r" not in disposition


def test_a_content_type_outside_latin_1_is_not_a_500(relay: Relay) -> None:
    alice = relay.agent()
    sent = {"channel": unique("c"), "filename": "x.txt", "content": "abc", "content_type": "text/pla\u0144n"}
    stored = data(alice.http.post("/api/v1/files", json=sent))["file"]
    assert stored["content_type"] == "text/plain"  # malformed: guessed from the name instead
    response = alice.http.post(
        "/api/v1/files",
        params={"channel": unique("c"), "filename": "x.bin"},
        content=b"abc",
        headers=[(b"Content-Type", "text/plain; charset=\u0107".encode())],
    )
    stored = data(response)["file"]
    download = alice.http.get(stored["url"])
    assert download.status_code == 200 and download.content == b"abc"
    assert download.headers["content-type"].isascii()


def test_multipart_uploads_store_the_file_not_the_form(relay: Relay) -> None:
    alice = relay.agent()
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(64)
    response = alice.http.post(
        "/api/v1/files", params={"channel": unique("c")}, files={"file": ("pixel.png", png, "image/png")}
    )
    stored = data(response)["file"]
    assert stored["name"] == "pixel.png" and stored["content_type"] == "image/png" and stored["size"] == len(png)
    assert alice.http.get(stored["url"]).content == png
    # A raw body with no type of its own is typed from its file name, never as a form.
    raw = alice.http.post(
        "/api/v1/files",
        params={"channel": unique("c"), "filename": "notes.txt"},
        content=b"plain words",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert data(raw)["file"]["content_type"] == "text/plain"


def test_rate_buckets_on_postgresql_survive_the_wall_clock_stepping_back(tmp_path: Path) -> None:
    databases = postgres_databases("the PostgreSQL rate-bucket clock test")
    try:
        relay = start_relay(tmp_path / "data", database_url=databases.new(), write_burst=5, write_rate=1.0)
        try:
            alice = relay.agent()
            alice.post(unique("c"), "fills the bucket row")
            # The database's clock jumps an hour back: every bucket now looks stamped in the future.
            relay.query("UPDATE rate_buckets SET updated_at = updated_at + 3600 RETURNING agent_id")
            response = alice.http.post("/api/v1/messages", json={"channel": unique("c"), "content": "still fine"})
            assert response.status_code == 201, response.text
            assert 0 <= response.json()["rate_limit"]["remaining"] <= 5
        finally:
            relay.stop()
    finally:
        databases.drop_all()


def _answer(sock: socket.socket) -> bytes:
    """Everything the relay sends until it closes the connection (the socket's timeout is the deadline)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_half_sent_requests_are_cut_off_and_the_relay_keeps_answering(tmp_path: Path) -> None:
    relay = start_relay(tmp_path / "data", read_timeout=0.5)
    try:
        host, port = relay.url.removeprefix("http://").split(":")
        key = relay.agent().key.encode()
        stalled = {
            "silent": b"",
            "half a header": b"GET /api/v1/board HTTP/1.1\r\nHost: x\r\nAuthor",
            "half a body": b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + key
            + b'\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"chan',
        }
        sockets = []
        for _ in range(30):
            for opening in stalled.values():
                sock = socket.create_connection((host, int(port)), timeout=10)
                sock.sendall(opening)
                sockets.append(sock)
        assert httpx.get(f"{relay.url}/health").status_code == 200  # others are served meanwhile
        for sock in sockets:
            with sock:
                answer = _answer(sock)  # closed by the relay well before the 10 s socket timeout
            if answer:
                head, _, body = answer.partition(b"\r\n\r\n")
                assert head.split()[1] == b"408" and json.loads(body)["error"]["code"] == "request_timeout"
    finally:
        relay.stop()


def test_what_is_not_http_gets_the_error_shape(relay: Relay) -> None:
    host, port = relay.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"HELLO RELAY\r\n\r\n")
        head, _, body = _answer(sock).partition(b"\r\n\r\n")
    assert head.split()[1] == b"400"
    error = json.loads(body)["error"]
    assert error["code"] == "invalid_http" and "HTTP" in error["message"]


def test_a_flood_of_one_log_line_is_kept_to_a_budget() -> None:
    import logging

    from parley.relay.server import LogBudget

    budget = LogBudget(burst=5, window=60)
    records = [logging.LogRecord("uvicorn.error", logging.WARNING, "", 0, "Invalid HTTP request", None, None)] * 1000
    assert sum(budget.filter(record) for record in records) == 5
    other = logging.LogRecord("uvicorn.error", logging.WARNING, "", 0, "something else", None, None)
    assert budget.filter(other)


def test_a_locked_database_on_a_read_is_a_503_with_retry_after(tmp_path: Path) -> None:
    """A read that meets a lock it cannot wait out (another process holding the database) is a 503 to retry,
    while an error in the SQL itself stays a bug: the real engine, on a real database file."""
    import asyncio
    import sqlite3

    from parley.relay.errors import Unavailable
    from parley.relay.store.sqlite_engine import SQLiteEngine

    async def locked(tx: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    async def broken(tx: object) -> None:
        raise sqlite3.OperationalError('near "SELEC": syntax error')

    async def scenario() -> None:
        engine = SQLiteEngine(tmp_path / "parley.db")
        await engine.start()
        try:
            with pytest.raises(Unavailable) as refused:
                await engine.read(locked)
            assert refused.value.status == 503 and refused.value.headers() == {"Retry-After": "1"}
            with pytest.raises(sqlite3.OperationalError):
                await engine.read(broken)
        finally:
            await engine.close()

    asyncio.run(scenario())


def test_a_full_disk_is_a_507_and_leaves_no_partial_file(tmp_path: Path) -> None:
    """The relay runs with a 4 MB file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored): a bigger upload cannot be written."""
    import resource
    import signal

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 * 1024 * 1024, 4 * 1024 * 1024))

    data_dir = tmp_path / "data"
    relay = RelayProcess.start(data_dir, preexec_fn=small_disk)
    try:
        with relay.agent(unique("a")) as http:
            big = http.post(
                "/api/v1/files", params={"channel": unique("c"), "filename": "big.bin"}, content=os.urandom(6 << 20)
            )
            assert_error(big, 507, "disk_full")
            small = http.post(
                "/api/v1/files", params={"channel": unique("c"), "filename": "small.txt"}, content=b"fits"
            )
            assert data(small)["file"]["size"] == 4
        assert not list((data_dir / "files").rglob("*.part"))
    finally:
        relay.stop()
