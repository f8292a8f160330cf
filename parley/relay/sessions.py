"""The dashboard's sessions: what a signed-in page holds instead of a key or the admin token.

Nothing a browser sends by itself may act as the person: cookies are shared by every port of a host (a dev
server an agent started on 127.0.0.1 receives the relay's), and a page of another origin can make the browser
send them. So the page keeps an opaque session token in its own origin's storage and sends it as a header;
no cookie is set at all. A session is stored as the SHA-256 of its token (with the hash of the key it stands
for), expires, ends at sign-out, and ends with its key. The admin token is never kept by the browser: it is
exchanged for a short-lived operator session (ended too when the admin token changes).
"""

from __future__ import annotations

import secrets
import time
from typing import Literal, NamedTuple

from parley.relay.store.base import Tx

Kind = Literal["person", "operator"]
PREFIXES: dict[Kind, str] = {"person": "ps_", "operator": "po_"}
#: How long a signed-in page and an operator view last without signing in again.
LIFETIMES: dict[Kind, float] = {"person": 12 * 3600.0, "operator": 30 * 60.0}
#: The header an operator view sends its session in (a person's goes as ``Authorization: Bearer``).
OPERATOR_HEADER = "x-operator-session"


class Session(NamedTuple):
    #: The hash of the key a person signed in with, or of the admin token an operator gave.
    key_hash: str
    agent_name: str | None


def is_session(secret: str) -> bool:
    return secret.startswith(tuple(PREFIXES.values()))


def new_token(kind: Kind) -> str:
    return PREFIXES[kind] + secrets.token_urlsafe(32)


async def start(tx: Tx, digest: str, kind: Kind, key_hash: str, agent_name: str | None) -> float:
    """Record a session by its token's hash; when it expires. Sessions already expired are swept here."""
    now = time.time()
    await tx.run("DELETE FROM sessions WHERE expires_at < :now", now=now)
    expires = now + LIFETIMES[kind]
    await tx.run(
        "INSERT INTO sessions (token_hash, kind, key_hash, agent_name, created_at, expires_at)"
        " VALUES (:digest, :kind, :key_hash, :name, :now, :expires)",
        digest=digest,
        kind=kind,
        key_hash=key_hash,
        name=agent_name,
        now=now,
        expires=expires,
    )
    return expires


async def find(tx: Tx, digest: str, kind: Kind) -> Session | None:
    """The live session with this token hash, if any."""
    row = await tx.one(
        "SELECT key_hash, agent_name FROM sessions WHERE token_hash = :digest AND kind = :kind AND expires_at > :now",
        digest=digest,
        kind=kind,
        now=time.time(),
    )
    return Session(row["key_hash"], row["agent_name"]) if row is not None else None


async def end(tx: Tx, digests: list[str]) -> int:
    """Sign out: these sessions end now."""
    in_list = tx.dialect.in_list("token_hash", "digests")
    return await tx.run(f"DELETE FROM sessions WHERE {in_list}", digests=tx.dialect.to_list(digests))
