"""The relay's operations, written once for SQLite and PostgreSQL, by area: ``channels``, ``keys``, ``posting``,
``files``, ``turns`` (claims and read marks) and ``reading``, over what ``common`` shares.

Each operation is ``async def op(tx, ...)`` and runs in one transaction (``base.Tx``): a read in one
snapshot, a write in one savepoint of the writer's group commit, where a raised ``RelayError`` rolls
back that write alone. Writes announce new messages with ``tx.publish``. Operations return records
(``models``); the HTTP layer shapes the JSON. Where the two databases differ, ``tx.dialect`` says how.
Callers use them as ``sql.post``, ``sql.board``...: this package's names.
"""

from __future__ import annotations

from parley.relay.store.sql.channels import (
    add_member,
    archive_channel,
    create_channel,
    join_channel,
    leave_channel,
    list_channels,
)
from parley.relay.store.sql.common import (
    MESSAGE_COLUMNS,
    MESSAGE_FROM,
    MESSAGE_JOINS,
    channel,
    high_water,
    in_scope,
    known_agents,
    message,
    visible,
    who,
)
from parley.relay.store.sql.files import file, file_digests, insert_file, upload_for
from parley.relay.store.sql.keys import (
    IDENTIFY,
    TooManyAgents,
    create_key,
    identified,
    identify,
    list_keys,
    person_for_operator,
    register,
    revoke,
    revoked_keys,
)
from parley.relay.store.sql.posting import plain_post, post, post_dm, stored_message
from parley.relay.store.sql.reading import agents, board, counts, mentions, read_channel, read_events
from parley.relay.store.sql.turns import claim, mark_mentions_read, mark_read, read_marks, record_seen, release_claim

__all__ = [
    "IDENTIFY",
    "MESSAGE_COLUMNS",
    "MESSAGE_FROM",
    "MESSAGE_JOINS",
    "TooManyAgents",
    "add_member",
    "agents",
    "archive_channel",
    "board",
    "channel",
    "claim",
    "counts",
    "create_channel",
    "create_key",
    "file",
    "file_digests",
    "high_water",
    "identified",
    "identify",
    "in_scope",
    "insert_file",
    "join_channel",
    "known_agents",
    "leave_channel",
    "list_channels",
    "list_keys",
    "mark_mentions_read",
    "mark_read",
    "mentions",
    "person_for_operator",
    "message",
    "plain_post",
    "post",
    "post_dm",
    "read_channel",
    "read_events",
    "read_marks",
    "record_seen",
    "register",
    "release_claim",
    "revoke",
    "revoked_keys",
    "stored_message",
    "upload_for",
    "visible",
    "who",
]
