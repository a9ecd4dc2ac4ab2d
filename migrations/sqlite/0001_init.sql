-- Parley schema, SQLite. Timestamps are milliseconds since the Unix epoch.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,   -- lower-cased: uniqueness ignores case
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE rooms (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    name_key   TEXT    NOT NULL UNIQUE,          -- lower-cased name; '@dm:LO:HI' for direct conversations
    kind       TEXT    NOT NULL DEFAULT 'group' CHECK (kind IN ('group', 'direct')),
    visibility TEXT    NOT NULL CHECK (visibility IN ('public', 'private')),
    topic      TEXT    NOT NULL DEFAULT '',
    created_by INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL DEFAULT 0    -- the per-room counter that assigns message seqs
);

CREATE TABLE members (
    room_id   INTEGER NOT NULL REFERENCES rooms (id),
    user_id   INTEGER NOT NULL REFERENCES users (id),
    role      TEXT    NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
    last_read INTEGER NOT NULL DEFAULT 0,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members (user_id, room_id);

CREATE TABLE invites (
    room_id    INTEGER NOT NULL REFERENCES rooms (id),
    user_id    INTEGER NOT NULL REFERENCES users (id),
    invited_by INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;

CREATE TABLE bans (
    room_id    INTEGER NOT NULL REFERENCES rooms (id),
    user_id    INTEGER NOT NULL REFERENCES users (id),
    banned_by  INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;

CREATE TABLE messages (
    room_id    INTEGER NOT NULL REFERENCES rooms (id),
    seq        INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    sender_id  INTEGER NOT NULL REFERENCES users (id),
    target_id  INTEGER REFERENCES users (id),
    body       TEXT    NOT NULL,               -- '' once deleted
    client_id  TEXT,
    mentions   TEXT    NOT NULL DEFAULT '',    -- user ids, comma-separated (also in table mentions)
    created_at INTEGER NOT NULL,
    edited_at  INTEGER,
    deleted    BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_by_client_id ON messages (room_id, sender_id, client_id) WHERE client_id IS NOT NULL;

-- One row per mentioned member, to count unread mentions.
CREATE TABLE mentions (
    room_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
) WITHOUT ROWID;
