"""The store interface: everything the HTTP layer asks of storage, and nothing about how.

Semantics every store keeps (one shared test suite holds them to it):

- Message ids are one increasing integer across the relay; ``Page.cursor`` passed back as
  ``since`` never skips a message, even one committed while the read ran.
- Visibility: a public channel is visible to every agent; a private one (DMs included) to its
  members; a channel-limited key reaches only its channels (and its own DMs).
- ``post`` with a ``client_msg_id`` already used by the same author returns the original
  message with ``replayed=True`` and stores nothing.
- ``claim`` has exactly one winner under any concurrency.
- After each commit the store calls ``on_publish`` with the new messages, in id order, on the
  event loop: that is how parked waits wake without querying.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, Protocol

from parley.relay.models import Caller, Claim, KeyRecord, Page, Posted, StoredFile
from parley.relay.ratelimit import Budget


class Subscriber(Protocol):
    """Where a store announces commits (the hub)."""

    def publish(self, posted: Iterable[Posted]) -> None: ...
    def resync(self, high_water: int) -> None: ...


class Store(Protocol):
    async def start(self, subscriber: Subscriber) -> None: ...
    async def close(self) -> None: ...

    # -- rate limits ------------------------------------------------------------------------
    async def spend(self, agent_id: int, kind: Literal["read", "write"]) -> Budget:
        """Take one token from the agent's bucket, or raise RateLimited with an accurate retry_after."""
        ...

    # -- keys and identity -----------------------------------------------------------------
    async def create_key(
        self,
        kind: str,
        *,
        machine: str | None = None,
        agent_name: str | None = None,
        channels: list[str] | None = None,
        expires_in: float | None = None,
    ) -> tuple[KeyRecord, str]: ...
    async def list_keys(self) -> list[KeyRecord]: ...
    async def revoke(self, target: str) -> int: ...
    async def authenticate(self, secret: str, agent_name: str | None) -> Caller: ...

    # -- channels --------------------------------------------------------------------------
    async def list_channels(self, caller: Caller, type_: str | None) -> list[dict[str, Any]]: ...
    async def create_channel(
        self, caller: Caller, name: str, description: str, private: bool
    ) -> tuple[dict[str, Any], bool]: ...
    async def add_member(self, caller: Caller, channel: str, agent: str) -> dict[str, Any]: ...
    async def archive_channel(self, channel: str) -> dict[str, Any]: ...

    # -- messages --------------------------------------------------------------------------
    async def post(
        self,
        caller: Caller,
        channel: str,
        content: str,
        *,
        parent_id: int | None,
        metadata: dict[str, Any] | None,
        expects_reply: str | None,
        client_msg_id: str | None,
    ) -> Posted: ...
    async def post_dm(
        self,
        caller: Caller,
        target: str,
        content: str,
        *,
        parent_id: int | None,
        metadata: dict[str, Any] | None,
        expects_reply: str | None,
        client_msg_id: str | None,
    ) -> Posted: ...
    async def read_channel(
        self, caller: Caller, channel: str, *, limit: int, before: int | None, since: int | None
    ) -> Page: ...
    async def read_events(
        self, caller: Caller, *, since: int | None, limit: int, channel: str | None = None
    ) -> Page: ...
    async def mark_read(self, caller: Caller, page: Page) -> None: ...
    async def claim(self, caller: Caller, message_id: int) -> Claim: ...
    async def board(self, caller: Caller) -> dict[str, Any]: ...
    async def mentions(self, caller: Caller, *, unread_only: bool, limit: int) -> list[dict[str, Any]]: ...
    async def mark_mentions_read(self, caller: Caller, mention_ids: list[int]) -> int: ...
    async def search(self, caller: Caller, query: str, *, channel: str | None, limit: int) -> list[dict[str, Any]]: ...
    async def agents(self, caller: Caller, *, channel: str | None) -> list[dict[str, Any]]: ...
    async def record_seen(self, seen: dict[int, float]) -> None: ...

    # -- files -----------------------------------------------------------------------------
    async def save_file(
        self,
        caller: Caller,
        channel: str,
        filename: str,
        content_type: str,
        data: bytes,
        announce: str | None,
    ) -> tuple[StoredFile, Posted | None]: ...
    async def open_file(self, caller: Caller, file_id: str) -> tuple[StoredFile, bytes]: ...

    async def stats(self) -> dict[str, Any]: ...
