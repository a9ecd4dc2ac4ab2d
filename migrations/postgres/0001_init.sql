-- Parley schema, PostgreSQL. The same tables as migrations/sqlite/0001_init.sql; every integer is BIGINT
-- (ids, seqs, timestamps) so rows decode to i64 as on SQLite. Timestamps are milliseconds since the Unix epoch.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,   -- lower-cased: uniqueness ignores case
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users (id),
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE rooms (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT    NOT NULL,
    name_key   TEXT    NOT NULL UNIQUE,          -- lower-cased name; '@dm:LO:HI' for direct conversations
    kind       TEXT    NOT NULL DEFAULT 'group' CHECK (kind IN ('group', 'direct')),
    visibility TEXT    NOT NULL CHECK (visibility IN ('public', 'private')),
    topic      TEXT    NOT NULL DEFAULT '',
    created_by BIGINT  NOT NULL REFERENCES users (id),
    created_at BIGINT  NOT NULL,
    last_seq   BIGINT  NOT NULL DEFAULT 0    -- the per-room counter that assigns message seqs (row-locked by appends)
);

CREATE TABLE members (
    room_id   BIGINT  NOT NULL REFERENCES rooms (id),
    user_id   BIGINT  NOT NULL REFERENCES users (id),
    role      TEXT    NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
    last_read BIGINT  NOT NULL DEFAULT 0,
    joined_at BIGINT  NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id, room_id);

CREATE TABLE invites (
    room_id    BIGINT  NOT NULL REFERENCES rooms (id),
    user_id    BIGINT  NOT NULL REFERENCES users (id),
    invited_by BIGINT  NOT NULL REFERENCES users (id),
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE bans (
    room_id    BIGINT  NOT NULL REFERENCES rooms (id),
    user_id    BIGINT  NOT NULL REFERENCES users (id),
    banned_by  BIGINT  NOT NULL REFERENCES users (id),
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE messages (
    room_id    BIGINT  NOT NULL REFERENCES rooms (id),
    seq        BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    sender_id  BIGINT  NOT NULL REFERENCES users (id),
    target_id  BIGINT  REFERENCES users (id),
    body       TEXT    NOT NULL,               -- '' once deleted
    client_id  TEXT,
    mentions   TEXT    NOT NULL DEFAULT '',    -- user ids, comma-separated (also in table mentions)
    created_at BIGINT  NOT NULL,
    edited_at  BIGINT,
    deleted    BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (room_id, seq)
);
CREATE UNIQUE INDEX messages_by_client_id ON messages (room_id, sender_id, client_id) WHERE client_id IS NOT NULL;

-- One row per mentioned member, to count unread mentions.
CREATE TABLE mentions (
    room_id BIGINT NOT NULL,
    seq     BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
);
