#!/usr/bin/env python3
"""Search benchmark (issue 13): N messages in R rooms, seeded straight into the store, then searched
through the HTTP API of a real `parley serve`.

    scripts/bench-search.py sqlite   target/release/parley [--messages 1000000 --rooms 1000]
    scripts/bench-search.py postgres target/release/parley --pg postgres://postgres@127.0.0.1:5432/postgres

Seeding: the bench user is a member of every room; message texts are 12 words drawn from a Zipf-like
vocabulary of 20,000 made-up words (deterministic seed), so the commonest word is in a large share of the
messages and the rarest in a handful. Ingest is timed as the SQL insert of the same rows with the search
index maintained (SQLite: FTS5 triggers; PostgreSQL: generated tsvector + GIN) and without it (SQLite: the
triggers dropped; PostgreSQL: the same rows into a copy of the table without the column and index).
Queries (common word, rare word, two-word phrase, prefix) each run --queries times over one keep-alive HTTP
connection after a warm-up; the script prints p50/p99 and the hit count of the first page.
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse

SYL = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "pe", "du", "ga", "bi", "zo", "fe", "hu", "ja"]


def vocabulary(n, rng):
    words, seen = [], set()
    while len(words) < n:
        w = "".join(rng.choice(SYL) for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def bodies(n, rng, vocab):
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    cum, t = [], 0.0
    for w in weights:
        t += w
        cum.append(t)
    for _ in range(n):
        yield " ".join(rng.choices(vocab, cum_weights=cum, k=12))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


SERVERS = []


class Server:
    def __init__(self, binary, data_dir, db_url=None):
        self.port = free_port()
        args = [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--tcp-listen", "off", "--data-dir", data_dir,
                "--argon2-memory-kib", "1024", "--argon2-iterations", "1"]
        if db_url:
            args += ["--database-url", db_url]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(data_dir, "log"), "a"))
        SERVERS.append(self.proc)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("server did not start")

    def call(self, method, path, body=None, token=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"content-type": "application/json"}
        if token:
            h["authorization"] = f"Bearer {token}"
        c.request(method, path, json.dumps(body) if body is not None else None, h)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def user_and_token(srv):
    srv.call("POST", "/api/v1/register", {"username": "bench", "password": "bench-password"})
    s, b = srv.call("POST", "/api/v1/login", {"username": "bench", "password": "bench-password"})
    assert s == 200, b
    return b["token"], b["user"]["id"]


def rows(args, rng, vocab, uid):
    """(room_id, seq, body, created_at) for every message, rooms round-robin."""
    per_room = args.messages // args.rooms
    ts0 = 1_700_000_000_000
    i = 0
    for body in bodies(per_room * args.rooms, rng, vocab):
        room = i % args.rooms + 1
        seq = i // args.rooms + 1
        yield (room, seq, uid, body, ts0 + i)
        i += 1


def seed_sqlite(path, args, uid, index):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if not index:
        for t in ("messages_fts_insert", "messages_fts_update", "messages_fts_delete"):
            db.execute(f"DROP TRIGGER {t}")
    db.execute("BEGIN")
    for r in range(1, args.rooms + 1):
        db.execute("INSERT INTO rooms (id, name, name_key, visibility, created_by, created_at, last_seq) "
                   "VALUES (?, ?, ?, 'public', ?, 0, ?)", (r, f"room{r}", f"room{r}", uid, args.messages // args.rooms))
        db.execute("INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?, ?, 'member', 0)", (r, uid))
    db.execute("COMMIT")
    rng = random.Random(42)
    vocab = vocabulary(20_000, random.Random(7))
    batch, t0, n, first = [], time.time(), 0, None
    sql = "INSERT INTO messages (room_id, seq, kind, sender_id, body, created_at) VALUES (?, ?, 'text', ?, ?, ?)"
    for row in rows(args, rng, vocab, uid):
        if n == args.ingest_messages:
            first = time.time() - t0
            if not index:
                break
        n += 1
        batch.append(row)
        if len(batch) == 10_000:
            db.execute("BEGIN")
            db.executemany(sql, batch)
            db.execute("COMMIT")
            batch = []
    if batch:
        db.execute("BEGIN")
        db.executemany(sql, batch)
        db.execute("COMMIT")
    took = time.time() - t0
    db.close()
    return (first if first is not None else took), vocab


def seed_pg(psql_url, args, uid, index):
    rng = random.Random(42)
    vocab = vocabulary(20_000, random.Random(7))
    table = "messages" if index else "bench_noindex"
    setup = ""
    if not index:
        setup = ("CREATE TABLE bench_noindex (room_id BIGINT, seq BIGINT, kind TEXT, sender_id BIGINT, body TEXT, "
                 "created_at BIGINT, PRIMARY KEY (room_id, seq));")
    else:
        setup = "".join(
            f"INSERT INTO rooms (id, name, name_key, visibility, created_by, created_at, last_seq) VALUES "
            f"({r}, 'room{r}', 'room{r}', 'public', {uid}, 0, {args.messages // args.rooms});"
            f"INSERT INTO members (room_id, user_id, role, joined_at) VALUES ({r}, {uid}, 'member', 0);"
            for r in range(1, args.rooms + 1)) + "SELECT setval(pg_get_serial_sequence('rooms','id'), 100000);"
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", psql_url, "-f", "-"], input=setup.encode(), check=True)
    lines = [f"{r}\t{s}\ttext\t{u}\t{b}\t{t}\n" for r, s, u, b, t in rows(args, rng, vocab, uid)]
    copy = f"COPY {table} (room_id, seq, kind, sender_id, body, created_at) FROM STDIN"
    k = args.ingest_messages
    t0 = time.time()
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", psql_url, "-c", copy],
                   input="".join(lines[:k]).encode(), check=True)
    took = time.time() - t0
    if index and len(lines) > k:
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", psql_url, "-c", copy],
                       input="".join(lines[k:]).encode(), check=True)
    if not index:
        subprocess.run(["psql", "-q", psql_url, "-c", "DROP TABLE bench_noindex"], check=True)
    return took, vocab


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def run_queries(srv, token, vocab, n):
    rare = vocab[-1]
    queries = {
        "common word": vocab[0],
        "rare word": rare,
        "phrase": f'"{vocab[0]} {vocab[1]}"',
        "prefix": vocab[2][:3] + "*",
    }
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    h = {"authorization": f"Bearer {token}"}
    out = {}
    for name, q in queries.items():
        path = "/api/v1/search?q=" + urllib.parse.quote(q)
        times, hits = [], 0
        for i in range(n + 10):
            t0 = time.perf_counter()
            c.request("GET", path, headers=h)
            r = c.getresponse()
            body = r.read()
            dt = time.perf_counter() - t0
            assert r.status == 200, body
            if i >= 10:
                times.append(dt * 1000)
            hits = len(json.loads(body)["hits"])
        out[name] = (q, pct(times, 0.5), pct(times, 0.99), hits)
        print(f"{name:12} q={q!r:24} p50 {pct(times, 0.5):7.2f} ms  p99 {pct(times, 0.99):7.2f} ms  "
              f"first page {hits} hits", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("backend", choices=["sqlite", "postgres"])
    ap.add_argument("binary")
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--rooms", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ingest-messages", type=int, default=200_000,
                    help="messages timed for the ingest comparison (index on: the first this many of the seed)")
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="parley-search-bench-") as d:
        db_url = None
        if args.backend == "postgres":
            name = f"parley_search_bench_{os.getpid()}"
            subprocess.run(["psql", "-q", args.pg, "-c", f"CREATE DATABASE {name}"], check=True)
            db_url = args.pg.rsplit("/", 1)[0] + "/" + name
        try:
            srv = Server(args.binary, d, db_url)
            token, uid = user_and_token(srv)
            srv.stop()
            if args.backend == "sqlite":
                path = os.path.join(d, "parley.db")
                noidx = os.path.join(d, "noindex.db")
                sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
                subprocess.run(["cp", path, noidx], check=True)
                off, _ = seed_sqlite(noidx, args, uid, index=False)
                os.remove(noidx)
                on, vocab = seed_sqlite(path, args, uid, index=True)
            else:
                off, _ = seed_pg(db_url, args, uid, index=False)
                on, vocab = seed_pg(db_url, args, uid, index=True)
                subprocess.run(["psql", "-q", db_url, "-c", "VACUUM ANALYZE"], check=True)
            total = (args.messages // args.rooms) * args.rooms
            print(f"{args.backend}: {total} messages in {args.rooms} rooms")
            k = min(args.ingest_messages, total)
            print(f"ingest (SQL insert of {k} messages) index on : {on:6.1f} s = {k / on:9.0f} msg/s")
            print(f"ingest (SQL insert of {k} messages) index off: {off:6.1f} s = {k / off:9.0f} msg/s", flush=True)
            srv = Server(args.binary, d, db_url)
            s, b = srv.call("POST", "/api/v1/login", {"username": "bench", "password": "bench-password"})
            run_queries(srv, b["token"], vocab, args.queries)
            srv.stop()
        finally:
            for p in SERVERS:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            if args.backend == "postgres":
                subprocess.run(["psql", "-q", args.pg, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])


if __name__ == "__main__":
    sys.exit(main())
