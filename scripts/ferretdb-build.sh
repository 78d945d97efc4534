#!/usr/bin/env bash
# Build FerretDB v1.24.2 (SQLite backend, with the write serialiser of scripts/ferretdb) with Go through the
# module proxy into a cache outside the repo. Prints the binary path on stdout.
# Idempotent: the cache directory is keyed by a hash of scripts/ferretdb, so a source change rebuilds and an
# unchanged tree reuses the binary. FERRETDB_BIN=/path/to/ferretdb skips the build and uses that binary.
set -euo pipefail

if [[ -n "${FERRETDB_BIN:-}" ]]; then
  [[ -x "$FERRETDB_BIN" ]] || { echo "ferretdb-build: FERRETDB_BIN=$FERRETDB_BIN is not executable" >&2; exit 1; }
  echo "$FERRETDB_BIN"
  exit 0
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
key="$(cd "$here/ferretdb" && cat go.mod go.sum *.go | sha256sum | cut -c1-12)"
out_dir="${FERRETDB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tronpay}/ferretdb-v1.24.2-$key"
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
