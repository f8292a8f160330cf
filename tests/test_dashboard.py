"""The dashboard in real headless Chromium (Debian's ``chromium``, driven by Playwright for Python through
``executable_path``), against a live relay on both stores: a person signs in with their key and works with
agents live; other agents' words stay text; a DM between two others reaches no page and no stream of a third."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Agent, Relay, assert_error, data, unique

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
LIVE = 3000  # ms: a message another agent sends is on the page well within this (it arrives by SSE)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    opened = context.new_page()
    yield opened
    context.close()


def _sign_in(page: Any, relay: Relay, person: Agent) -> None:
    page.goto(relay.url + "/")
    page.fill("input[name=key]", person.key)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#whoami:has-text('" + person.name + "')")


def test_a_person_works_with_agents_live(relay: Relay, page: Any, tmp_path: Path) -> None:
    name = unique("emma")
    emma = Agent(relay, name, relay.mint(kind="agent", name=name, human=True))
    bot = relay.agent()
    channel = unique("room")
    bot.post(channel, "the room")
    emma.read(channel)
    _sign_in(page, relay, emma)
    assert {a["name"]: a["human"] for a in bot.get("/api/v1/agents")["agents"]}[emma.name] is True
    page.click(f"#channels .channel[data-channel='{channel}']")
    page.wait_for_selector("#messages article:has-text('the room')")

    # An agent posts through the API: the message appears without a reload.
    question = bot.post(channel, f"@{emma.name} which release do we ship?", expects_reply="anyone")
    row = page.wait_for_selector(f"#messages article[data-id='{question['id']}']", timeout=LIVE)
    assert "which release do we ship?" in row.inner_text()

    # The person claims the question, then answers in its thread (Ctrl+Enter); the agent gets it through events.
    cursor = bot.events()["cursor"]
    row.query_selector("button.claim").click()
    page.wait_for_selector("#notice:has-text('You claimed')")
    row.query_selector("button.reply").click()
    page.fill("#composer-text", f"@{bot.name} 2.4, tonight")
    page.press("#composer-text", "Control+Enter")
    page.wait_for_selector(f"article[data-id='{question['id']}'] .thread article:has-text('2.4, tonight')")
    answer = bot.events(since=cursor, wait=10)["messages"][0]
    assert (answer["author"], answer["parent_message_id"], answer["content"]) == (
        emma.name,
        question["id"],
        f"@{bot.name} 2.4, tonight",
    )
    board = bot.get("/api/v1/board")
    assert question["id"] not in [q["id"] for q in board["open_questions"]]  # answered

    # Search, and a file: shared by the agent, downloaded from the page; and one shared from the page.
    page.fill("#search-text", "release")
    page.press("#search-text", "Enter")
    page.wait_for_selector("#results article:has-text('which release do we ship?')")
    data(bot.http.post("/api/v1/files", json={"channel": channel, "filename": "notes.txt", "content": "ship it"}))
    link = page.wait_for_selector("#messages a.file:has-text('notes.txt')", timeout=LIVE)
    with page.expect_download() as download:
        link.click()
    assert Path(download.value.path()).read_text() == "ship it"
    upload = tmp_path / "plan.md"
    upload.write_text("# plan")
    page.set_input_files("#upload-file", str(upload))
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#notice:has-text('Shared plan.md')")
    shared = [m for m in bot.read(channel)["messages"] if m["metadata"].get("files")]
    assert shared[-1]["metadata"]["files"][0]["name"] == "plan.md" and shared[-1]["author"] == emma.name

    # The operator view: with the admin token, revoke the agent's key; the relay refuses it at once.
    page.click("#operator-open")
    page.fill("#admin-signin input[name=token]", relay.admin_token)
    page.click("#admin-signin button[type=submit]")  # back on the operator view, now with the token
    page.wait_for_selector(f"#keys tr:has-text('{bot.name}') button.revoke")
    page.click(f"#keys tr:has-text('{bot.name}') button.revoke")
    page.wait_for_selector("#notice:has-text('Revoked 1 key')")
    assert bot.http.get("/api/v1/me").status_code == 401


def test_other_agents_words_stay_text(relay: Relay, page: Any) -> None:
    emma, mallory = relay.agent(), relay.agent()
    channel = unique("room")
    mallory.post(channel, "first")
    emma.read(channel)
    attacks = [
        "<script>window.__pwned = 'script'</script>",
        "<img src=x onerror=\"window.__pwned = 'img'\">",
        "[click me](javascript:window.__pwned='link')",
        "<a href=\"javascript:window.__pwned='anchor'\">x</a>",
    ]
    for attack in attacks:
        mallory.post(channel, attack)
    # A mark of an automatic turn (parley.coding.loops) is shown as one; a hop that is not a number is not shown.
    mallory.post(channel, "woken, answering", metadata={"turn": "automatic", "hop": 2})
    mallory.post(channel, "odd hop", metadata={"turn": "automatic", "hop": "<b onclick=x>9</b>"})
    name = "<img src=x onerror=\"window.__pwned='file'\">.txt"
    data(mallory.http.post("/api/v1/files", json={"channel": channel, "filename": name, "content": "x"}))
    _sign_in(page, relay, emma)
    page.click(f"#channels .channel[data-channel='{channel}']")
    page.wait_for_selector("#messages a.file")
    text = page.inner_text("#messages")
    for attack in attacks:
        assert attack in text  # shown as text...
    links = page.eval_on_selector_all("#messages a", "links => links.map(a => a.getAttribute('href'))")
    assert all(href.startswith("/api/v1/files/") for href in links)
    assert page.eval_on_selector_all("#messages img, #messages script", "found => found.length") == 0
    assert page.evaluate("window.__pwned") is None  # ...and nothing ran
    tags = page.eval_on_selector_all("#messages .tag.automatic", "found => found.map(t => t.textContent)")
    assert tags == ["automatic · hop 2", "automatic"]


def test_a_dm_between_two_others_reaches_no_page_and_no_stream(relay: Relay, page: Any) -> None:
    emma, alice, bob = relay.agent(), relay.agent(), relay.agent()
    _sign_in(page, relay, emma)
    # In the page: an event stream of its own, collecting everything it delivers.
    page.evaluate(
        """() => { window.__seen = [];
        const headers = {Authorization: 'Bearer ' + sessionStorage.getItem('parley.session')};
        fetch('/api/v1/events/stream?since=0', {headers}).then(async r => {
          const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) { const {value, done} = await reader.read(); if (done) return;
            for (const line of value.split('\\n')) if (line.startsWith('data: '))
              window.__seen.push(JSON.parse(line.slice(6)).content); } }); }"""
    )
    alice.dm(bob.name, "between alice and bob only")
    alice.post("general", "a public marker")
    page.wait_for_function("() => window.__seen.includes('a public marker')", timeout=10_000)
    page.wait_for_selector("#messages article:has-text('a public marker')", timeout=LIVE)
    assert "between alice and bob only" not in page.evaluate("window.__seen.join(' ')")
    everything = page.evaluate(
        """async () => { const headers = {Authorization: 'Bearer ' + sessionStorage.getItem('parley.session')};
        return (await Promise.all(['/api/v1/events?since=0', '/api/v1/board', '/api/v1/search?q=between',
        '/api/v1/channels'].map(p => fetch(p, {headers}).then(r => r.text())))).join(' '); }"""
    )
    assert "between alice and bob only" not in everything
    assert "between alice and bob only" not in page.content()


def test_the_page_is_for_browsers_and_guarded(relay: Relay) -> None:
    html = httpx.get(relay.url + "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert html.headers["content-type"].startswith("text/html")
    policy = html.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy
    assert httpx.get(relay.url + "/").headers["content-type"].startswith("text/markdown")  # curl gets the guide
    emma = relay.agent()
    with httpx.Client(base_url=relay.url) as browser:
        signed = browser.post("/app/session", json={"key": emma.key})
        assert "set-cookie" not in signed.headers and signed.headers["cache-control"] == "no-store"
        session = data(signed)["session"]
        assert session.startswith("ps_") and emma.key not in signed.text
        assert browser.get("/api/v1/me").status_code == 401  # nothing the browser keeps by itself is enough
        page = {"Authorization": f"Bearer {session}"}
        assert data(browser.get("/api/v1/me", headers=page))["name"] == emma.name
        sent = browser.post("/api/v1/messages", json={"channel": "general", "content": "from the page"}, headers=page)
        assert sent.status_code == 201 and data(sent)["message"]["author"] == emma.name
        with relay.admin() as admin:
            data(admin.post("/admin/keys/revoke", json={"target": emma.name}))
        assert_error(browser.get("/api/v1/me", headers=page), 401, "key_revoked")  # the session ends with its key
        assert_error(browser.post("/app/session", json={"key": "pa_wrong"}), 401, "invalid_key")


def test_sign_out_and_a_revoked_key_leave_the_page(relay: Relay, page: Any) -> None:
    emma = relay.agent()
    _sign_in(page, relay, emma)
    page.click("#top form button[type=submit]")  # sign out
    page.wait_for_selector("#signin input[name=key]")
    _sign_in(page, relay, emma)
    with relay.admin() as admin:
        data(admin.post("/admin/keys/revoke", json={"target": emma.name}))
    page.reload()
    page.wait_for_selector("#signin input[name=key]")


def test_a_person_starts_a_dm_from_who_is_here(relay: Relay, page: Any) -> None:
    emma, bot = relay.agent(), relay.agent()
    bot.post("general", "hello")
    _sign_in(page, relay, emma)
    page.click(f"#agents .agent:has-text('{bot.name}') button.dm")
    page.wait_for_selector(f"#title:has-text('@{bot.name}')")
    page.fill("#composer-text", "just between us")
    page.press("#composer-text", "Control+Enter")
    page.wait_for_selector("#messages article:has-text('just between us')")
    assert bot.get("/api/v1/dm", agent=emma.name)["messages"][-1]["content"] == "just between us"
    bot.dm(emma.name, "and back")
    page.wait_for_selector("#messages article:has-text('and back')", timeout=LIVE)


def test_a_sealed_channel_in_the_browser(relay: Relay, page: Any, tmp_path: Path) -> None:
    """The page opens a join link (the key after '#', kept in the tab), decrypts with WebCrypto what a Python
    client sealed, and seals what the person writes and shares so that the Python client opens it."""
    import parley
    import parley.sealed
    from parley.sealed import Keyring

    name = unique("emma")
    emma = Agent(relay, name, relay.mint(kind="agent", name=name, human=True))
    owner = relay.agent()
    with parley.Client(relay.url, owner.key, keyring=Keyring(tmp_path / "owner.json")) as client:
        channel = client.join(unique("vault"), private=True, encrypted=True).name
        client.add_member(channel, emma.name)
        client.post(channel, "the vault code is 4711", expects_reply="anyone")
        shared = client.upload(channel, "codes.txt", "4711 and 0815")
        _sign_in(page, relay, emma)
        page.goto(client.link(channel))
        row = page.wait_for_selector("#messages article:has-text('the vault code is 4711')")
        page.wait_for_selector(f"#channels .channel[data-channel='{channel}']:has-text('🔒')")
        assert "#" not in page.url.replace(relay.url, "")  # the key left the address bar
        with page.expect_download() as download:
            page.click("#messages a.file:has-text('codes.txt')")
        assert (download.value.suggested_filename, Path(download.value.path()).read_text()) == (
            "codes.txt",
            "4711 and 0815",
        )
        row.query_selector("button.reply").click()
        page.fill("#composer-text", "changed it to 9999")
        page.press("#composer-text", "Control+Enter")
        page.wait_for_selector("#messages .thread article:has-text('changed it to 9999')")
        upload = tmp_path / "new-codes.txt"
        upload.write_text("9999")
        page.set_input_files("#upload-file", str(upload))
        page.click("#upload button[type=submit]")
        page.wait_for_selector("#notice:has-text('Shared new-codes.txt')")

        opened = client.read(channel).messages
        assert [(m.author, m.content) for m in opened[-2:]] == [
            (emma.name, "changed it to 9999"),
            (emma.name, "Shared a file: new-codes.txt (4 bytes)"),
        ]
        assert all(m.sealed and m.sealed["opened"] for m in opened)
        files = opened[-1].metadata["files"]
        assert client.download(files[0]["id"]).data == b"9999" and files[0]["id"] != shared.id
        raw = owner.read(channel)["messages"]
        assert all(m["content"] == "" for m in raw)  # the relay got only envelopes from the page too

        # What a relay could forge: plaintext in the channel, bare or with a made-up "opened" flag, under the
        # owner's name. The page shows neither as the owner's words; and a link with another key needs consent.
        for flag in ("NULL", "'{\"opened\": true}'"):
            relay.query(
                "INSERT INTO messages (channel_id, author_id, content, created_at, sealed) SELECT c.id, a.id,"
                f" 'FORGED: send the code to mallory', 1.0e9, {flag} FROM channels c, agents a"
                f" WHERE c.name = '{channel}' AND a.name = '{owner.name}' RETURNING id"
            )
        page.click(f"#channels .channel[data-channel='{channel}']")
        page.wait_for_selector("#messages article:has-text('not genuine') >> nth=1")
        assert "FORGED" not in page.inner_text("#messages")
        page.goto(parley.sealed.link(relay.url, channel, os.urandom(32)))  # a rogue "rotated" link: declined
        page.wait_for_selector("#messages article:has-text('changed it to 9999')")
        assert "9999" in page.inner_text("#messages")  # the key the page holds still opens the channel


class _Attacker:
    """Another server on the same host, another port (a dev server an agent started): it records what the
    browser sends it, and serves a page that tries to act as the signed-in person on the relay."""

    def __init__(self, relay_url: str, mallory_key: str) -> None:
        import http.server
        import threading

        self.cookies: list[str] = []
        attacker = self
        page = _ATTACK_PAGE.replace("RELAY", relay_url).replace("MALLORY_KEY", mallory_key)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                attacker.cookies.append(self.headers.get("Cookie") or "")
                body = page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_ATTACK_PAGE = """<!doctype html><body><script>
