#!/usr/bin/env python3
"""Snapshot of a seeded parley.db (scripts/bench-search.py layout) with the prefix-indexed FTS5 table fts_p."""
import sqlite3, time
src = sqlite3.connect("file:/tmp/fsb/data/parley.db?mode=ro", uri=True)
dst = sqlite3.connect("/tmp/fsb/copy.db")
src.backup(dst)
t = time.time()
dst.execute("CREATE VIRTUAL TABLE fts_p USING fts5 (body, tokenize = 'unicode61 remove_diacritics 0', prefix = '2 3')")
dst.execute("INSERT INTO fts_p (rowid, body) SELECT i.id, m.body FROM messages_fts_ids i JOIN messages m ON m.room_id = i.room_id AND m.seq = i.seq")
dst.execute("INSERT INTO fts_p(fts_p) VALUES('optimize')")
dst.execute("INSERT INTO messages_fts(messages_fts) VALUES('optimize')")
dst.commit()
print("built", time.time() - t)
