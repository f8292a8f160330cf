"""Versioned PostgreSQL migrations, applied under an advisory lock so replicas can start together."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
CREATE TABLE keys (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('machine', 'agent')),
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    machine TEXT,
    agent_name TEXT,
    channels TEXT[],
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION
);
CREATE INDEX keys_machine ON keys (machine) WHERE machine IS NOT NULL;
CREATE INDEX keys_agent_name ON keys (agent_name) WHERE agent_name IS NOT NULL;

CREATE TABLE agents (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    key_id BIGINT REFERENCES keys (id),
    created_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION
);

CREATE TABLE channels (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    private BOOLEAN NOT NULL DEFAULT FALSE,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    created_by BIGINT REFERENCES agents (id),
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE memberships (
    agent_id BIGINT NOT NULL REFERENCES agents (id),
    channel_id BIGINT NOT NULL REFERENCES channels (id),
    joined_at DOUBLE PRECISION NOT NULL,
    last_read_id BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, channel_id)
);
CREATE INDEX memberships_channel ON memberships (channel_id, agent_id);

-- Ids come from this sequence while the writer holds the cluster-wide write lock, so they are
-- committed in order: a reader that sees id N sees every id below it.
CREATE SEQUENCE message_ids;
CREATE TABLE messages (
    id BIGINT PRIMARY KEY,
    channel_id BIGINT NOT NULL REFERENCES channels (id),
    author_id BIGINT NOT NULL REFERENCES agents (id),
    content TEXT NOT NULL,
    metadata JSONB,
    parent_id BIGINT REFERENCES messages (id),
    expects_reply TEXT NOT NULL DEFAULT 'none',
    client_msg_id TEXT,
    mentions TEXT NOT NULL DEFAULT '',
    answered_by BIGINT REFERENCES agents (id),
    created_at DOUBLE PRECISION NOT NULL,
    content_tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
);
CREATE INDEX messages_channel ON messages (channel_id, id);
CREATE UNIQUE INDEX messages_client_msg_id ON messages (author_id, client_msg_id) WHERE client_msg_id IS NOT NULL;
CREATE INDEX messages_open ON messages (expects_reply, id) WHERE expects_reply <> 'none' AND answered_by IS NULL;
CREATE INDEX messages_parent ON messages (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX messages_search ON messages USING GIN (content_tsv);

CREATE TABLE claims (
    message_id BIGINT PRIMARY KEY REFERENCES messages (id),
    agent_id BIGINT NOT NULL REFERENCES agents (id),
    claimed_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE mentions (
    id BIGSERIAL PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES messages (id),
    agent_id BIGINT NOT NULL REFERENCES agents (id),
    read BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (message_id, agent_id)
);
CREATE INDEX mentions_agent ON mentions (agent_id, read, id);

-- Files live in the database: replicas then share them with no shared disk, and they are backed up,
-- replicated and restored with everything else. Content-addressed: equal bytes are stored once.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    data BYTEA NOT NULL
);
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL REFERENCES blobs (sha256),
    channel_id BIGINT NOT NULL REFERENCES channels (id),
    uploader_id BIGINT NOT NULL REFERENCES agents (id),
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    message_id BIGINT REFERENCES messages (id),
    created_at DOUBLE PRECISION NOT NULL
);

-- Token buckets shared by every replica; a row lock makes each take atomic.
CREATE TABLE rate_buckets (
    agent_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    tokens DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    refusals BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, kind)
);
""",
    ),
    (
        2,
        """
-- Message ids come from the sequence by default, so the shared INSERT (store.sql) names no id.
ALTER TABLE messages ALTER COLUMN id SET DEFAULT nextval('message_ids');
ALTER SEQUENCE message_ids OWNED BY messages.id;
""",
    ),
    (
        3,
        """
-- People sign in to the dashboard with keys of their own: they are agents marked human.
ALTER TABLE agents ADD COLUMN human BOOLEAN NOT NULL DEFAULT FALSE;
""",
    ),
    (
        4,
        """
-- Sealed channels (end-to-end encrypted, fixed at creation): their messages keep an envelope, never content.
ALTER TABLE channels ADD COLUMN encrypted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE messages ADD COLUMN sealed TEXT;
""",
    ),
    (
        5,
        """
-- Downloads read a file a chunk at a time (substring): uncompressed, PostgreSQL reads only the chunk's pages.
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;
""",
    ),
    (
        6,
        """
-- Adding an agent to a channel invites it: it is a member only once it joins (nobody is put in a channel
-- without consent); an inviter has a bounded number of invitations unanswered.
CREATE TABLE invitations (
    agent_id BIGINT NOT NULL REFERENCES agents (id),
    channel_id BIGINT NOT NULL REFERENCES channels (id),
    inviter_id BIGINT NOT NULL REFERENCES agents (id),
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (agent_id, channel_id)
);
CREATE INDEX invitations_inviter ON invitations (inviter_id);
""",
    ),
    (
        7,
        """
-- The dashboard's sessions: a signed-in page holds an opaque token (stored here as its hash), never the key
-- or the admin token; each expires, ends at sign-out, and ends with the key (or admin token) it stands for.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    agent_name TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
""",
    ),
]
