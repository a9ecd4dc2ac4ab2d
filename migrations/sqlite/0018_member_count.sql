-- Issue 18: a room's member count is kept on its row by triggers instead of counted on every read.
-- `COUNT(*) FROM members` per room read made each connect into a room of N members cost O(N) (twice:
-- the rooms to follow and the greeting's room views); a reconnect storm into a room of 10,000 was
-- 10,000 × 2 × 10,000 index entries. Every write path to `members` goes through these triggers, in
-- its own transaction.
ALTER TABLE rooms ADD COLUMN member_count INTEGER NOT NULL DEFAULT 0;
UPDATE rooms SET member_count = (SELECT COUNT(*) FROM members m WHERE m.room_id = rooms.id);

CREATE TRIGGER members_count_insert AFTER INSERT ON members BEGIN
    UPDATE rooms SET member_count = member_count + 1 WHERE id = new.room_id;
END;

CREATE TRIGGER members_count_delete AFTER DELETE ON members BEGIN
    UPDATE rooms SET member_count = member_count - 1 WHERE id = old.room_id;
END;
