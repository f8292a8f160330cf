"""Keys and identity: mint, revoke, look up, and bind a machine key's names."""

from __future__ import annotations

import time

from parley.limits import NAME_RULE, is_valid_name
from parley.relay import access
from parley.relay.errors import Conflict, Forbidden, Unprocessable
from parley.relay.models import (
    AgentRow,
    KeyRecord,
)
from parley.relay.store.base import Row, Tx
from parley.relay.store.sql.channels import _welcome
from parley.relay.store.sql.common import (
    _key,
    _one,
)


async def create_key(
    tx: Tx,
    kind: str,
    *,
    machine: str | None = None,
    agent_name: str | None = None,
    channels: list[str] | None = None,
    expires_in: float | None = None,
    welcome: tuple[str, ...] = (),
    human: bool = False,
) -> tuple[KeyRecord, str]:
    """A new key and its secret (shown once). An agent key's agent is created with it, in the ``welcome``
    channels its key may use."""
    access.check_key_request(kind, machine, agent_name, channels)
    now = time.time()
    if kind == "machine":
        overlapping = await tx.one(
            "SELECT machine FROM keys WHERE machine <> :machine"
            " AND (:machine LIKE machine || '-%' OR machine LIKE :machine || '-%')",
            machine=machine,
        )
        if overlapping:
            raise Conflict(
                f"machine '{machine}' would share agent names with machine '{overlapping['machine']}'"
                " (names are '<machine>-<project>'); pick a machine name that neither starts the other",
                code="machine_name_overlaps",
            )
        active = await tx.one(
            "SELECT 1 FROM keys WHERE machine = :machine AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > :now)",
            machine=machine,
            now=now,
        )
        if active:
            raise Conflict(
                f"machine '{machine}' already has an active key; revoke it first to rotate", code="machine_key_exists"
            )
    else:
        row = await tx.one("SELECT key_id FROM agents WHERE name = :name", name=agent_name)
        if row is not None and row["key_id"] is not None:
            raise Conflict(f"'{agent_name}' is registered under a machine key; pick another name", code="name_taken")
        if row is None:
            created = await _one(
                tx,
                "INSERT INTO agents (name, created_at, human) VALUES (:name, :now, :human) RETURNING id",
                name=agent_name,
                now=now,
                human=human,
            )
            assert agent_name is not None
            allowed = [c for c in welcome if channels is None or c in channels]
            await _welcome(tx, created["id"], agent_name, tuple(allowed), now)
    secret, digest, prefix = access.new_key(kind)
    row = await _one(
        tx,
        "INSERT INTO keys (kind, key_hash, prefix, machine, agent_name, channels, created_at, expires_at)"
        " VALUES (:kind, :digest, :prefix, :machine, :agent_name, :channels, :now, :expires) RETURNING *",
        kind=kind,
        digest=digest,
        prefix=prefix,
        machine=machine,
        agent_name=agent_name,
        channels=tx.dialect.to_list(sorted(set(channels))) if channels is not None else None,
        now=now,
        expires=now + expires_in if expires_in is not None else None,
    )
    return _key(tx, row), secret


async def person_for_operator(tx: Tx, name: str, *, welcome: tuple[str, ...] = ()) -> str:
    """The hash of a live key of the person ``name`` (minted now if they have none): an operator who signs in to
    the dashboard with the admin token acts in the room as a person of their own. Never as an agent."""
    if not is_valid_name(name):
        raise Unprocessable(f"your name must be {NAME_RULE}", code="invalid_name")
    row = await tx.one("SELECT human, key_id FROM agents WHERE name = :name", name=name)
    if row is not None and (not row["human"] or row["key_id"] is not None):
        raise Conflict(f"'{name}' is an agent, not a person; sign in under your own name", code="name_taken")
    live = await tx.one(
        "SELECT key_hash FROM keys WHERE agent_name = :name AND kind = 'agent' AND revoked_at IS NULL"
        " AND (expires_at IS NULL OR expires_at > :now) ORDER BY id LIMIT 1",
        name=name,
        now=time.time(),
    )
    if live is not None:
        return str(live["key_hash"])
    _, secret = await create_key(tx, "agent", agent_name=name, welcome=welcome, human=True)
    return access.hash_key(secret)  # the secret itself is never shown: the admin token signs them in again


