#!/usr/bin/env python3
"""Upload/download throughput (issue 13): a real `parley serve`, files through the HTTP API.

    scripts/bench-files.py target/release/parley                       # disk blob store (SQLite)
    scripts/bench-files.py target/release/parley --pg postgres://postgres@127.0.0.1:5432/postgres
                                                                       # PostgreSQL blob store (chunked bytea)

Uploads --count files of --size bytes one after another (random bytes: not images, so no thumbnail work),
then one --big file, then downloads each; every request on one keep-alive connection, the whole body
read. Prints MiB/s for each phase and the p50/p99 time per small file. A fresh data directory (and, for
PostgreSQL, a fresh database, dropped afterwards) every run.
"""
import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import importlib.util  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_search", os.path.join(os.path.dirname(__file__), "bench-search.py"))
bs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bs)

MIB = 1024 * 1024


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--size", type=int, default=MIB)
    ap.add_argument("--big", type=int, default=25 * MIB)
    ap.add_argument("--pg", default=None, help="a PostgreSQL server URL (…/postgres): use the PostgreSQL blob store")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="parley-files-bench-") as d:
        db_url, name = None, None
        if args.pg:
            name = f"parley_files_bench_{os.getpid()}"
            subprocess.run(["psql", "-q", args.pg, "-c", f"CREATE DATABASE {name}"], check=True)
            db_url = args.pg.rsplit("/", 1)[0] + "/" + name
        try:
            srv = bs.Server(args.binary, d, db_url)
            token, _ = bs.user_and_token(srv)
            s, b = srv.call("POST", "/api/v1/rooms", {"name": "files", "visibility": "public"}, token)
            assert s == 201, b
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
            h = {"authorization": f"Bearer {token}", "content-type": "application/octet-stream"}

            def upload(data, i):
                c.request("POST", f"/api/v1/rooms/files/files?name=f{i}.bin", body=data, headers=h)
                r = c.getresponse()
                body = r.read()
                assert r.status == 201, body
                return __import__("json").loads(body)["id"]

            def download(fid, size):
                c.request("GET", f"/api/v1/files/{fid}/content", headers=h)
                r = c.getresponse()
                got = 0
                while True:
                    chunk = r.read(256 * 1024)
                    if not chunk:
                        break
                    got += len(chunk)
                assert r.status == 200 and got == size, (r.status, got)

            small = [os.urandom(args.size) for _ in range(args.count)]
            big = os.urandom(args.big)
            ids, up_t = [], []
            t0 = time.perf_counter()
            for i, data in enumerate(small):
                t = time.perf_counter()
                ids.append(upload(data, i))
                up_t.append((time.perf_counter() - t) * 1000)
            up_small = time.perf_counter() - t0
            t0 = time.perf_counter()
            big_id = upload(big, "big")
            up_big = time.perf_counter() - t0
            down_t = []
            t0 = time.perf_counter()
            for fid in ids:
                t = time.perf_counter()
                download(fid, args.size)
                down_t.append((time.perf_counter() - t) * 1000)
            down_small = time.perf_counter() - t0
            t0 = time.perf_counter()
            download(big_id, args.big)
            down_big = time.perf_counter() - t0
            srv.stop()
            store = "postgres" if args.pg else "disk"
            n = args.count * args.size / MIB
            print(f"blob store: {store}")
            print(f"upload   {args.count} x {args.size / MIB:g} MiB: {n / up_small:7.1f} MiB/s  "
                  f"per file p50 {pct(up_t, 0.5):6.1f} ms p99 {pct(up_t, 0.99):6.1f} ms")
            print(f"upload   1 x {args.big / MIB:g} MiB:   {args.big / MIB / up_big:7.1f} MiB/s  ({up_big * 1000:.0f} ms)")
            print(f"download {args.count} x {args.size / MIB:g} MiB: {n / down_small:7.1f} MiB/s  "
                  f"per file p50 {pct(down_t, 0.5):6.1f} ms p99 {pct(down_t, 0.99):6.1f} ms")
            print(f"download 1 x {args.big / MIB:g} MiB:   {args.big / MIB / down_big:7.1f} MiB/s  ({down_big * 1000:.0f} ms)")
        finally:
            for p in bs.SERVERS:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            if name:
                subprocess.run(["psql", "-q", args.pg, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])


if __name__ == "__main__":
    sys.exit(main())
