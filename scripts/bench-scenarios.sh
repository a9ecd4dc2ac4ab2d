#!/usr/bin/env bash
# Runs BENCHMARKS.md's scenarios: a fresh release server pinned to core 0 per scenario, the load
# generator pinned to core 1. JSON reports go to target/bench/. Usage:
#   scripts/bench-scenarios.sh [scenario…]     (fanout manyrooms idle ingest ingestpg acklatency loginstorm recovery
#                                               slow coalesce transports twonode bigroom foreign cluster profile; default:
#                                               fanout manyrooms idle ingest recovery slow; ingestpg needs PostgreSQL,
#                                               twonode, foreign and cluster need PostgreSQL and Redis, see below;
#                                               REDIS_MODE=cluster runs foreign and cluster on a private
#                                               3-master Redis Cluster instead of one private Redis)
# PARLEY_BIN picks the server binary, PARLEY_BENCH_BIN the load generator's (default: the same), so an
# older server can be measured with this generator.
# Stops every server it starts. Everything stays on loopback.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${PARLEY_BIN:-$ROOT/target/release/parley}"
BENCH_BIN="${PARLEY_BENCH_BIN:-$BIN}"
# Cheap password hashing unless a scenario measures hashing itself.
ARGON2_FLAGS="--argon2-memory-kib 1024 --argon2-iterations 1"
OUT="$ROOT/target/bench"
mkdir -p "$OUT"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --bin parley)

SERVER_PID=""
SERVER_PIDS=()
stop_server() {
  for pid in "${SERVER_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
  done
  SERVER_PIDS=()
  SERVER_PID=""
}
trap 'stop_server; stop_redis' EXIT

start_server() { # extra flags…
  local data; data="$(mktemp -d -t parley-bench.XXXXXX)"
  # Emptied first: otherwise the URL of the previous (stopped) server can be read before this one starts.
  : >"$OUT/server.out"
  # The load generator is one address driving thousands of users far past the default abuse limits.
  taskset -c 0 "$BIN" serve --listen 127.0.0.1:0 --tcp-listen "${TCP_LISTEN:-off}" --data-dir "$data" \
    $ARGON2_FLAGS \
    --messages-per-sec 1000000 --message-burst 1000000 --auth-per-minute 10000000 --auth-burst 1000000 \
    --max-connections 100000 --max-connections-per-user 100000 "$@" >"$OUT/server.out" 2>"$OUT/server.err" &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  for _ in $(seq 1 100); do
    URL="$(grep -o 'http://[0-9.:]*' "$OUT/server.out" | head -1 || true)"
    [ -n "$URL" ] && return 0
    sleep 0.1
  done
  echo "server did not start" >&2; cat "$OUT/server.err" >&2; exit 1
}

bench() { # name, flags…
  local name="$1"; shift
  echo "== $name: parley bench $*" >&2
  taskset -c 1 "$BENCH_BIN" bench --url "$URL" --server-pid "$SERVER_PID" --json "$@" >"$OUT/$name.json"
}

scenario_fanout() {
  # One room of 1,000 members; 10 senders, rate stepped up. Same server across steps.
  start_server
  for rate in 10 25 50 100; do
    bench "fanout-r$rate" --connections 1000 --rooms 1 --users-per-room 1000 --senders 10 --rate "$rate" \
      --warmup 2 --duration 10
  done
  stop_server
}

scenario_manyrooms() {
  start_server
  bench manyrooms --connections 10000 --rooms 1000 --users-per-room 10 --senders 1000 --rate 1 \
    --warmup 3 --duration 15 --connect-concurrency 200
  stop_server
}

scenario_idle() {
  start_server
  bench idle --idle --connections 15000 --rooms 10 --duration 20 --source-addrs 127.0.0.2,127.0.0.3 \
    --connect-concurrency 200
  stop_server
}

scenario_ingest() {
  # Durable ingest on SQLite: many senders, small rooms, as fast as acks allow at the offered rate.
  start_server
  for total in 10000 30000 60000; do
    bench "ingest-$total" --connections 200 --rooms 100 --users-per-room 2 --senders 200 --total-rate "$total" \
      --warmup 2 --duration 10
  done
  stop_server
}

