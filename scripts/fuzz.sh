#!/usr/bin/env bash
# Fuzzes Parley's untrusted-input parsers with cargo-fuzz (libFuzzer, nightly, AddressSanitizer):
#   ws_frame  arbitrary bytes as a WebSocket text frame -> http::wire::decode_client_frame
#   tcp_line  arbitrary bytes, in reads of any size -> tcp::LineReader -> tcp::split_command -> parsers
# The checks live in fuzz/checks.rs; `cargo test` replays fuzz/corpus and fuzz/seeds through them on
# stable, so CI covers what fuzzing found without nightly.
#
#   scripts/fuzz.sh                 # each target for 300 s, then minimise fuzz/corpus/<target>
#   FUZZ_SECONDS=60 scripts/fuzz.sh tcp_line
#
# Environment: FUZZ_SECONDS (per target; default 300), FUZZ_TARGET_DIR (build directory; default
# $CARGO_TARGET_DIR/fuzz or fuzz/target). Crashes land in fuzz/artifacts/<target>/: fix the code,
# then add the input to fuzz/seeds/<target>/ so the replay test keeps it fixed.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${FUZZ_SECONDS:-300}
TARGET_DIR=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/fuzz}}
TARGET_DIR=${TARGET_DIR:-fuzz/target}
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(ws_frame tcp_line)

rustup toolchain list | grep -q '^nightly' || { echo "needs a nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# Longest input per target: a frame's structure shows in a few KiB; a few TCP lines of the 256-byte
# limit the harness uses.
max_len() {
    case $1 in
        ws_frame) echo 4096 ;;
        tcp_line) echo 2048 ;;
        *) echo 4096 ;;
    esac
}

HOST=$(rustc +nightly -vV | sed -n 's/^host: //p')
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$PWD/$TARGET_DIR ;; esac
mkdir -p "$TARGET_DIR"
cd fuzz
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "seeds/$t"
    echo "== $t: ${SECONDS_PER_TARGET}s"
    # New inputs go to corpus/<t>; seeds/<t> is read as well and never changed.
    cargo +nightly fuzz run -O --target-dir "$TARGET_DIR" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=512 -malloc_limit_mb=256 \
        -max_len="$(max_len "$t")" -timeout=10 -print_final_stats=1 2>"$TARGET_DIR/$t.log" ||
        { tail -n 40 "$TARGET_DIR/$t.log" >&2; echo "$t: fuzzing found a problem (fuzz/artifacts/$t/)" >&2; exit 1; }
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$TARGET_DIR/$t.log" || true
    # Minimise: the smallest set of inputs that covers the same edges (counters ignored), so the
    # committed corpus stays small.
    rm -rf "$TARGET_DIR/$t.min"
    mkdir -p "$TARGET_DIR/$t.min"
    ASAN_OPTIONS=detect_odr_violation=0 "$TARGET_DIR/$HOST/release/$t" -set_cover_merge=1 -use_counters=0 \
        -max_len="$(max_len "$t")" "$TARGET_DIR/$t.min" "corpus/$t" >"$TARGET_DIR/$t.cmin.log" 2>&1
    rm -rf "corpus/$t"
    mv "$TARGET_DIR/$t.min" "corpus/$t"
    echo "corpus/$t: $(find "corpus/$t" -type f | wc -l) inputs after minimising"
done