async def revoke(tx: Tx, target: str) -> list[tuple[int, str]]:
    """Revoke by key, key prefix, key id, agent name (its agent keys) or machine name; the revoked keys' ids
    and hashes."""
    rows = await tx.all(
        "UPDATE keys SET revoked_at = :now WHERE revoked_at IS NULL AND (key_hash = :digest OR prefix = :target"
        " OR agent_name = :target OR machine = :target OR CAST(id AS TEXT) = :target)"
        " RETURNING id, key_hash, agent_name",
        now=time.time(),
        digest=access.hash_key(target),
        target=target,
    )
    for row in rows:  # a revoked agent holds no question hostage: its claims end with its key
        await tx.run(
            "DELETE FROM claims WHERE agent_id IN (SELECT id FROM agents WHERE key_id = :key OR name = :name)",
            key=row["id"],
            name=row["agent_name"],
        )
    return [(row["id"], row["key_hash"]) for row in rows]


async def revoked_keys(tx: Tx) -> list[int]:
    return [row["id"] for row in await tx.all("SELECT id FROM keys WHERE revoked_at IS NOT NULL")]


async def list_keys(tx: Tx) -> list[KeyRecord]:
    return [_key(tx, row) for row in await tx.all("SELECT * FROM keys ORDER BY id")]


IDENTIFY = (
    "SELECT k.*, a.id AS a_id, a.name AS a_name, a.key_id AS a_key_id FROM keys k"
    " LEFT JOIN agents a ON a.name = coalesce(k.agent_name, :name) WHERE k.key_hash = :digest"
)


async def identify(tx: Tx, digest: str, name: str | None) -> tuple[KeyRecord, AgentRow | None] | None:
    """The key with this hash, and the agent it acts as (its own, or ``name`` for a machine key)."""
    row = await tx.one(IDENTIFY, name=name, digest=digest)
    return identified(tx, row) if row is not None else None


def identified(tx: Tx, row: Row) -> tuple[KeyRecord, AgentRow | None]:
    agent = AgentRow(id=row["a_id"], name=row["a_name"], key_id=row["a_key_id"]) if row["a_id"] is not None else None
    return _key(tx, row), agent


class TooManyAgents(Forbidden):
    code = "too_many_agents"


async def register(tx: Tx, key: KeyRecord, name: str, *, most: int, welcome: tuple[str, ...] = ()) -> AgentRow:
    """Bind a machine-key name on first use, up to ``most`` names a machine, starting in the ``welcome``
    channels; a name stays with its machine key (or its rotation)."""
    row = await tx.one("SELECT id, key_id FROM agents WHERE name = :name", name=name)
    now = time.time()
    if row is None:
        held = await _one(
            tx,
            "SELECT count(*) AS n FROM agents a JOIN keys k ON k.id = a.key_id WHERE k.machine = :machine",
            machine=key.machine,
        )
        if held["n"] >= most:
            raise TooManyAgents(
                f"machine '{key.machine}' already has {held['n']} agents, its limit; reuse one of their names"
                " (GET /api/v1/agents), or ask the operator to raise PARLEY_MAX_AGENTS_PER_MACHINE"
            )
        created = await _one(
            tx,
            "INSERT INTO agents (name, key_id, created_at) VALUES (:name, :key, :now) RETURNING id",
            name=name,
            key=key.id,
            now=now,
        )
        await _welcome(tx, created["id"], name, welcome, now)
        return AgentRow(id=created["id"], name=name, key_id=key.id)
    if row["key_id"] == key.id:
        return AgentRow(id=row["id"], name=name, key_id=key.id)
    if row["key_id"] is not None:
        old = _key(tx, await _one(tx, "SELECT * FROM keys WHERE id = :id", id=row["key_id"]))
        if old.machine == key.machine and not old.usable_at(now):
            await tx.run("UPDATE agents SET key_id = :key WHERE id = :id", key=key.id, id=row["id"])
            return AgentRow(id=row["id"], name=name, key_id=key.id)
    raise Forbidden(f"'{name}' is registered under another key; choose a different agent name", code="name_taken")
