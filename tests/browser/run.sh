#!/usr/bin/env bash
# End-to-end tests of Parley's web page in headless Chromium.
#
#   tests/browser/run.sh                     build the server (release) and run every test
#   PARLEY_BIN=path/to/parley run.sh         use that binary instead of building
#   run.sh chat.test.js                      run only some test files
#
# Installs what it needs when missing (Debian's chromium, playwright-core and axe-core through npm ci),
# starts one `parley serve` on a free loopback port with a throw-away data dir, runs the tests
# with node's test runner, and always stops the server. Screenshots go to target/browser/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y chromium
fi

if [ ! -d "$HERE/node_modules/playwright-core" ] || [ ! -d "$HERE/node_modules/axe-core" ]; then
  echo "== npm ci (playwright-core, axe-core)"
  (cd "$HERE" && npm ci --no-audit --no-fund)
fi

if [ -z "${PARLEY_BIN:-}" ]; then
  echo "== cargo build --release --bin parley"
  (cd "$ROOT" && cargo build --release --bin parley)
  PARLEY_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/parley"
fi
[ -x "$PARLEY_BIN" ] || { echo "no server binary at $PARLEY_BIN" >&2; exit 1; }

WORK="$(mktemp -d -t parley-browser.XXXXXX)"
SERVER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -s "$WORK/server.err" ]; then
    echo "== last lines of the server's log" >&2
    tail -n 40 "$WORK/server.err" >&2 || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK/data"
echo "== starting $PARLEY_BIN serve"
"$PARLEY_BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" \
  --argon2-memory-kib 1024 --argon2-iterations 1 --tcp-listen off \
  >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!

URL=""
for _ in $(seq 1 300); do
  URL="$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$WORK/server.out" 2>/dev/null | head -n 1 || true)"
  [ -n "$URL" ] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "the server exited before printing its URL" >&2
    cat "$WORK/server.out" "$WORK/server.err" >&2 || true
    exit 1
  fi
  sleep 0.1
done
[ -n "$URL" ] || { echo "the server printed no http://127.0.0.1:PORT/ line within 30 s" >&2; exit 1; }
echo "== server at $URL"

mkdir -p "$ROOT/target/browser"
cd "$HERE"
if [ "$#" -gt 0 ]; then FILES=("$@"); else FILES=(*.test.js); fi
PARLEY_URL="$URL" node --test --test-concurrency=1 --test-reporter=spec "${FILES[@]}"
