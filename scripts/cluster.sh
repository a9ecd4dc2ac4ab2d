#!/usr/bin/env bash
# Starts N Parley nodes on this machine, sharing one PostgreSQL and one Redis, for trying several nodes
# without containers. Ctrl-C stops them all.
#
#   scripts/cluster.sh [N]        # default 3 nodes: http://127.0.0.1:8081/ …, TCP 7071 …
#
# Environment: PARLEY_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/parley; create it with
# `createdb -U postgres parley`), PARLEY_REDIS_URL (default redis://127.0.0.1:6379), PARLEY_JWT_SECRET
# (default: a random one for this run), BASE_PORT (8081), TCP_BASE_PORT (7071).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-3}"
export PARLEY_DATABASE_URL="${PARLEY_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/parley}"
export PARLEY_REDIS_URL="${PARLEY_REDIS_URL:-redis://127.0.0.1:6379}"
export PARLEY_JWT_SECRET="${PARLEY_JWT_SECRET:-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')}"
base="${BASE_PORT:-8081}"
tcp_base="${TCP_BASE_PORT:-7071}"

cargo build --release --bin parley
pids=()
stop() {
  trap - EXIT INT TERM
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop EXIT INT TERM
for i in $(seq 1 "$n"); do
  target/release/parley serve \
    --listen "127.0.0.1:$((base + i - 1))" \
    --tcp-listen "127.0.0.1:$((tcp_base + i - 1))" \
    --data-dir "target/cluster/node$i" &
  pids+=("$!")
done
echo "$n nodes on one PostgreSQL and one Redis; any node serves any client:"
for i in $(seq 1 "$n"); do
  echo "  node $i: http://127.0.0.1:$((base + i - 1))/   nc 127.0.0.1 $((tcp_base + i - 1))"
done
wait