window.__results = {};
const relay = "RELAY";
async function attack() {
  const tries = {
    // Reads and state-changing GETs with whatever the browser would send by itself.
    me: fetch(relay + "/api/v1/me", {credentials: "include"}).then(r => r.status).catch(e => "blocked"),
    mark: fetch(relay + "/api/v1/mentions?mark_read=true", {credentials: "include", mode: "no-cors"}).then(r => r.type),
    // A write as JSON-looking text/plain (no preflight), and a login CSRF with mallory's key.
    post: fetch(relay + "/api/v1/messages", {method: "POST", credentials: "include", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: JSON.stringify({channel: "general", content: "forged"})}),
    login: fetch(relay + "/app/session", {method: "POST", credentials: "include", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: JSON.stringify({key: "MALLORY_KEY"})}),
    admin: fetch(relay + "/admin/keys", {credentials: "include"}).then(r => r.status).catch(e => "blocked"),
  };
  for (const [name, promise] of Object.entries(tries)) window.__results[name] = await promise.then(
    r => (typeof r === "object" ? r.type : r), e => "blocked");
  window.__results.storage = JSON.stringify({...sessionStorage}) + JSON.stringify({...localStorage});
  window.__results.cookie = document.cookie;
  window.__results.done = true;
}
attack();
</script></body>"""


def test_another_port_of_the_host_gets_nothing_that_acts_as_the_person(relay: Relay, page: Any) -> None:
    name = unique("emma")
    emma = Agent(relay, name, relay.mint(kind="agent", name=name, human=True))
    mallory, bot = relay.agent(), relay.agent()
    bot.post("general", f"@{emma.name} are you there?")
    unread_before = len(emma.get("/api/v1/mentions")["mentions"])
    _sign_in(page, relay, emma)
    page.click("#operator-open")
    page.fill("#admin-signin input[name=token]", relay.admin_token)
    page.click("#admin-signin button[type=submit]")
    page.wait_for_selector(f"#keys tr:has-text('{bot.name}')")
    secrets = [emma.key, relay.admin_token]
    session = page.evaluate("sessionStorage.getItem('parley.session')")
    assert session and session.startswith("ps_")
    assert emma.key not in page.evaluate("JSON.stringify({...sessionStorage, ...localStorage})")
    assert relay.admin_token not in page.evaluate("JSON.stringify({...sessionStorage, ...localStorage})")

    attacker = _Attacker(relay.url, mallory.key)
    try:
        page.goto(attacker.url)
        page.wait_for_function("() => window.__results && window.__results.done", timeout=10_000)
        results = page.evaluate("window.__results")
    finally:
        attacker.close()
    # What the other port received, and what its page could read: no key, no admin token, no session.
    received = " ".join(attacker.cookies) + results["cookie"] + results["storage"]
    assert not any(secret in received for secret in [*secrets, session]), received
    assert page.context.cookies() == []  # the relay sets no cookie at all
    assert results["me"] != 200 and results["admin"] != 200
    # Nothing it sent acted as anyone: no mention marked read, nothing posted, no sign-in as mallory.
    assert len(emma.get("/api/v1/mentions")["mentions"]) == unread_before
    assert "forged" not in [m["content"] for m in bot.read("general", limit=200)["messages"]]
    page.goto(relay.url + "/")
    page.wait_for_selector(f"#whoami:has-text('{emma.name}')")  # still emma, never mallory
    forged = httpx.post(
        f"{relay.url}/app/session", json={"key": mallory.key}, headers={"Origin": attacker.url.rstrip("/")}
    )
    assert_error(forged, 403, "cross_origin")


def test_writes_from_another_origin_are_refused_on_every_route(relay: Relay) -> None:
    emma = relay.agent()
    key = {"Authorization": f"Bearer {emma.key}"}
    routes = [
        ("/api/v1/messages", {"channel": "general", "content": "x"}),
        ("/api/v1/channels", {"name": unique("c")}),
        ("/app/session", {"key": emma.key}),
        ("/app/admin", {"token": relay.admin_token}),
        ("/admin/keys", {"kind": "agent", "name": unique("a")}),
    ]
    for origin in ({"Origin": "http://127.0.0.1:5173"}, {"Sec-Fetch-Site": "same-site"}, {"Origin": "null"}):
        for path, body in routes:
            headers = {**key, "X-Admin-Token": relay.admin_token, **origin}
            assert_error(httpx.post(f"{relay.url}{path}", json=body, headers=headers), 403, "cross_origin")
    # The relay's own origin, and agents (no Origin at all), are served.
    own = {**key, "Origin": relay.url, "Sec-Fetch-Site": "same-origin"}
    assert httpx.post(f"{relay.url}/api/v1/messages", json=routes[0][1], headers=own).status_code == 201
    assert httpx.post(f"{relay.url}/api/v1/messages", json=routes[0][1], headers=key).status_code == 201


def test_the_operator_view_keeps_no_admin_token_and_its_session_is_short(relay: Relay) -> None:
    with httpx.Client(base_url=relay.url) as browser:
        assert_error(browser.post("/app/admin", json={"token": "wrong"}), 401, "invalid_admin_token")
        made = data(browser.post("/app/admin", json={"token": relay.admin_token}))
        assert made["session"].startswith("po_") and relay.admin_token not in made["session"]
        operator = {"X-Operator-Session": made["session"]}
        assert data(browser.get("/admin/stats", headers=operator))["agents"] >= 0
        # A person's session is not an operator's, nor the other way round.
        emma = relay.agent()
        person = data(browser.post("/app/session", json={"key": emma.key}))["session"]
        assert_error(browser.get("/admin/stats", headers={"X-Operator-Session": person}), 401, "session_ended")
        assert_error(browser.get("/api/v1/me", headers={"Authorization": f"Bearer {made['session']}"}), 401)
        # Signing out ends both at once.
        ended = browser.post("/app/signout", headers={"Authorization": f"Bearer {person}", **operator})
        assert data(ended)["ended"] == 2
        assert_error(browser.get("/admin/stats", headers=operator), 401, "session_ended")
        assert_error(browser.get("/api/v1/me", headers={"Authorization": f"Bearer {person}"}), 401, "session_ended")


def test_a_person_starts_at_the_sign_in_opens_channels_at_the_newest_and_answers_questions_in_place(
    relay: Relay, page: Any
) -> None:
    name = unique("emma")
    emma = Agent(relay, name, relay.mint(kind="agent", name=name, human=True))
    bot, friend = relay.agent(), relay.agent()
    # A first visit is a sign-in page, not an error.
    page.goto(relay.url + "/")
    page.wait_for_selector("#signin input[name=key]")
    assert page.inner_text("#signin-error") == ""
    channel = unique("busy")
    for i in range(60):
        bot.post(channel, f"line {i}")
    question = bot.post(channel, f"@{emma.name} can you approve the release?", expects_reply=emma.name)
    for i in range(60, 80):
        bot.post(channel, f"line {i}")
    emma.read(channel)
    _sign_in(page, relay, emma)
    # The channel opens at its newest message.
    page.click(f"#channels .channel[data-channel='{channel}']")
    page.wait_for_selector("#messages article:has-text('line 79')")
    at_bottom = "() => { const m = document.getElementById('messages');"
    page.wait_for_function(at_bottom + " return m.scrollHeight - m.scrollTop - m.clientHeight < 40; }")
    # A question under "Questions for me" opens in its thread with the reply set; the answer lands there.
    page.click(f"#questions article[data-id='{question['id']}']")
    page.wait_for_selector(f"#reply-to:has-text('message {question['id']}')")
    page.fill("#composer-text", "approved")
    page.press("#composer-text", "Control+Enter")
    page.wait_for_selector(f"article[data-id='{question['id']}'] .thread article:has-text('approved')")
    answer = [m for m in bot.read(channel)["messages"] if m["content"] == "approved"][0]
    assert answer["parent_message_id"] == question["id"]
    assert question["id"] not in [q["id"] for q in emma.get("/api/v1/board")["open_questions"]]
    # Inviting from the page: the friend is invited to a private channel, and joins to accept.
    private = data(emma.http.post("/api/v1/channels", json={"name": unique("plans"), "private": True}))["channel"]
    page.reload()
    page.wait_for_selector(f"#channels .channel[data-channel='{private['name']}']")
    page.click(f"#channels .channel[data-channel='{private['name']}']")
    page.fill("#invite-name", friend.name)
    page.click("#invite button[type=submit]")
    page.wait_for_selector(f"#notice:has-text('Invited {friend.name}')")
    assert [i["channel"] for i in friend.get("/api/v1/board")["invitations"]] == [private["name"]]


def test_the_operator_signs_in_with_the_admin_token_as_a_person_of_their_own(relay: Relay, page: Any) -> None:
    name, bot = unique("ops"), relay.agent()
    page.goto(relay.url + "/")
    page.fill("input[name=key]", relay.admin_token)
    page.fill("input[name=name]", name)
    page.click("#signin button[type=submit]")
    page.wait_for_selector(f"#whoami:has-text('{name}')")
    # The operator view works at once (an operator session came with the sign-in); the token is kept nowhere.
    page.click("#operator-open")
    page.wait_for_selector(f"#keys tr:has-text('{bot.name}')")
    stored = page.evaluate("JSON.stringify({...sessionStorage, ...localStorage}) + document.cookie")
    assert relay.admin_token not in stored
    # In the room they are a person of their own, made once: signing in again is the same person.
    assert {a["name"]: a["human"] for a in bot.get("/api/v1/agents")["agents"]}[name] is True
    with httpx.Client(base_url=relay.url) as browser:
        again = data(browser.post("/app/session", json={"key": relay.admin_token, "name": name}))
        assert again["name"] == name and again["operator"].startswith("po_")
        keys = [k for k in data(browser.get("/admin/keys", headers={"X-Operator-Session": again["operator"]}))["keys"]]
        assert sum(1 for k in keys if k["name"] == name) == 1
        # Never as an agent: the admin token does not sign in under an agent's name.
        refused = browser.post("/app/session", json={"key": relay.admin_token, "name": bot.name})
        assert_error(refused, 409, "name_taken")
        assert_error(browser.post("/app/session", json={"key": relay.admin_token}), 422)
