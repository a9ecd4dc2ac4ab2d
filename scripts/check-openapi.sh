#!/usr/bin/env bash
# Validates docs/openapi.json (generated from the code; `cargo test` checks it equals what the server
# serves) with openapi-spec-validator, installed into a venv under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CARGO_TARGET_DIR:-target}/ci-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ ! -x "$venv/bin/openapi-spec-validator" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'openapi-spec-validator>=0.7'
fi
"$venv/bin/openapi-spec-validator" docs/openapi.json
