#!/usr/bin/env bash
# Build FerretDB v1.24.2 (SQLite backend, with the write serialiser of scripts/ferretdb) with Go through the
# module proxy into a cache outside the repo. Prints the binary path on stdout.
# scripts/ferretdb/patches/*.patch change FerretDB's own sources: they are applied (git apply, no fuzz) to a
# copy of the downloaded module, which the build uses in its place; the module cache and go.sum stay as they
# are.
# Idempotent: the cache directory is keyed by a hash of scripts/ferretdb, so a source change rebuilds and an
# unchanged tree reuses the binary. FERRETDB_BIN=/path/to/ferretdb skips the build and uses that binary.
set -euo pipefail

if [[ -n "${FERRETDB_BIN:-}" ]]; then
  [[ -x "$FERRETDB_BIN" ]] || { echo "ferretdb-build: FERRETDB_BIN=$FERRETDB_BIN is not executable" >&2; exit 1; }
  echo "$FERRETDB_BIN"
  exit 0
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
key="$(cd "$here/ferretdb" && cat go.mod go.sum *.go patches/*.patch | sha256sum | cut -c1-12)"
out_dir="${FERRETDB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tronpay}/ferretdb-v1.24.2-$key"
bin="$out_dir/ferretdb"

if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null || { echo "ferretdb-build: Go toolchain not found on PATH" >&2; exit 1; }

mkdir -p "$out_dir"
tmp="$(mktemp "$out_dir/ferretdb.XXXXXX")"
work="$(mktemp -d "$out_dir/src.XXXXXX")"  # per build: concurrent builds never share one
trap 'rm -rf "$tmp" "$work"' EXIT
start=$(date +%s)
echo "ferretdb-build: building FerretDB v1.24.2 with $(go version | cut -d' ' -f3) (a cold build takes minutes)" >&2
# -mod=readonly: go.sum in scripts/ferretdb pins every module; the build never rewrites it.
# The patches: FerretDB's module copied to $work/FerretDB, patched there, and built in its place through a
# `replace` in a copy of go.mod (-modfile; go.sum is copied beside it and never changes).
mod_dir="$(cd "$here/ferretdb" && GOFLAGS=-mod=readonly go mod download -json github.com/FerretDB/FerretDB |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$mod_dir" ]] || { echo "ferretdb-build: FerretDB module source not found" >&2; exit 1; }
cp -R "$mod_dir" "$work/FerretDB" && chmod -R u+w "$work/FerretDB"
for patch in "$here"/ferretdb/patches/*.patch; do
  # GIT_CEILING_DIRECTORIES: never inside a repository above the cache (git apply would skip its paths).
  (cd "$work/FerretDB" && GIT_CEILING_DIRECTORIES="$work" git apply -p1 "$patch") ||
    { echo "ferretdb-build: $(basename "$patch") does not apply to FerretDB v1.24.2" >&2; exit 1; }
done
{ cat "$here/ferretdb/go.mod"; echo; echo "replace github.com/FerretDB/FerretDB => $work/FerretDB"; } > "$work/go.mod"
cp "$here/ferretdb/go.sum" "$work/go.sum"
(cd "$here/ferretdb" && GOFLAGS=-mod=readonly go build -trimpath -modfile "$work/go.mod" -o "$tmp" .)
chmod +x "$tmp"
mv -f "$tmp" "$bin"   # atomic: a half-written binary is never seen as built
rm -rf "$work"
trap - EXIT
echo "ferretdb-build: built $bin in $(( $(date +%s) - start ))s" >&2
echo "$bin"
