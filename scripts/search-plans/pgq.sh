#!/usr/bin/env bash
# PostgreSQL search statement timings (BENCHMARKS.md, Search plans changed): 25 runs per query in psql.
# U=postgres://…/DB of a database seeded by scripts/bench-search.py (bench user id 1).
U=${U:?set U to the seeded database URL}
for q in "'ruzolo'" "'jasikadu'" "('ruzolo' <-> 'nebi')" "('lov':*)"; do
  qq=$(printf "%s" "$q" | sed "s/'/''/g")
  SQL="SELECT w.wr, w.ws FROM (SELECT m.room_id AS wr, m.seq AS ws, m.created_at AS wt FROM messages m WHERE m.room_id IN (SELECT mb.room_id FROM members mb WHERE mb.user_id = 1) AND m.search @@ to_tsquery('simple', '$qq') AND m.kind = 'text' AND NOT m.deleted ORDER BY m.created_at DESC, m.room_id DESC, m.seq DESC LIMIT 1050) w JOIN messages m ON m.room_id = w.wr AND m.seq = w.ws ORDER BY ts_rank(m.search, to_tsquery('simple', '$qq')) DESC, w.wt DESC LIMIT 21;"
  { echo '\timing on'; for i in $(seq 1 25); do echo "$SQL"; done; } | psql -q -o /dev/null $U 2>&1 | grep Time | awk -v q="$q" '{print $2}' | sort -n | awk -v q="$q" '{a[NR]=$1} END {print q, "n", NR, "p50", a[int(NR*0.5)+1], "max", a[NR]}'
done
