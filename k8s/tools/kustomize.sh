#!/usr/bin/env bash
# Build kustomize (sigs.k8s.io/kustomize/kustomize/v5) with Go through the module proxy into a cache outside
# the repo, then print its path. Idempotent: an existing binary is reused (about a minute cold, 0 s warm).
# Pinned: v5.8.1 builds with this machine's Go 1.26 (newer kustomize/api releases may need Go 1.27).
set -euo pipefail

version="${KUSTOMIZE_VERSION:-v5.8.1}"
out_dir="${TRONPAY_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tronpay/bin}"
bin="$out_dir/kustomize-$version"

if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null || { echo "kustomize.sh: Go toolchain not found on PATH" >&2; exit 1; }

mkdir -p "$out_dir"
gobin="$(mktemp -d "$out_dir/.kustomize.XXXXXX")"
trap 'rm -rf "$gobin"' EXIT
start=$(date +%s)
echo "kustomize.sh: building kustomize $version with $(go version | cut -d' ' -f3)" >&2
# GOTOOLCHAIN=local: never switch toolchains behind the caller's back; GOFLAGS cleared so a -mod setting
# meant for another module cannot break `go install pkg@version`.
(cd "$gobin" && GOBIN="$gobin" GOTOOLCHAIN=local GOFLAGS= go install "sigs.k8s.io/kustomize/kustomize/v5@$version")
mv -f "$gobin/kustomize" "$bin"   # atomic: a half-written binary is never seen as built
echo "kustomize.sh: built $bin in $(( $(date +%s) - start ))s" >&2
echo "$bin"
