#!/usr/bin/env bash
# The ingestpg load on a fresh PostgreSQL schema, with SQL run right after the server's migrations: an A/B of
# a database setting without a rebuild (BENCHMARKS.md, "PostgreSQL: the search index's pending list").
#   scripts/bench-pg-setting.sh LABEL "SQL" RATE…     e.g.
#   scripts/bench-pg-setting.sh l256 "ALTER INDEX messages_search SET (gin_pending_list_limit = 256);" 5000 15000
#   scripts/bench-pg-setting.sh default "" 5000 15000
# PARLEY_BIN picks the binary (default target/release/parley), PARLEY_BENCH_POSTGRES_URL the database.
# Server on core 0, generator on core 1; one line per rate: acked/s, ack p50 / p99. Stops what it starts.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${PARLEY_BIN:-$ROOT/target/release/parley}"
NAME=$1; SQL=$2; shift 2
pg="${PARLEY_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
schema="parley_ab_$$"
out="$ROOT/target/bench"; mkdir -p "$out"
data="$(mktemp -d -t parley-pgab.XXXXXX)"
psql -q "$pg" -c "CREATE SCHEMA $schema"
SP=""
cleanup() {
  if [ -n "$SP" ] && kill -0 "$SP" 2>/dev/null; then kill "$SP"; wait "$SP" 2>/dev/null || true; fi
  psql -q "$pg" -c "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap cleanup EXIT
taskset -c 0 "$BIN" serve --listen 127.0.0.1:0 --tcp-listen off --data-dir "$data" \
  --database-url "$pg?options[search_path]=$schema" --argon2-memory-kib 1024 --argon2-iterations 1 \
  --messages-per-sec 1000000 --message-burst 1000000 --auth-per-minute 10000000 --auth-burst 1000000 \
  --max-connections 100000 --max-connections-per-user 100000 >"$out/$NAME.server.out" 2>"$out/$NAME.server.err" &
SP=$!
URL=""
for _ in $(seq 1 100); do
  URL="$(grep -o 'http://[0-9.:]*' "$out/$NAME.server.out" | head -1 || true)"
  [ -n "$URL" ] && break
  sleep 0.1
done
[ -n "$URL" ] || { echo "server did not start" >&2; cat "$out/$NAME.server.err" >&2; exit 1; }
[ -z "$SQL" ] || psql -q "$pg" -c "SET search_path = $schema; $SQL"
for rate in "$@"; do
  taskset -c 1 "$BIN" bench --url "$URL" --server-pid "$SP" --json --connections 200 --rooms 100 \
    --users-per-room 2 --senders 200 --total-rate "$rate" --warmup 2 --duration 10 --prefix "r$rate" \
    >"$out/pgab-$NAME-$rate.json" 2>/dev/null
  python3 - "$out/pgab-$NAME-$rate.json" "$NAME" "$rate" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); l = r["load"]
print(f"{sys.argv[2]} {sys.argv[3]}: acked {l['acked_per_s']:.0f}/s, ack p50 {l['ack_latency_us']['p50']/1000:.1f} "
      f"p99 {l['ack_latency_us']['p99']/1000:.1f} ms")
PY
done
