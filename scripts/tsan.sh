#!/usr/bin/env bash
# Runs Parley's unit tests (and, when asked, integration tests) under ThreadSanitizer on nightly.
#
# Nightly's rust-src component is not installed here and nothing can be downloaded, so the standard
# library cannot be rebuilt with the sanitizer (-Zbuild-std). Instead every crate of the build is
# instrumented against nightly's prebuilt, uninstrumented std: rustc refuses that mix unless told
# `-Cunsafe-allow-abi-mismatch=sanitizer`. TSan still intercepts thread creation, pthread and the
# instrumented (inlined, generic) parts of std such as atomics, Arc and channels; what std does in its own
# compiled code is invisible, so a report through std frames can be a false positive: those go, with a
# reason, to scripts/tsan.supp. Results and findings: docs/CONFORMANCE.md.
#
# Build products go to target/tsan (a full rebuild of the dependency tree); delete it afterwards
# (`rm -rf target/tsan`) if disk is short.
#
#   scripts/tsan.sh              # library unit tests
#   scripts/tsan.sh --test it ws # or any `cargo test` selection (integration tests run PARLEY_BIN)
set -euo pipefail
cd "$(dirname "$0")/.."
rustup toolchain list | grep -q '^nightly' || { echo "nightly toolchain not installed" >&2; exit 2; }
target="$(rustc +nightly -vV | sed -n 's/^host: //p')"
# --target keeps build scripts and proc macros (host code) uninstrumented.
export RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer -Cdebuginfo=line-tables-only"
export RUSTDOCFLAGS="$RUSTFLAGS"
# report every race, fail at the end; both stacks of a lock-order report.
export TSAN_OPTIONS="${TSAN_OPTIONS:-second_deadlock_stack=1 halt_on_error=0 exitcode=66 suppressions=$PWD/scripts/tsan.supp}"
selection=("$@")
if [ ${#selection[@]} -eq 0 ]; then selection=(--lib); fi
if printf '%s\n' "${selection[@]}" | grep -qx -- '--test'; then
  # Integration tests run the `parley` binary: the sanitized one.
  cargo +nightly build --target "$target" --target-dir target/tsan --bin parley
  export PARLEY_BIN="$PWD/target/tsan/$target/debug/parley"
fi
cargo +nightly test --target "$target" --target-dir target/tsan -p parley "${selection[@]}"
