-- Issue 14: replies and threads, reactions, pins, notification levels.
ALTER TABLE messages ADD COLUMN reply_to INTEGER;   -- the parent's seq (same room), for replies
ALTER TABLE messages ADD COLUMN thread   INTEGER;   -- the thread root's seq, for replies
-- When the message's reactions last changed: a resuming client is sent those changed since it left.
ALTER TABLE messages ADD COLUMN reactions_at INTEGER;
CREATE INDEX messages_by_reactions_at ON messages (room_id, reactions_at) WHERE reactions_at IS NOT NULL;
CREATE INDEX messages_by_thread ON messages (room_id, thread, seq) WHERE thread IS NOT NULL;

-- One row per (message, emoji, user); `id` gives first-reaction order.
CREATE TABLE reactions (
    id         INTEGER PRIMARY KEY,
    room_id    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    emoji      TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    UNIQUE (room_id, seq, emoji, user_id)
);

CREATE TABLE pins (
    room_id   INTEGER NOT NULL REFERENCES rooms (id),
    seq       INTEGER NOT NULL,
    pinned_by INTEGER NOT NULL REFERENCES users (id),
    pinned_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;

-- A member's read position in a thread they follow.
CREATE TABLE thread_reads (
    room_id INTEGER NOT NULL,
    root    INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, root)
) WITHOUT ROWID;

ALTER TABLE members ADD COLUMN notify TEXT NOT NULL DEFAULT 'all' CHECK (notify IN ('all', 'mentions', 'none'));
ALTER TABLE members ADD COLUMN muted BOOLEAN NOT NULL DEFAULT FALSE;
