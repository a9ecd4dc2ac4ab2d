#!/usr/bin/env bash
# Checks the deployment files without Docker (it cannot run here):
# - compose.yaml against the compose-spec JSON schema (check-jsonschema's vendored copy);
# - deploy/nginx.conf with Debian's `nginx -t` (the upstream host names, which only resolve inside the
#   compose network, are replaced by 127.0.0.1 in a temporary copy);
# - the Dockerfile's dependency layer: its COPY lines name every workspace member's manifest, and the
#   workspace they and its placeholder sources make resolves with `cargo metadata --locked`.
# Installs what it needs (a venv under target/, Debian's nginx with the stream module); runs no server.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CARGO_TARGET_DIR:-target}/ci-venv"

if [ ! -x "$venv/bin/check-jsonschema" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'check-jsonschema>=0.29'
fi
echo "-- compose.yaml against the compose-spec schema"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec compose.yaml

if ! command -v nginx >/dev/null || [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "nginx (with libnginx-mod-stream) is not installed and this is not root: install it first" >&2
    exit 1
  fi
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq nginx-light libnginx-mod-stream >/dev/null
fi
echo "-- deploy/nginx.conf with nginx -t"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
{
  echo "load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
  echo "pid $tmp/nginx.pid;"
  echo "error_log stderr;"
  sed -E 's/\bparley[0-9]+:/127.0.0.1:/g' deploy/nginx.conf
} > "$tmp/nginx.conf"
nginx -t -q -c "$tmp/nginx.conf" -e stderr
echo "-- Dockerfile dependency layer: every workspace member's manifest is copied"
members="$(cargo metadata --no-deps --format-version 1 --offline | python3 -c '
import json, os, sys
root = os.getcwd()
for p in json.load(sys.stdin)["packages"]:
    d = os.path.relpath(os.path.dirname(p["manifest_path"]), root)
    if d != ".":
        print(d)')"
layer="$tmp/layer"
mkdir -p "$layer/src" "$layer/benches"
cp Cargo.toml Cargo.lock build.rs "$layer/"
echo 'fn main() {}' > "$layer/src/main.rs"; touch "$layer/src/lib.rs"; echo 'fn main() {}' > "$layer/benches/hot_paths.rs"
for m in $members; do
  grep -q "^COPY $m/Cargo.toml $m/\$" Dockerfile || { echo "Dockerfile does not copy $m/Cargo.toml into its dependency layer" >&2; exit 1; }
  grep -q "$m/src/lib.rs" Dockerfile || { echo "Dockerfile makes no placeholder $m/src/lib.rs" >&2; exit 1; }
  mkdir -p "$layer/$m/src"; cp "$m/Cargo.toml" "$layer/$m/"; touch "$layer/$m/src/lib.rs"
done
(cd "$layer" && cargo metadata --locked --format-version 1 >/dev/null)
echo "deploy files OK"
