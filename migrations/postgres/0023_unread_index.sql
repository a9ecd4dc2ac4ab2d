-- Issue 18: a connect counts each of its user's rooms' unread text messages (the greeting's room
-- views). Counted on the messages' primary key, that walked every message after the member's read
-- position, system messages included: in a big room one `join` per member, so a connect into a
-- 10,000-member room walked ~10,000 rows, and a reconnect storm of all its members ~10^8. This index
-- holds only the messages the count counts (text, not deleted), with every column the count reads, so
-- the count walks the unread texts and nothing else, without reading the rows.
CREATE INDEX messages_unread ON messages (room_id, seq, sender_id, kind, deleted) WHERE kind = 'text' AND NOT deleted;