scenario_ingestpg() {
  # The ingest scenario on PostgreSQL (PARLEY_BENCH_POSTGRES_URL, a fresh schema), sharing the machine's
  # two cores with the server and the generator.
  local pg="${PARLEY_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
  local schema="parley_bench_$$"
  psql -q "$pg" -c "CREATE SCHEMA $schema"
  start_server --database-url "$pg?options[search_path]=$schema"
  for total in ${INGESTPG_RATES:-5000 15000 30000}; do
    bench "ingestpg-$total" --connections 200 --rooms 100 --users-per-room 2 --senders 200 --total-rate "$total" \
      --warmup 2 --duration 10
  done
  stop_server
  psql -q "$pg" -c "DROP SCHEMA $schema CASCADE"
}

scenario_acklatency() {
  # Acknowledgement latency on SQLite (fsync per batch) at 1,000 msg/s offered (10 senders × 100/s in
  # 10 rooms of 10) and on a quiet server at 80 msg/s; the report flags a 40 ms band (delayed ACKs).
  for round in 1 2 3; do
    start_server
    bench "acklatency-1000-$round" --connections 100 --rooms 10 --senders 10 --rate 100 --warmup 2 --duration 15
    bench "acklatency-80-$round" --connections 100 --rooms 10 --senders 4 --rate 20 --warmup 2 --duration 15
    stop_server
  done
}

scenario_loginstorm() {
  # LOGINS (default 200) logins at once against the default argon2id cost (19 MiB, 2 passes), a fresh
  # server per round: answers, latency, server RSS before / peak / after.
  local saved="$ARGON2_FLAGS"; ARGON2_FLAGS=""
  for round in 1 2 3; do
    start_server
    bench "loginstorm-${LOGINS:-200}-$round" --scenario logins --connections "${LOGINS:-200}"
    stop_server
  done
  ARGON2_FLAGS="$saved"
}

scenario_recovery() {
  start_server
  bench recovery --scenario recovery --recovery-messages 1000 --recovery-runs 9
  stop_server
}

scenario_slow() {
  # Alternating on one server, twice: no slow readers, then 5% that stop reading. The server gets a
  # small send queue and large bodies so the slow readers overflow it within the run.
  start_server --send-queue 128
  for round in 1 2; do
    for frac in 0 0.05; do
      bench "slow-$frac-$round" --connections 1000 --rooms 10 --senders 10 --rate 50 --body-bytes 2048 \
        --slow-fraction "$frac" --warmup 2 --duration 20
    done
  done
  stop_server
}

scenario_coalesce() {
  # The fan-out room at 250k deliveries/s with write coalescing off and on (--write-coalesce-ms),
  # alternating fresh servers, two rounds.
  for round in 1 2; do
    for ms in ${COALESCE_MS:-0 5 10 20}; do
      start_server --write-coalesce-ms "$ms"
      bench "coalesce-$ms-$round" --connections 1000 --rooms 1 --users-per-room 1000 --senders 10 --rate 25 \
        --warmup 2 --duration 10
      stop_server
    done
  done
}

scenario_transports() {
  # One room of 100, 10 senders at 10 msg/s: receivers over WebSocket (coalescing off and default),
  # SSE and TCP, on one server per round, two rounds.
  for round in 1 2; do
    TCP_LISTEN=127.0.0.1:0 start_server --write-coalesce-ms 0
    local tcp; tcp="$(grep -o 'nc [0-9.]* [0-9]*' "$OUT/server.out" | awk '{print $2":"$3}')"
    local flags=(--connections 100 --rooms 1 --senders 10 --rate 10 --warmup 2 --duration 10)
    bench "transports-ws-c0-$round" "${flags[@]}"
    bench "transports-sse-$round" --transport sse "${flags[@]}"
    bench "transports-tcp-$round" --transport tcp --tcp-addr "$tcp" "${flags[@]}"
    stop_server
    start_server --write-coalesce-ms 20
    bench "transports-ws-c20-$round" "${flags[@]}"
    stop_server
  done
}

