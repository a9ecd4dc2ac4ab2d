-- Ingest speed (issue 18): the search index of a new text message is written by the writer thread
-- (`src/store/sqlite_writer.rs`), as two plain single-row inserts after the message's own, instead of by
-- an AFTER INSERT trigger. A trigger made every message insert a multi-write statement, so SQLite opened a
-- statement journal (a savepoint) for each one, and FTS5 flushes its pending terms to disk at every
-- savepoint: one tiny index segment per message, then merges of those segments, over a third of the
-- server's CPU at saturation (perf, BENCHMARKS.md "Durable ingest: the search index"). Without the
-- trigger, FTS5 keeps a batch's terms in memory and writes them once, at the batch's commit.
-- The writer is the only path that inserts messages into this database; edits, deletes and purges keep
-- their triggers (0013), which are rare and run one statement each.
DROP TRIGGER messages_fts_insert;
