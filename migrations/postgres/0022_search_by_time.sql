-- Search speed (issue 13): messages newest first, so a search for a common word walks the newest
-- messages and stops after its window instead of matching every row that has the word (11.4 s → 27 ms
-- for a word in 70% of 1,000,000 messages; see BENCHMARKS.md, *Search*).
CREATE INDEX messages_by_time ON messages (created_at, room_id, seq);