scenario_twonode() {
  # Fan-out across two nodes through Redis, against the same two nodes with everyone on one of them:
  # the difference is the broker hop. Both nodes share core 0 (as one node had it alone), PostgreSQL
  # (PARLEY_BENCH_POSTGRES_URL, a fresh schema) and Redis (PARLEY_BENCH_REDIS_URL).
  local pg="${PARLEY_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
  local redis="${PARLEY_BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
  local schema="parley_bench_$$"
  psql -q "$pg" -c "CREATE SCHEMA $schema"
  local flags=(--database-url "$pg?options[search_path]=$schema" --redis-url "$redis" --redis-prefix "$schema"
    --jwt-secret "bench-secret-$schema")
  start_server "${flags[@]}"; local url_a="$URL" pid_a="$SERVER_PID"
  start_server "${flags[@]}"; local url_b="$URL"
  for round in 1 2 3; do
    for rate in ${TWONODE_RATES:-1 10 25}; do
      URL="$url_a" SERVER_PID="$pid_a" bench "twonode-same-r$rate-$round" --connections 1000 --rooms 1 \
        --users-per-room 1000 --senders 10 --rate "$rate" --warmup 2 --duration 10
      URL="$url_a" SERVER_PID="$pid_a" bench "twonode-cross-r$rate-$round" --receiver-url "$url_b" \
        --connections 1000 --rooms 1 --users-per-room 1000 --senders 10 --rate "$rate" --warmup 2 --duration 10
    done
  done
  stop_server
  psql -q "$pg" -c "DROP SCHEMA $schema CASCADE"
  redis-cli -u "$redis" --scan --pattern "$schema:*" | xargs -r redis-cli -u "$redis" del >/dev/null
}

scenario_bigroom() {
  # A connect storm into one room of 10,000 members (10,000 connections over three source addresses),
  # then 10 senders at 1 msg/s each: connect time (first attempt → last hello), RSS per connection,
  # every message delivered to all.
  start_server
  for round in ${BIGROOM_ROUNDS:-1 2 3}; do
    bench "bigroom-$round" --connections 10000 --rooms 1 --users-per-room 10000 --senders 10 --rate 1 \
      --warmup 1 --duration 5 --source-addrs 127.0.0.2,127.0.0.3,127.0.0.4 --connect-concurrency 1000 \
      --prefix "big$round"
  done
  stop_server
}

scenario_profile() {
  # The fan-out scenario at 250k deliveries/s (1,000 members, 10 senders × 25 msg/s) with the metrics
  # listener on: a CPU profile (pprof protobuf) and a flame graph of the server, PROFILE_SECS (10) each,
  # taken through /debug/pprof while the load runs; a heap profile too when the binary has jemalloc.
  # Written to $PROFILE_DIR (default target/bench/profiles) as fanout-<label>.{pb.gz,svg,heap.pb.gz}.
  local dir="${PROFILE_DIR:-$OUT/profiles}" label="${PROFILE_LABEL:-$(git -C "$ROOT" rev-parse --short HEAD)}"
  local secs="${PROFILE_SECS:-10}" mport="${PROFILE_METRICS_PORT:-19091}"
  mkdir -p "$dir"
  start_server --metrics-listen "127.0.0.1:$mport"
  bench "profile-fanout" --connections 1000 --rooms 1 --users-per-room 1000 --senders 10 --rate 25 \
    --warmup 2 --duration $((2 * secs + 6)) &
  local gen=$!
  # Connects and set-up first: sample once messages flow (100,000 delivered: past the first second).
  for _ in $(seq 1 600); do
    local n; n="$(curl -sf "http://127.0.0.1:$mport/metrics" | awk '/^parley_messages_delivered_total/ {s += $2} END {printf "%d", s}')"
    [ "${n:-0}" -ge 100000 ] && break
    sleep 0.2
  done
  curl -sf -o "$dir/fanout-$label.pb.gz" "http://127.0.0.1:$mport/debug/pprof/profile?seconds=$secs"
  curl -sf -o "$dir/fanout-$label.svg" "http://127.0.0.1:$mport/debug/pprof/flamegraph?seconds=$secs"
  curl -s -o "$dir/fanout-$label.heap.pb.gz" -w '%{http_code}\n' "http://127.0.0.1:$mport/debug/pprof/heap" |
    grep -q '^200$' || rm -f "$dir/fanout-$label.heap.pb.gz"
  wait "$gen"
  stop_server
  ls -l "$dir" >&2
}

