#!/usr/bin/env python3
"""SQLite search window before/after (BENCHMARKS.md, Search plans changed). Usage: build a copy with
mkcopy.py (adds fts_p, the prefix-indexed FTS5 table, beside messages_fts), then: q.py COPY.db [variants]."""
import importlib.util, sqlite3, time, random, sys, statistics
spec = importlib.util.spec_from_file_location("bs", "/work/wt/files/scripts/bench-search.py")
bs = importlib.util.module_from_spec(spec); spec.loader.exec_module(bs)
vocab = bs.vocabulary(20_000, random.Random(7))
db = sqlite3.connect("file:" + (sys.argv[1] if len(sys.argv) > 1 else "/tmp/fsb/data/parley.db") + "?mode=ro", uri=True)
uid = db.execute("SELECT id FROM users WHERE username='bench'").fetchone()[0]
print("rows", db.execute("SELECT max(id) FROM messages_fts_ids").fetchone())
qs = {"common": f'"{vocab[0]}"', "rare": f'"{vocab[-1]}"', "phrase": f'"{vocab[0]} {vocab[1]}"', "prefix": f'"{vocab[2][:3]}"*'}
W = """SELECT f.rowid AS fid, f.rank AS score FROM messages_fts f
 CROSS JOIN messages_fts_ids i ON i.id = f.rowid CROSS JOIN messages m ON m.room_id = i.room_id AND m.seq = i.seq
 CROSS JOIN members mb ON mb.room_id = m.room_id AND mb.user_id = ?2
 WHERE messages_fts MATCH ?1 AND m.kind = 'text' AND NOT m.deleted ORDER BY f.rowid DESC LIMIT 1050"""
WP = W.replace("messages_fts f", "fts_p f").replace("messages_fts MATCH", "fts_p MATCH")
NEW = W.replace("messages_fts f", "fts_p f").replace("messages_fts MATCH", "fts_p MATCH").replace("f.rank AS score", "m.body AS body")
variants = {
 "new": NEW,
 "prefixidx": f"SELECT fid FROM ({WP}) ORDER BY score, fid DESC LIMIT 21",
 "current": f"SELECT fid FROM ({W}) ORDER BY score, fid DESC LIMIT 21",
 "norank": f"SELECT fid FROM ({W.replace('f.rank AS score', '0 AS score')}) ORDER BY score, fid DESC LIMIT 21",
}
if len(sys.argv) > 2: variants = {k: v for k, v in variants.items() if k in sys.argv[2].split(',')}
for name, q in qs.items():
    for vn, sql in variants.items():
        ts = []
        for _ in range(15):
            t = time.perf_counter(); db.execute(sql, (q, uid)).fetchall(); ts.append((time.perf_counter() - t) * 1000)
        ts.sort(); print(f"{name:7} {vn:9} median {statistics.median(ts):7.1f} ms  min {min(ts):7.1f}  max {ts[-1]:7.1f}", flush=True)
