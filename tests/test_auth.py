"""Keys: shown once, hashed, expiring, revocable at once; nobody acts under another agent's name."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from conftest import Relay, assert_error, data, eventually, unique


def test_missing_and_unknown_keys_are_refused(relay: Relay) -> None:
    with httpx.Client(base_url=relay.url) as anonymous:
        assert_error(anonymous.get("/api/v1/board"), 401, "missing_key")
        assert_error(anonymous.get("/api/v1/board", headers={"Authorization": "Bearer pa_nope"}), 401, "invalid_key")
        assert_error(
            anonymous.get("/api/v1/board", headers={"Authorization": "Basic abc"}), 401, "invalid_authorization"
        )


def test_keys_are_stored_only_as_sha256(relay: Relay) -> None:
    alice = relay.agent()
    stored = [row[0] for row in relay.query("SELECT key_hash FROM keys")]
    assert alice.key not in stored
    import hashlib

    assert hashlib.sha256(alice.key.encode()).hexdigest() in stored


def test_revoke_takes_effect_on_the_next_request(relay: Relay) -> None:
    alice = relay.agent()
    data(alice.http.get("/api/v1/board"))  # cached as valid
    with relay.admin() as admin:
        assert data(admin.post("/admin/keys/revoke", json={"target": alice.name}))["revoked"] == 1
    assert_error(alice.http.get("/api/v1/board"), 401, "key_revoked")


def test_expired_key_is_refused(relay: Relay) -> None:
    alice = relay.agent(expires="1s")
    data(alice.http.get("/api/v1/board"))
    eventually(lambda: alice.http.get("/api/v1/board").status_code == 401, timeout=5, what="key expiry")
    assert_error(alice.http.get("/api/v1/board"), 401, "key_expired")


def test_agent_key_cannot_act_under_another_name(relay: Relay) -> None:
    alice, bob = relay.agent(), relay.agent()
    posing = relay.client(alice.key, name=bob.name)
    assert_error(posing.post("/api/v1/messages", json={"channel": unique("c"), "content": "hi"}), 403, "impersonation")
    same = relay.client(alice.key, name=alice.name)
    assert data(same.get("/api/v1/me"))["name"] == alice.name


def test_machine_key_registers_names_on_first_use(relay: Relay) -> None:
    machine = unique("m")
    key = relay.mint(kind="machine", machine=machine)
    with httpx.Client(base_url=relay.url) as http:
        headers = {"x-agent-api-key": key, "x-agent-name": f"{machine}-proj"}
        assert data(http.get("/api/v1/me", headers=headers))["name"] == f"{machine}-proj"
        # The same header set works with Bearer too.
        bearer = {"Authorization": f"Bearer {key}", "x-agent-name": f"{machine}-other"}
        assert data(http.get("/api/v1/me", headers=bearer))["name"] == f"{machine}-other"
        # A name must carry the machine's prefix, be valid, and be given.
        assert_error(
            http.get("/api/v1/me", headers={"x-agent-api-key": key, "x-agent-name": "someone-else"}),
            403,
            "impersonation",
        )
        assert_error(
            http.get("/api/v1/me", headers={"x-agent-api-key": key, "x-agent-name": "Bad Name"}),
            400,
            "invalid_agent_name",
        )
        assert_error(http.get("/api/v1/me", headers={"x-agent-api-key": key}), 400, "agent_name_required")


def test_a_name_stays_with_its_machine_key(relay: Relay) -> None:
    machine = unique("m")
    first = relay.mint(kind="machine", machine=machine)
    with httpx.Client(base_url=relay.url) as http:
        name = f"{machine}-proj"
        data(http.get("/api/v1/me", headers={"x-agent-api-key": first, "x-agent-name": name}))
        # A second active key for the same machine is refused; rotation means revoking first.
        with relay.admin() as admin:
            assert_error(
                admin.post("/admin/keys", json={"kind": "machine", "machine": machine}), 409, "machine_key_exists"
            )
        # An invited agent cannot take a machine-registered name, and a machine key cannot take an invited one.
        with relay.admin() as admin:
            assert_error(admin.post("/admin/keys", json={"kind": "agent", "name": name}), 409, "name_taken")
        invited = relay.agent(f"{machine}-invited")
        assert_error(
            http.get("/api/v1/me", headers={"x-agent-api-key": first, "x-agent-name": invited.name}), 403, "name_taken"
        )
        # After a rotation (revoke, then a new key for the machine) the names follow the machine.
        with relay.admin() as admin:
            data(admin.post("/admin/keys/revoke", json={"target": first}))
        second = relay.mint(kind="machine", machine=machine)
        assert data(http.get("/api/v1/me", headers={"x-agent-api-key": second, "x-agent-name": name}))["name"] == name
        # Another machine's key can never use it.
        other_machine = unique("m")
        other = relay.mint(kind="machine", machine=other_machine)
        assert_error(
            http.get("/api/v1/me", headers={"x-agent-api-key": other, "x-agent-name": name}), 403, "impersonation"
        )


def test_admin_routes_need_the_admin_token(relay: Relay) -> None:
    alice = relay.agent()
    with httpx.Client(base_url=relay.url) as http:
        assert_error(http.get("/admin/keys"), 401, "invalid_admin_token")
        assert_error(http.get("/admin/keys", headers={"X-Admin-Token": "wrong"}), 401, "invalid_admin_token")
        assert_error(
            http.get("/admin/keys", headers={"Authorization": f"Bearer {alice.key}"}), 401, "invalid_admin_token"
        )
    with relay.admin() as admin:
        keys = data(admin.get("/admin/keys"))["keys"]
        assert any(k["name"] == alice.name and k["kind"] == "agent" for k in keys)
        assert all("key" not in k and "key_hash" not in k for k in keys)
        assert_error(
            admin.post("/admin/keys", json={"kind": "agent", "name": "x", "expires": "1h"}), 422, "invalid_name"
        )
        assert_error(
            admin.post("/admin/keys", json={"kind": "agent", "name": unique(), "expires": "soon"}),
            422,
            "invalid_expires",
        )
        assert_error(admin.post("/admin/keys", json={"kind": "machine", "name": unique()}), 422, "invalid_key_request")


def test_admin_token_file_is_private(relay: Relay) -> None:
    mode = relay.settings.admin_token_path.stat().st_mode & 0o777
    assert mode == 0o600
    assert relay.settings.admin_token_path.read_text().strip() == relay.admin_token


def test_a_machine_key_has_a_bounded_number_of_names_and_one_shared_budget(fresh_relay: Callable[..., Relay]) -> None:
    relay = fresh_relay(max_agents_per_machine=3, write_burst=4, write_rate=0.01)
    machine = unique("m")
    key = relay.mint(kind="machine", machine=machine)
    with relay.client(key) as http:

        def me(name: str) -> httpx.Response:
            return http.get("/api/v1/me", headers={"x-agent-name": name})

        assert [data(me(f"{machine}-p{i}"))["name"] for i in range(3)] == [f"{machine}-p{i}" for i in range(3)]
        for i in range(3, 30):  # a fresh name per request gets nowhere, and stores nothing
            assert_error(me(f"{machine}-p{i}"), 403, "too_many_agents")
        assert data(me(f"{machine}-p0"))["name"] == f"{machine}-p0"  # the names it has keep working
        assert relay.query(f"SELECT count(*) FROM agents WHERE name LIKE '{machine}-%'")[0][0] == 3

        # Writes from all its names come out of one bucket.
        statuses = [
            http.post(
                "/api/v1/messages",
                json={"channel": unique("c"), "content": "hi"},
                headers={"x-agent-name": f"{machine}-p{i % 3}"},
            ).status_code
            for i in range(5)
        ]
        assert statuses == [201, 201, 201, 201, 429]


def test_machine_namespaces_cannot_overlap_or_be_empty(relay: Relay) -> None:
    machine, longer = unique("m"), unique("m")
    key = relay.mint(kind="machine", machine=machine)
    relay.mint(kind="machine", machine=f"{longer}-ops")
    with relay.admin() as admin:
        for overlapping in (f"{machine}-ops", longer):  # 'dev' then 'dev-ops', or 'dev-ops' then 'dev'
            refused = admin.post("/admin/keys", json={"kind": "machine", "machine": overlapping})
            assert_error(refused, 409, "machine_name_overlaps")
    with relay.client(key) as http:
        assert_error(http.get("/api/v1/me", headers={"x-agent-name": f"{machine}-"}), 400, "invalid_agent_name")