cpu_ticks() { # pid → utime+stime in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}
cpu_ns() { # pid → CPU time of all its threads in nanoseconds (schedstat: finer than the 10 ms ticks)
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{n += $1} END {printf "%d\n", n}'
}

# A private Redis for the scenarios that measure its CPU (the shared one serves other clients too):
# one server, or with REDIS_MODE=cluster a Redis Cluster of REDIS_MASTERS (default 3) masters, its
# cluster bus ports 1000 above, all below the ephemeral range. Sets REDIS_URL (what --redis-url gets),
# REDIS_PORTS and REDIS_PIDS.
REDIS_PIDS=()
REDIS_PORTS=()
start_redis() {
  local base="${PARLEY_BENCH_REDIS_PORT:-$((10000 + RANDOM % 20000))}" n=1 extra=()
  if [ "${REDIS_MODE:-single}" = cluster ]; then
    n="${REDIS_MASTERS:-3}"
  fi
  REDIS_PORTS=(); REDIS_PIDS=()
  for i in $(seq 0 $((n - 1))); do
    local port=$((base + i))
    extra=()
    [ "$n" -gt 1 ] && extra=(--cluster-enabled yes --cluster-port $((port + 1000)) --cluster-config-file "nodes-$port.conf"
      --cluster-node-timeout 2000 --dir "$OUT")
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --pidfile "$OUT/redis-$port.pid" --logfile "$OUT/redis-$port.log" "${extra[@]}"
    for _ in $(seq 1 50); do [ -s "$OUT/redis-$port.pid" ] && break; sleep 0.1; done
    REDIS_PORTS+=("$port"); REDIS_PIDS+=("$(cat "$OUT/redis-$port.pid")")
  done
  if [ "$n" -gt 1 ]; then
    local addrs=() seeds=()
    for port in "${REDIS_PORTS[@]}"; do addrs+=("127.0.0.1:$port"); seeds+=("redis://127.0.0.1:$port"); done
    redis-cli --cluster create "${addrs[@]}" --cluster-yes >/dev/null
    for port in "${REDIS_PORTS[@]}"; do
      until redis-cli -p "$port" cluster info | grep -q cluster_state:ok; do sleep 0.1; done
    done
    REDIS_URL="$(IFS=,; echo "${seeds[*]}")"
  else
    REDIS_URL="redis://127.0.0.1:${REDIS_PORTS[0]}"
  fi
  REDIS_PID="${REDIS_PIDS[0]}"
}
stop_redis() {
  for pid in "${REDIS_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for port in "${REDIS_PORTS[@]}"; do rm -f "$OUT/nodes-$port.conf"; done
  REDIS_PIDS=(); REDIS_PORTS=(); REDIS_PID=""
}
redis_ticks() { # CPU ticks of every private Redis process
  local t=0; for pid in "${REDIS_PIDS[@]}"; do t=$((t + $(cpu_ticks "$pid"))); done; echo "$t"
}
redis_publishes() { # PUBLISH + SPUBLISH calls served, over every private Redis process
  local t=0
  for port in "${REDIS_PORTS[@]}"; do
    t=$((t + $(redis-cli -p "$port" info commandstats | tr -d '\r' |
      awk -F'[:=,]' '/^cmdstat_(publish|spublish):/ {n += $3} END {print n + 0}')))
  done
  echo "$t"
}

cluster_flags() { # schema → flags for a node of that cluster
  local pg="${PARLEY_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
  echo --database-url "$pg?options[search_path]=$1" --redis-url "$REDIS_URL" \
    --redis-prefix "$1" --jwt-secret "bench-secret-$1"
}

scenario_foreign() {
  # The cost of a foreign room's traffic on a node: two nodes, all 200 members of one room on node A,
  # 10 senders × 100 msg/s for 10 s; node B has no follower of that room. Records B's CPU over an idle
  # window (FOREIGN_IDLE_SECS, its own upkeep) and then over the bench (set-up, connects, traffic; from
  # schedstat, in ns), so B's cost per event of A's room is (window − idle rate × window) / events; and
  # A's and Redis's CPU over the bench (clock ticks).
  local pg="${PARLEY_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
  start_redis
  for round in ${FOREIGN_ROUNDS:-1 2 3}; do
    local schema="parley_bench_foreign_$$_$round"
    psql -q "$pg" -c "CREATE SCHEMA $schema"
    # shellcheck disable=SC2046
    start_server $(cluster_flags "$schema"); local pid_a="$SERVER_PID" url_a="$URL"
    # shellcheck disable=SC2046
    start_server $(cluster_flags "$schema"); local pid_b="$SERVER_PID"
    # Node B's own upkeep first (heartbeats, timers): the same length of time with no traffic at all.
    local i0 i1; i0="$(cpu_ns "$pid_b")"; sleep "${FOREIGN_IDLE_SECS:-10}"; i1="$(cpu_ns "$pid_b")"
    local b0 r0 a0 p0; b0="$(cpu_ns "$pid_b")"; r0="$(redis_ticks)"; a0="$(cpu_ticks "$pid_a")"; p0="$(redis_publishes)"
    local t0; t0="$(date +%s.%N)"
    URL="$url_a" SERVER_PID="$pid_a" bench "foreign-$round" --connections 200 --rooms 1 --users-per-room 200 \
      --senders 10 --rate 100 --warmup 0 --duration 10
    local b1 r1 a1 p1 t1; b1="$(cpu_ns "$pid_b")"; r1="$(redis_ticks)"; a1="$(cpu_ticks "$pid_a")"; p1="$(redis_publishes)"
    t1="$(date +%s.%N)"
    echo "{\"node_b_cpu_s\": $(echo "($b1 - $b0) / 10^9" | bc -l), \"node_b_idle_cpu_s\": $(echo "($i1 - $i0) / 10^9" | bc -l), \"idle_secs\": ${FOREIGN_IDLE_SECS:-10}, \"window_secs\": $(echo "$t1 - $t0" | bc -l), \"node_a_cpu_s\": $(echo "($a1 - $a0) / $(getconf CLK_TCK)" | bc -l), \"redis_cpu_s\": $(echo "($r1 - $r0) / $(getconf CLK_TCK)" | bc -l), \"redis_publishes\": $((p1 - p0))}" \
      >"$OUT/foreign-$round-cpu.json"
    cat "$OUT/foreign-$round-cpu.json" >&2
    stop_server
    psql -q "$pg" -c "DROP SCHEMA $schema CASCADE"
  done
  stop_redis
}

scenario_cluster() {
  # N nodes (CLUSTER_NODES, default 4) on one PostgreSQL and a private Redis, all on core 0; each node
  # has its own room of 100 members with 5 senders at 20 msg/s (local traffic), and one shared room of
  # 100 members has its members spread over every node with 5 senders on node 1 (foreign traffic for
  # every other node). Records each node's CPU and Redis's over the window.
  local pg="${PARLEY_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
  local n="${CLUSTER_NODES:-4}" schema="parley_bench_cluster_$$"
  start_redis
  psql -q "$pg" -c "CREATE SCHEMA $schema"
  local urls=() pids=()
  for _ in $(seq 1 "$n"); do
    # shellcheck disable=SC2046
    start_server $(cluster_flags "$schema"); urls+=("$URL"); pids+=("$SERVER_PID")
  done
  local before=() r0 p0; r0="$(redis_ticks)"; p0="$(redis_publishes)"
  for pid in "${pids[@]}"; do before+=("$(cpu_ticks "$pid")"); done
  local gens=()
  for i in $(seq 0 $((n - 1))); do
    taskset -c 1 "$BIN" bench --url "${urls[$i]}" --server-pid "${pids[$i]}" --json --connections 100 --rooms 1 \
      --users-per-room 100 --senders 5 --rate 20 --warmup 2 --duration 10 --prefix "own$i" \
      >"$OUT/cluster-${REDIS_MODE:-single}-own-$i.json" &
    gens+=($!)
  done
  # The shared room: receivers on every node but the first (--receiver-url), senders on the first.
  for i in $(seq 1 $((n - 1))); do
    taskset -c 1 "$BIN" bench --url "${urls[0]}" --receiver-url "${urls[$i]}" --json --connections 100 --rooms 1 \
      --users-per-room 100 --senders 5 --rate 20 --warmup 2 --duration 10 --prefix "shared$i" \
      >"$OUT/cluster-${REDIS_MODE:-single}-shared-$i.json" &
    gens+=($!)
  done
  for g in "${gens[@]}"; do wait "$g"; done
  local r1 p1; r1="$(redis_ticks)"; p1="$(redis_publishes)"
  local tck; tck="$(getconf CLK_TCK)"
  {
    echo "{\"nodes\": $n, \"redis\": \"${REDIS_MODE:-single}\", \"redis_cpu_s\": $(echo "($r1 - $r0) / $tck" | bc -l), \"redis_publishes\": $((p1 - p0)), \"node_cpu_s\": ["
    for i in $(seq 0 $((n - 1))); do
      echo "$([ "$i" -gt 0 ] && echo ,)$(echo "($(cpu_ticks "${pids[$i]}") - ${before[$i]}) / $tck" | bc -l)"
    done
    echo "]}"
  } >"$OUT/cluster-${REDIS_MODE:-single}-cpu.json"
  cat "$OUT/cluster-${REDIS_MODE:-single}-cpu.json" >&2
  stop_server
  psql -q "$pg" -c "DROP SCHEMA $schema CASCADE"
  stop_redis
}

for s in "${@:-fanout manyrooms idle ingest recovery slow}"; do
  for one in $s; do "scenario_$one"; done
done
