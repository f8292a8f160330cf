"""Versioned SQLite migrations. Append new ones; never edit an applied one."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
CREATE TABLE keys (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('machine', 'agent')),
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    machine TEXT,
    agent_name TEXT,
    channels TEXT,
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL
);
CREATE INDEX keys_machine ON keys (machine) WHERE machine IS NOT NULL;
CREATE INDEX keys_agent_name ON keys (agent_name) WHERE agent_name IS NOT NULL;

CREATE TABLE agents (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    key_id INTEGER REFERENCES keys (id),
    created_at REAL NOT NULL,
    last_seen REAL
);

CREATE TABLE channels (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    private INTEGER NOT NULL DEFAULT 0,
    archived INTEGER NOT NULL DEFAULT 0,
    created_by INTEGER REFERENCES agents (id),
    created_at REAL NOT NULL
);

CREATE TABLE memberships (
    agent_id INTEGER NOT NULL REFERENCES agents (id),
    channel_id INTEGER NOT NULL REFERENCES channels (id),
    joined_at REAL NOT NULL,
    last_read_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, channel_id)
) WITHOUT ROWID;
CREATE INDEX memberships_channel ON memberships (channel_id, agent_id);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id INTEGER NOT NULL REFERENCES channels (id),
    author_id INTEGER NOT NULL REFERENCES agents (id),
    content TEXT NOT NULL,
    metadata TEXT,
    parent_id INTEGER REFERENCES messages (id),
    expects_reply TEXT NOT NULL DEFAULT 'none',
    client_msg_id TEXT,
    mentions TEXT NOT NULL DEFAULT '',
    answered_by INTEGER REFERENCES agents (id),
    created_at REAL NOT NULL
);
CREATE INDEX messages_channel ON messages (channel_id, id);
CREATE UNIQUE INDEX messages_client_msg_id ON messages (author_id, client_msg_id) WHERE client_msg_id IS NOT NULL;
CREATE INDEX messages_open ON messages (expects_reply, id) WHERE expects_reply != 'none' AND answered_by IS NULL;
CREATE INDEX messages_parent ON messages (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE claims (
    message_id INTEGER PRIMARY KEY REFERENCES messages (id),
    agent_id INTEGER NOT NULL REFERENCES agents (id),
    claimed_at REAL NOT NULL,
    expires_at REAL NOT NULL
);

CREATE TABLE mentions (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    agent_id INTEGER NOT NULL REFERENCES agents (id),
    read INTEGER NOT NULL DEFAULT 0,
    UNIQUE (message_id, agent_id)
);
CREATE INDEX mentions_agent ON mentions (agent_id, read, id);

CREATE TABLE files (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    channel_id INTEGER NOT NULL REFERENCES channels (id),
    uploader_id INTEGER NOT NULL REFERENCES agents (id),
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    message_id INTEGER REFERENCES messages (id),
    created_at REAL NOT NULL
);

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    content, content='messages', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
END;
""",
    ),
    (
        2,
        """
-- People sign in to the dashboard with keys of their own: they are agents marked human.
ALTER TABLE agents ADD COLUMN human INTEGER NOT NULL DEFAULT 0;
""",
    ),
    (
        3,
        """
-- Sealed channels (end-to-end encrypted, fixed at creation): their messages keep an envelope, never content.
ALTER TABLE channels ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN sealed TEXT;
""",
    ),
    (
        4,
        """
-- Adding an agent to a channel invites it: it is a member only once it joins (nobody is put in a channel
-- without consent); an inviter has a bounded number of invitations unanswered.
CREATE TABLE invitations (
    agent_id INTEGER NOT NULL REFERENCES agents (id),
    channel_id INTEGER NOT NULL REFERENCES channels (id),
    inviter_id INTEGER NOT NULL REFERENCES agents (id),
    created_at REAL NOT NULL,
    PRIMARY KEY (agent_id, channel_id)
);
CREATE INDEX invitations_inviter ON invitations (inviter_id);
""",
    ),
    (
        5,
        """
-- The dashboard's sessions: a signed-in page holds an opaque token (stored here as its hash), never the key
-- or the admin token; each expires, ends at sign-out, and ends with the key (or admin token) it stands for.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    agent_name TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
""",
    ),
]
