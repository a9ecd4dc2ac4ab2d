#!/usr/bin/env bash
# Runs Parley's unit tests (and, when asked, integration tests) under ThreadSanitizer on nightly.
#
# The standard library is rebuilt with the sanitizer (-Zbuild-std), which needs nightly's rust-src
# component: the script installs it with rustup when it is missing (it comes from the Rust registry's
# distribution server, reachable here). Only if that fails does it fall back to instrumenting every crate
# against nightly's prebuilt, uninstrumented std (`-Cunsafe-allow-abi-mismatch=sanitizer`): TSan then
# still sees Parley, its dependencies and the inlined parts of std, but not std's own compiled code, so a
# report through std frames can be a false positive (those go, with a reason, to scripts/tsan.supp).
# Results and findings: docs/CONFORMANCE.md.
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
has_src() { rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; }
has_src || rustup component add rust-src --toolchain nightly >&2 || true
build_std=()
if has_src; then
  export RUSTFLAGS="-Zsanitizer=thread -Cdebuginfo=line-tables-only"
  build_std=(-Zbuild-std)
  echo "tsan: std rebuilt with the sanitizer (-Zbuild-std)" >&2
else
  export RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer -Cdebuginfo=line-tables-only"
  echo "tsan: rust-src unavailable; prebuilt std, uninstrumented (see the header)" >&2
fi
export RUSTDOCFLAGS="$RUSTFLAGS"
# report every race, fail at the end; both stacks of a lock-order report.
export TSAN_OPTIONS="${TSAN_OPTIONS:-second_deadlock_stack=1 halt_on_error=0 exitcode=66 suppressions=$PWD/scripts/tsan.supp}"
selection=("$@")
if [ ${#selection[@]} -eq 0 ]; then selection=(--lib); fi
if printf '%s\n' "${selection[@]}" | grep -qx -- '--test'; then
  # Integration tests run the `parley` binary: the sanitized one.
  cargo +nightly build "${build_std[@]}" --target "$target" --target-dir target/tsan --bin parley
  export PARLEY_BIN="$PWD/target/tsan/$target/debug/parley"
fi
cargo +nightly test "${build_std[@]}" --target "$target" --target-dir target/tsan -p parley "${selection[@]}"
