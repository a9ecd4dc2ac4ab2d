#!/usr/bin/env bash
# Runs Parley's unit and integration tests under ThreadSanitizer (nightly, -Zsanitizer=thread).
# The standard library must be rebuilt with the sanitizer (-Zbuild-std), which needs nightly's rust-src
# component: this script installs it. Build products go to target/tsan (a full build of the dependency
# tree, several times slower than a debug build). Results and findings: docs/CONFORMANCE.md.
#
#   scripts/tsan.sh              # library unit tests and the integration tests
#   scripts/tsan.sh --lib        # or any `cargo test` selection
set -euo pipefail
cd "$(dirname "$0")/.."
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
rustup component add rust-src --toolchain nightly >/dev/null
target="$(rustc +nightly -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Zsanitizer=thread -Cdebuginfo=line-tables-only"
export RUSTDOCFLAGS="-Zsanitizer=thread"
# second_deadlock_stack: both stacks of a lock-order report; report every race, fail at the end.
export TSAN_OPTIONS="${TSAN_OPTIONS:-second_deadlock_stack=1 halt_on_error=0 exitcode=66 suppressions=$PWD/scripts/tsan.supp}"
# Integration tests run the `parley` binary: the sanitized one.
export PARLEY_BIN="$PWD/target/tsan/$target/debug/parley"
selection=("$@")
if [ ${#selection[@]} -eq 0 ]; then selection=(--lib --test it); fi
cargo +nightly build -Zbuild-std --target "$target" --target-dir target/tsan --bin parley
cargo +nightly test -Zbuild-std --target "$target" --target-dir target/tsan -p parley "${selection[@]}"
