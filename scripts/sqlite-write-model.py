#!/usr/bin/env python3
"""A model of the SQLite writer's statements (src/store/sqlite_writer.rs) on the real migrations, to compare
schema variants by CPU per message and WAL frames per commit (BENCHMARKS.md, "The search index written
once per batch"). Python's own sqlite3 and per-statement overhead are included, so compare variants with
each other, never with the server's figures. Usage: scripts/sqlite-write-model.py VARIANT [BATCH]
  VARIANT: cur (the schema as migrated), nounread (without 0023's messages_unread), narrow (that index on
  (room_id, seq, sender_id) only), nofts (no search index writes), noftsuniq (messages_fts_ids without its
  UNIQUE (room_id, seq)). 100 rooms of 2, 60 batches of BATCH (default 200) messages."""
import sqlite3, glob, os, time, random, sys, tempfile
variant = sys.argv[1]; B = int(sys.argv[2]) if len(sys.argv)>2 else 200
path = os.path.join(tempfile.mkdtemp(), f"model-{variant}.sqlite")
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=OFF"); db.execute("PRAGMA wal_autocheckpoint=0")
for f in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "migrations", "sqlite", "*.sql"))):
    db.executescript(open(f).read())
if variant in ("nounread","nounread_noftsidx"): db.execute("DROP INDEX messages_unread")
if variant == "noftsuniq":
    db.executescript("DROP TRIGGER messages_fts_update; DROP TRIGGER messages_fts_delete; CREATE TABLE ids2 (id INTEGER PRIMARY KEY, room_id INTEGER NOT NULL, seq INTEGER NOT NULL); DROP TABLE messages_fts_ids; ALTER TABLE ids2 RENAME TO messages_fts_ids;")
if variant == "narrow":
    db.execute("DROP INDEX messages_unread"); db.execute("CREATE INDEX messages_unread ON messages (room_id, seq, sender_id) WHERE kind = 'text' AND NOT deleted")
cols = [r[1] for r in db.execute("PRAGMA table_info(users)")]
for u in range(1,201):
    db.execute(f"INSERT INTO users (id, username, username_key, display_name, password_hash, created_at) VALUES (?,?,?,?,?,0)" if 'username_key' in cols else "INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES (?,?,?,?,0)",
               (u, f"user{u}", f"user{u}", "U", "x") if 'username_key' in cols else (u, f"user{u}", "U", "x"))
for r in range(1,101):
    db.execute("INSERT INTO rooms (id, name, name_key, visibility, created_by, created_at) VALUES (?,?,?,?,1,0)", (r, f"r{r}", f"r{r}", 'public'))
    for u in (2*r-1, 2*r):
        db.execute("INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?,?,'member',0)", (r,u))
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
words = "the quick brown fox jumps over lazy dog hello world chat server message ready steady go".split()
seqs = {r:0 for r in range(1,101)}
N = 0; t0 = time.process_time(); frames = 0; nb = 0
ins = "INSERT INTO messages (room_id, seq, kind, sender_id, target_id, body, client_id, mentions, created_at, reply_to, thread) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
for b in range(60):
    db.execute("BEGIN IMMEDIATE")
    touched = set()
    for i in range(B):
        r = random.randint(1,100); u = 2*r-1 + random.randint(0,1)
        seqs[r] += 1; s = seqs[r]
        db.execute("SELECT seq FROM messages WHERE room_id=? AND sender_id=? AND client_id=?", (r,u,f"c{N}")).fetchall()
        db.execute("SELECT 1 FROM members WHERE room_id=? AND user_id=?", (r,u)).fetchall()
        body = " ".join(random.choice(words) for _ in range(8))
        db.execute(ins, (r, s, 'text', u, None, body, f"c{N}", '', 0, None, None))
        if not variant.endswith("nofts"):
            db.execute("INSERT INTO messages_fts_ids (room_id, seq) VALUES (?,?)", (r,s))
            db.execute("INSERT INTO messages_fts (rowid, body) VALUES (?,?)", (db.execute("select last_insert_rowid()").fetchone()[0], body))
        touched.add(r); N += 1
    for r in touched: db.execute("UPDATE rooms SET last_seq=? WHERE id=?", (seqs[r], r))
    db.execute("COMMIT")
    nb += 1
    if True:
        frames += os.path.getsize(path+"-wal")/4120; db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
cpu = time.process_time()-t0
print(f"{variant:10s} B={B}: {cpu/N*1e6:.1f} us/msg (python incl.), WAL frames/commit {frames/nb:.0f}, KiB/msg {frames*4.1/N:.2f}")
