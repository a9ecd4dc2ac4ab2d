-- Ingest speed (issue 18): one index fewer written per message. The greeting's unread count needs the
-- text messages that are not deleted, by room and seq, with their sender; 0023 gave it a partial index
-- on `messages` for that (`messages_unread`). But `messages_fts_ids` (0013), the search index's id of
-- each message, already holds exactly those messages (a text gets one when stored, loses it when
-- deleted or purged; edits keep it) under a unique index on `(room_id, seq)`. Adding the sender to the
-- table and to that index makes it cover the count, and `messages_unread` goes: each stored text now
-- writes three scattered b-tree entries per room (the message, its client id, its search id) instead of
-- four, ~15 % fewer WAL pages per commit at the ingest benchmark's batch sizes (BENCHMARKS.md).
-- The table is rebuilt (SQLite cannot change a table's constraints in place) with the same ids, which
-- are FTS5's rowids; the triggers that read it are dropped and made again with the same bodies.
CREATE TABLE messages_fts_ids_new (
    id        INTEGER PRIMARY KEY,
    room_id   INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    sender_id INTEGER NOT NULL
);
INSERT INTO messages_fts_ids_new (id, room_id, seq, sender_id)
    SELECT i.id, i.room_id, i.seq, m.sender_id
    FROM messages_fts_ids i JOIN messages m ON m.room_id = i.room_id AND m.seq = i.seq;
DROP TRIGGER messages_fts_update;
DROP TRIGGER messages_fts_delete;
DROP TABLE messages_fts_ids;
ALTER TABLE messages_fts_ids_new RENAME TO messages_fts_ids;
CREATE UNIQUE INDEX messages_fts_ids_by_seq ON messages_fts_ids (room_id, seq, sender_id);
DROP INDEX messages_unread;

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
