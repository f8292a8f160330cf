"""The store interfaces: what the HTTP layer asks of storage, and what an operation asks of a database.

Semantics every store keeps (one shared test suite holds them to it):

- Message ids are one increasing integer across the relay; ``Page.cursor`` passed back as
  ``since`` never skips a message, even one committed while the read ran.
- Visibility: a public channel is visible to every agent; a private one (DMs included) to its
  members; a channel-limited key reaches only its channels (and its own DMs).
- A post with a ``client_msg_id`` already used by the same author returns the original message
  with ``replayed=True`` and stores nothing.
- A claim has exactly one winner under any concurrency.
- After each commit the store hands the subscriber what the commit's writes published, in id
  order, on the event loop: that is how parked waits wake without querying.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar

from parley.relay.models import Caller, Posted, SearchHit, StoredFile, Upload
from parley.relay.ratelimit import Budget
from parley.relay.store.dialect import Dialect

#: A download is read from the store, and sent, this much at a time.
FILE_CHUNK_BYTES = 256 * 1024

P = ParamSpec("P")
T = TypeVar("T")
Row = Mapping[str, Any]


class Tx(Protocol):
    """One transaction: a read's snapshot, or a write's savepoint inside the writer's group commit.

    SQL uses ``:name`` parameters. SQLite's methods never suspend, so its writer thread runs an
    operation to its end without an event loop."""

    dialect: Dialect

    async def one(self, sql: str, **params: Any) -> Row | None: ...
    async def all(self, sql: str, **params: Any) -> Sequence[Row]: ...
    async def run(self, sql: str, **params: Any) -> int:
        """Execute; the number of rows changed."""
        ...

    def publish(self, posted: Posted) -> None:
        """Announce a new message once this write commits."""
        ...


#: An operation of ``sql``: runs in one transaction.
Op = Callable[Concatenate[Tx, P], Coroutine[Any, Any, T]]


class Subscriber(Protocol):
    """Where a store announces commits (the hub)."""

    def publish(self, posted: Iterable[Posted]) -> None: ...
    def resync(self, high_water: int) -> None: ...
    def revoke(self, key_ids: Iterable[int]) -> None: ...


class Store(Protocol):
    """Runs the relay's operations (``sql``), and does what differs between databases."""

    async def start(self, subscriber: Subscriber) -> None: ...
    async def close(self) -> None: ...

    async def read(self, op: Op[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``op`` on one snapshot; never blocks the event loop."""
        ...

    async def write(self, op: Op[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``op`` in the writer's next group commit; returns once it is durable."""
        ...

    async def authenticate(self, digest: str, agent_name: str | None) -> Caller:
        """The caller a key (by its hash, ``access.hash_key``) makes, acting as ``agent_name`` if it may."""
        ...

    async def revoke(self, target: str) -> int: ...
    async def admit(self, digest: str, agent_name: str | None, kind: Literal["read", "write"]) -> tuple[Caller, Budget]:
        """``authenticate`` and ``spend``, in one round trip where the store can."""
        ...

    async def spend(self, bucket: int, kind: Literal["read", "write"]) -> Budget:
        """Take one token from the bucket (``Caller.bucket``), or raise RateLimited with an accurate retry_after."""
        ...

    async def search(self, caller: Caller, query: str, *, channel: str | None, limit: int) -> list[SearchHit]: ...
    async def save_file(self, caller: Caller, channel: str, upload: Upload) -> StoredFile:
        """Check the upload completely (``sql.upload_for``), then keep its bytes and its record; a refused or
        failed upload leaves nothing behind."""
        ...

    async def open_file(self, caller: Caller, file_id: str) -> tuple[StoredFile, AsyncIterator[bytes]]:
        """A file the caller may see, and its bytes in chunks of at most ``FILE_CHUNK_BYTES`` (never whole)."""
        ...

    async def stats(self) -> dict[str, Any]: ...
