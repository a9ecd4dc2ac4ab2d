#!/usr/bin/env bash
# Redis CPU per publish: single Redis (PUBLISH, k subscribers) and a 3-master cluster (PUBLISH vs SPUBLISH,
# CPU summed over the three masters). CPU from /proc/<pid>/stat (utime+stime).
# Usage: scripts/redis-publish-cost.sh (N publishes per case, default 200000; 300-byte payloads, about
# one encoded message; redis-benchmark -c 4 -P 32). Private servers on ports 21500–21512 (cluster bus
# 22510–22512), stopped at the end; needs redis-server, redis-cli, redis-benchmark, bc.
set -euo pipefail
DIR="$(mktemp -d -t parley-redis-cost.XXXXXX)"
N=${N:-200000}
PAY=$(head -c 300 /dev/zero | tr '\0' x)
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
TCK=$(getconf CLK_TCK)
measure() { # label, cmd, port, subs-port, k, pids...
  local label=$1 cmd=$2 port=$3 sport=$4 k=$5; shift 5
  local subs=()
  for i in $(seq 1 "$k"); do
    local sub=SUBSCRIBE; [ "$cmd" = SPUBLISH ] && sub=SSUBSCRIBE
    redis-cli -p "$sport" $sub benchch >/dev/null & subs+=($!)
  done
  sleep 0.5
  local t0; t0=$(ticks "$@")
  redis-benchmark -p "$port" -n "$N" -c 4 -P 32 -q $cmd benchch "$PAY" >/dev/null
  local t1; t1=$(ticks "$@")
  for s in "${subs[@]}"; do kill "$s"; done
  echo "$label k=$k: $(echo "($t1 - $t0) * 1000000 / $TCK / $N" | bc -l | cut -c1-5) µs Redis CPU per publish"
}
# Single Redis.
redis-server --port 21500 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --pidfile "$DIR"/s.pid --logfile "$DIR"/s.log
sleep 0.5; S=$(cat "$DIR"/s.pid)
for k in 0 1 4; do measure "single PUBLISH" PUBLISH 21500 21500 $k $S; done
kill $S
# Cluster of three masters.
PIDS=()
for p in 21510 21511 21512; do
  redis-server --port $p --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --cluster-enabled yes \
    --cluster-port $((p + 1000)) --cluster-config-file "$DIR"/n-$p.conf --dir "$DIR" \
    --pidfile "$DIR"/c$p.pid --logfile "$DIR"/c$p.log
done
sleep 0.5
for p in 21510 21511 21512; do PIDS+=($(cat "$DIR"/c$p.pid)); done
redis-cli --cluster create 127.0.0.1:21510 127.0.0.1:21511 127.0.0.1:21512 --cluster-yes >/dev/null
for p in 21510 21511 21512; do until redis-cli -p $p cluster info | grep -q cluster_state:ok; do sleep 0.1; done; done
SLOT=$(redis-cli -p 21510 cluster keyslot benchch)
OWNER=$(redis-cli -p 21510 cluster nodes | awk -v s=$SLOT '$3 ~ /master/ {for (i=9;i<=NF;i++){split($i,r,"-"); if (r[2]=="") r[2]=r[1]; if (s>=r[1] && s<=r[2]) {split($2,a,"[:@]"); print a[2]}}}')
echo "benchch: slot $SLOT on :$OWNER"
for k in 0 1 4; do
  measure "cluster PUBLISH (3 masters summed)" PUBLISH $OWNER $OWNER $k "${PIDS[@]}"
  measure "cluster SPUBLISH (3 masters summed)" SPUBLISH $OWNER $OWNER $k "${PIDS[@]}"
done
for p in "${PIDS[@]}"; do kill $p; done
rm -rf "$DIR"
