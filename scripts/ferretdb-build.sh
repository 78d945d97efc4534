#!/usr/bin/env bash
# Build FerretDB v1.24.2 (SQLite backend) with Go through the module proxy into a cache outside the repo.
# Idempotent: does nothing when the binary already exists. Prints the binary path on stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out_dir="${FERRETDB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tronpay/ferretdb-v1.24.2}"
bin="$out_dir/ferretdb"

if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null || { echo "ferretdb-build: Go toolchain not found on PATH" >&2; exit 1; }

mkdir -p "$out_dir"
tmp="$(mktemp "$out_dir/ferretdb.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
start=$(date +%s)
echo "ferretdb-build: building FerretDB v1.24.2 with $(go version | cut -d' ' -f3) (a cold build takes minutes)" >&2
# -mod=readonly: go.sum in scripts/ferretdb pins every module; the build never rewrites it.
(cd "$here/ferretdb" && GOFLAGS=-mod=readonly go build -trimpath -o "$tmp" .)
chmod +x "$tmp"
mv -f "$tmp" "$bin"   # atomic: a half-written binary is never seen as built
trap - EXIT
echo "ferretdb-build: built $bin in $(( $(date +%s) - start ))s" >&2
echo "$bin"
