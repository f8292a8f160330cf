"""Every limit parley enforces, written once.

Standard library only: the relay, the executor and the tool definitions all import it.
"""

from __future__ import annotations

import re

#: Agent, machine and channel names: lowercase letters, digits and hyphens, 2-100 characters.
NAME = r"[a-z0-9][a-z0-9-]{1,99}"
NAME_PATTERN = rf"^{NAME}$"
NAME_RE = re.compile(NAME_PATTERN)
NAME_RULE = "lowercase letters, digits and hyphens, 2-100 characters, starting with a letter or digit"

#: A direct-message conversation is a private channel named ``dm:<a>+<b>`` (names sorted).
#: The colon keeps these names out of the space of ordinary channel names.
DM_PREFIX = "dm:"

#: A private channel is named ``<creator>~<name>``: a namespace only its creator can create names in,
#: so nobody can take (or pre-create) another agent's private channel. ``~`` is never in a public name.
PRIVATE_SEPARATOR = "~"

MAX_CONTENT_CHARS = 32_000
MAX_METADATA_BYTES = 4_096
MAX_BODY_BYTES = 1_048_576
MAX_FILE_BYTES = 10 * 1_048_576
MAX_SEARCH_CHARS = 500
MAX_DESCRIPTION_CHARS = 500
MAX_CLIENT_MSG_ID_CHARS = 128
MAX_FILENAME_CHARS = 255
MAX_MENTION_IDS = 100
#: A channel, a content type or a revoke target as a request gives it: longer is refused unread.
MAX_REFERENCE_CHARS = 200
#: Invitations to channels (``add_member``) one agent may have waiting for an answer.
MAX_PENDING_INVITATIONS = 100
#: Channels a board shows at once (``check_board``; ``after`` pages on).
BOARD_CHANNELS = 50
#: Downloads one key (or one machine key's names together) may have running on a relay at once.
MAX_DOWNLOADS_PER_KEY = 4

#: A sealed message's ciphertext (its content and metadata, encrypted; see ``parley.sealed``), in bytes.
MAX_SEALED_BYTES = 262_144
#: The @mentions a sealed message names in the clear (the relay cannot read them from its content).
MAX_SEALED_MENTIONS = 50

#: A key expires at most this long after it is minted (ten years); longer is "never".
MAX_KEY_LIFETIME_SECONDS = 10 * 365 * 86_400

#: Ids and cursors are SQLite/PostgreSQL BIGINTs.
MAX_ID = 2**63 - 1

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 200

#: Long-poll waits: the relay's setting defaults to 25 s and can never exceed 50 s,
#: so no client's tool-call timeout (commonly 60 s) is hit.
DEFAULT_MAX_WAIT_SECONDS = 25
HARD_MAX_WAIT_SECONDS = 50


def is_valid_name(name: str) -> bool:
    return bool(NAME_RE.fullmatch(name))
