"""The OpenAPI document is one a generator can use: valid, typed answers for every route (the one error shape
and the 201s included), security schemes, operation ids equal to the tool names, and /docs that needs no
network. A client generated from it by openapi-python-client sends and reads back a message."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from conftest import Relay, data, unique
from openapi_spec_validator import validate

from parley.tool_definitions.catalog import TOOLS


def _spec(relay: Relay) -> dict[str, Any]:
    return dict(httpx.get(f"{relay.url}/openapi.json").json())


def test_the_document_is_valid_with_schemes_types_and_tool_named_operations(relay: Relay) -> None:
    spec = _spec(relay)
    validate(spec)
    assert set(spec["components"]["securitySchemes"]) == {"bearer", "agentKey", "agentName", "adminToken"}
    operations = {(method.upper(), path): op for path, ops in spec["paths"].items() for method, op in ops.items()}
    for tool in TOOLS:
        assert operations[(tool.method, tool.path)]["operationId"] == tool.name
    for (method, path), op in operations.items():
        assert op["security"], path
        answers = op["responses"]
        assert answers["4XX"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        assert "422" not in answers  # FastAPI's own validation shape is not what the relay sends
        success = [code for code in answers if code.startswith("2")]
        assert success and all("content" in answers[code] for code in success), (method, path)
    assert operations[("POST", "/api/v1/messages")]["responses"].keys() >= {"201", "200"}
    upload = operations[("POST", "/api/v1/files")]["requestBody"]["content"]
    assert set(upload) == {"application/json", "multipart/form-data", "application/octet-stream"}


def test_live_answers_match_the_document(relay: Relay) -> None:
    """A conversation's real answers, each checked against the schema its route declares."""
    schema = schemathesis.openapi.from_dict(_spec(relay))
    alice, bob = relay.agent(), relay.agent()
    channel = unique("c")

    def check(response: httpx.Response) -> Any:
        request = response.request
        route = _route(schema, request.method, request.url.path)
        schema[route][request.method].validate_response(response)
        return response.json()

    question = check(
        alice.http.post("/api/v1/messages", json={"channel": channel, "content": "who?", "expects_reply": "anyone"})
    )["data"]["message"]
    check(bob.http.get("/api/v1/messages", params={"channel": channel}))
    check(bob.http.post(f"/api/v1/messages/{question['id']}/claim"))
    check(bob.http.post(f"/api/v1/messages/{question['id']}/release", json={"reason": "not me"}))
    check(bob.http.post("/api/v1/messages", json={"channel": f"@{alice.name}", "content": f"@{alice.name} hi"}))
    for path, params in (
        ("/api/v1/me", {}),
        ("/api/v1/board", {}),
        ("/api/v1/channels", {}),
        ("/api/v1/events", {"since": 0}),
        ("/api/v1/mentions", {"mark_read": "true"}),
        ("/api/v1/search", {"q": "who"}),
        ("/api/v1/agents", {}),
        ("/api/v1/dm", {"agent": bob.name}),
    ):
        check(alice.http.get(path, params=params))
    check(alice.http.post("/api/v1/channels", json={"name": unique("p"), "private": True}))
    check(alice.http.post(f"/api/v1/channels/{channel}/leave"))
    check(alice.http.post("/api/v1/files", json={"channel": channel, "filename": "a.txt", "content": "x"}))
    check(alice.http.get("/api/v1/messages", params={"channel": unique("none")}))  # the error shape
    with relay.admin() as admin:
        check(admin.get("/admin/keys"))
        check(admin.get("/admin/stats"))


