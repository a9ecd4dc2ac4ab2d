#!/usr/bin/env bash
# WebSocket conformance: runs the Autobahn|Testsuite fuzzing-client cases (kosoku, a Python 3 port)
# against a private Parley and summarises the verdicts. Results and what they mean: docs/CONFORMANCE.md.
#
#   scripts/autobahn.sh                         # build the release binary, run both passes
#   PARLEY_BIN=path/to/parley scripts/autobahn.sh
#
# Two passes, each against a fresh server: "default" runs every case but 9.* with Parley's default
# --max-frame-bytes (65536); "big" runs the 9.* cases (messages up to 16 MiB) with
# --max-frame-bytes 16777216, since under the default they are refused with 1009 by design.
# Cases 12.* and 13.* are permessage-deflate, which axum does not offer: always excluded.
# Environment: PARLEY_BIN (skip the build), AB_OUT (reports; default $CARGO_TARGET_DIR/autobahn or
# target/autobahn), AB_PARALLEL (cases at once; default 2), AB_PASSES (default "default big").
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${AB_OUT:-${CARGO_TARGET_DIR:-target}/autobahn}
PARALLEL=${AB_PARALLEL:-2}

if [[ -z "${PARLEY_BIN:-}" ]]; then
    cargo build --release --bin parley
    PARLEY_BIN="${CARGO_TARGET_DIR:-target}/release/parley"
fi

if [[ ! -x .venv-ab/bin/kosoku ]]; then
    python3 -m venv .venv-ab
    .venv-ab/bin/pip install --quiet kosoku==0.1.0
fi

# A free port below 32768 (above it, ports collide with the kernel's ephemeral client ports).
free_port() {
    python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
PY
}

DATA=
SERVER_PID=
stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
    if [[ -n "$DATA" ]]; then
        rm -rf "$DATA"
        DATA=
    fi
}
trap stop_server EXIT

# run_pass NAME MAX_FRAME_BYTES KOSOKU_CASE_ARGS...
run_pass() {
    local name=$1 max_frame=$2
    shift 2
    local port base token dir="$OUT/$name"
    port=$(free_port)
    DATA=$(mktemp -d)
    "$PARLEY_BIN" serve --listen "127.0.0.1:$port" --tcp-listen off --data-dir "$DATA" \
        --max-frame-bytes "$max_frame" --argon2-memory-kib 1024 --argon2-iterations 1 \
        >"$DATA/server.log" 2>&1 &
    SERVER_PID=$!
    base="http://127.0.0.1:$port"
    for _ in $(seq 100); do
        curl -fs "$base/healthz" >/dev/null 2>&1 && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$DATA/server.log" >&2; echo "server exited" >&2; exit 1; }
        sleep 0.1
    done
    curl -fs "$base/healthz" >/dev/null
    curl -fs -XPOST "$base/api/v1/register" -H 'content-type: application/json' \
        -d '{"username":"autobahn","password":"autobahn-password"}' >/dev/null
    token=$(curl -fs -XPOST "$base/api/v1/login" -H 'content-type: application/json' \
        -d '{"username":"autobahn","password":"autobahn-password"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

    rm -rf "$dir"
    mkdir -p "$dir"
    echo "== pass '$name': --max-frame-bytes $max_frame, port $port"
    set +e
    .venv-ab/bin/kosoku -m fuzzingclient -p "$PARALLEL" -x '12.*' -x '13.*' "$@" -o "$dir" \
        "ws://127.0.0.1:$port/ws?token=$token" >"$dir/kosoku.log" 2>&1
    set -e
    tail -n 1 "$dir/kosoku.log"
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$DATA/server.log" >&2; echo "the server died during the run" >&2; exit 1; }
    if grep -Eq 'panicked|ERROR' "$DATA/server.log"; then
        grep -E 'panicked|ERROR' "$DATA/server.log" >&2
        echo "the server logged errors" >&2
        exit 1
    fi
    stop_server
    python3 scripts/autobahn-summary.py "$dir" "$max_frame" || failed=1
}

echo "kosoku $(.venv-ab/bin/pip show kosoku 2>/dev/null | sed -n 's/^Version: //p'), Parley $PARLEY_BIN," \
    "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%FT%TZ)"
failed=0
for pass in ${AB_PASSES:-default big}; do
    case $pass in
        default) run_pass default 65536 -x '9.*' ;;
        big) run_pass big 16777216 -i '9.*' ;;
        *) echo "unknown pass $pass" >&2; exit 2 ;;
    esac
done
exit "$failed"
