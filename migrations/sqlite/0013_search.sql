-- Full-text search (issue 13): an FTS5 index over the live text messages, kept by triggers, so every
-- write path (the writer thread's append, edits, deletes, retention purges) updates it inside its own
-- transaction: a durable message is searchable, a deleted or purged one is gone from the index.
-- `messages` has no rowid, so an index row's rowid is (room_id << 32) + seq.
-- unicode61 without diacritic folding, like PostgreSQL's `simple` configuration.
CREATE VIRTUAL TABLE messages_fts USING fts5 (body, tokenize = 'unicode61 remove_diacritics 0');

INSERT INTO messages_fts (rowid, body)
    SELECT (room_id << 32) + seq, body FROM messages WHERE kind = 'text' AND NOT deleted;

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.kind = 'text' AND NOT new.deleted BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES ((new.room_id << 32) + new.seq, new.body);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, deleted ON messages WHEN old.kind = 'text' BEGIN
    DELETE FROM messages_fts WHERE rowid = (old.room_id << 32) + old.seq;
    INSERT INTO messages_fts (rowid, body)
        SELECT (new.room_id << 32) + new.seq, new.body WHERE new.kind = 'text' AND NOT new.deleted;
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.kind = 'text' BEGIN
    DELETE FROM messages_fts WHERE rowid = (old.room_id << 32) + old.seq;
END;