def _route(schema: Any, method: str, path: str) -> str:
    for template in schema.raw_schema["paths"]:
        pattern = "^" + re.sub(r"{[^}]+}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in schema.raw_schema["paths"][template]:
            return str(template)
    raise AssertionError(f"no route for {method} {path}")


def test_docs_need_no_network(relay: Relay) -> None:
    page = httpx.get(f"{relay.url}/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    for asset in assets:
        body = httpx.get(f"{relay.url}{asset}")
        assert body.status_code == 200
        assert not re.search(r"https?://", body.text), asset  # nothing from elsewhere
    assert "innerHTML" not in httpx.get(f"{relay.url}/docs.js").text  # the document's text is never HTML


def test_a_generated_client_sends_and_reads_back(relay: Relay, tmp_path: Path) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(_spec(relay)))
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--output-path",
            str(tmp_path / "client"),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    alice = relay.agent()
    channel = unique("gen")
    program = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
from client import AuthenticatedClient
from client.api.default import read_messages, send_message
from client.models import PostMessage

api = AuthenticatedClient(base_url={relay.url!r}, token={alice.key!r})
sent = send_message.sync_detailed(client=api, body=PostMessage(channel={channel!r}, content="from a generated client"))
assert sent.status_code == 201, sent.content
page = read_messages.sync(client=api, channel={channel!r})
print(page.data.messages[-1].content, page.data.messages[-1].author)
"""
    ran = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.split() == ["from", "a", "generated", "client", alice.name]
    assert data(alice.http.get("/api/v1/messages", params={"channel": channel}))["messages"][0]["author"] == alice.name


def test_the_client_records_are_the_wire_contract_of_the_openapi_document(relay: Relay) -> None:
    """Each typed record of ``parley.client`` carries exactly the fields the relay documents for its answer,
    but for the differences listed here: a field added on one side only fails this test."""
    import dataclasses

    from parley.client import records as r

    schemas = httpx.get(f"{relay.url}/openapi.json").json()["components"]["schemas"]
    message = set(schemas["Message"]["properties"])
    # record, its schema (or the properties it stands for), the record's names for renamed properties, and the
    # documented properties the record does not carry (with why).
    contract: list[tuple[type, set[str], dict[str, str], set[str]]] = [
        (r.Message, message, {}, {"timestamp"}),  # AgentChat's name for created_at
        (r.Page, set(schemas["Page"]["properties"]), {}, set()),
        (r.Posted, set(schemas["Posted"]["properties"]), {}, set()),
        (r.Mention, set(schemas["Mention"]["properties"]), {"author": "from"}, set()),
        (r.Unread, set(schemas["Unread"]["properties"]), {}, set()),
        (r.Board, set(schemas["Board"]["properties"]), {}, set()),
        (r.Invitation, set(schemas["Invitation"]["properties"]), {"inviter": "from"}, set()),
        (r.Me, set(schemas["Me"]["properties"]), {}, set()),
        (r.Claim, set(schemas["Claimed"]["properties"]), {}, {"won"}),  # always true in an answer
        (r.Released, set(schemas["Released"]["properties"]), {}, set()),
        (r.Agent, set(schemas["Seen"]["properties"]), {}, set()),
        (r.FileInfo, set(schemas["File"]["properties"]), {}, set()),
        (r.Question, message | set(schemas["Question"]["properties"]), {}, {"timestamp"}),
        (r.Hit, message | set(schemas["Hit"]["properties"]), {}, {"timestamp"}),
        (r.Key, set(schemas["Key"]["properties"]) | {"secret"}, {}, set()),  # secret: the minted key, once
        (r.Channel, set(schemas["ListedChannel"]["properties"]) | {"key_held"}, {}, set()),  # key_held: the keyring's
    ]
    for record, documented, renamed, not_carried in contract:
        fields = {renamed.get(f.name, f.name) for f in dataclasses.fields(record)}
        if "message" in fields and record in (r.Question, r.Hit):  # the message's properties, nested in the record
            fields = (fields - {"message"}) | {renamed.get(f.name, f.name) for f in dataclasses.fields(r.Message)}
        expected = documented - not_carried
        assert fields == expected, (record.__name__, fields ^ expected)


def test_the_guide_describes_every_endpoint_in_whole_sentences(relay: Relay) -> None:
    endpoints = httpx.get(f"{relay.url}/", headers={"Accept": "application/json"}).json()["endpoints"]
    assert len(endpoints) >= 20
    for endpoint in endpoints:
        assert endpoint["what"].rstrip().endswith((".", ")", "?", "}")), endpoint
