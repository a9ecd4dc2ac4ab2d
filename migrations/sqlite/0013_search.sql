-- Full-text search (issue 13): an FTS5 index over the live text messages, kept by triggers, so every
-- write path (the writer thread's append, edits, deletes, retention purges) updates it inside its own
-- transaction: a durable message is searchable, a deleted or purged one is gone from the index.
-- `messages` has no rowid, so `messages_fts_ids` numbers indexed messages in the order they were
-- indexed (newest = highest): FTS5 walks a term's matches newest first by that number, which is what
-- lets a search stop early (see `SqlStore::search`). An edit keeps the number.
-- unicode61 without diacritic folding, like PostgreSQL's `simple` configuration.
CREATE TABLE messages_fts_ids (
    id      INTEGER PRIMARY KEY,
    room_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    UNIQUE (room_id, seq)
);
CREATE VIRTUAL TABLE messages_fts USING fts5 (body, tokenize = 'unicode61 remove_diacritics 0');

INSERT INTO messages_fts_ids (room_id, seq)
    SELECT room_id, seq FROM messages WHERE kind = 'text' AND NOT deleted ORDER BY created_at, room_id, seq;
INSERT INTO messages_fts (rowid, body)
    SELECT i.id, m.body FROM messages_fts_ids i JOIN messages m ON m.room_id = i.room_id AND m.seq = i.seq;

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.kind = 'text' AND NOT new.deleted BEGIN
    INSERT INTO messages_fts_ids (room_id, seq) VALUES (new.room_id, new.seq);
    INSERT INTO messages_fts (rowid, body) VALUES (last_insert_rowid(), new.body);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, deleted ON messages WHEN old.kind = 'text' BEGIN
    DELETE FROM messages_fts
        WHERE rowid = (SELECT id FROM messages_fts_ids WHERE room_id = old.room_id AND seq = old.seq);
    INSERT INTO messages_fts (rowid, body)
        SELECT id, new.body FROM messages_fts_ids WHERE room_id = old.room_id AND seq = old.seq AND NOT new.deleted;
    DELETE FROM messages_fts_ids WHERE room_id = old.room_id AND seq = old.seq AND new.deleted;
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.kind = 'text' BEGIN
    DELETE FROM messages_fts
        WHERE rowid = (SELECT id FROM messages_fts_ids WHERE room_id = old.room_id AND seq = old.seq);
    DELETE FROM messages_fts_ids WHERE room_id = old.room_id AND seq = old.seq;
END;
