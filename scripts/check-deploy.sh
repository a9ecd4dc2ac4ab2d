#!/usr/bin/env bash
# Checks the deployment files without Docker (it cannot run here):
# - compose.yaml against the compose-spec JSON schema (check-jsonschema's vendored copy);
# - deploy/nginx.conf with Debian's `nginx -t` (the upstream host names, which only resolve inside the
#   compose network, are replaced by 127.0.0.1 in a temporary copy).
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
echo "deploy files OK"
