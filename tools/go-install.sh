#!/usr/bin/env bash
# go-install.sh NAME PACKAGE VERSION: build a pinned Go tool through the module proxy into a cache outside the
# repo, then print its path. Idempotent: an existing binary is reused (a minute or less cold, 0 s warm).
# Used for kustomize (k8s/tools/kustomize.sh), grpcurl (tests of gRPC discovery at the edge) and promtool
# (tools/promtool.sh: the alert rules in k8s/monitoring).
set -euo pipefail

name="$1" package="$2" version="$3"
out_dir="${TRONPAY_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tronpay/bin}"
bin="$out_dir/$name-$version"

if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null || { echo "go-install.sh: Go toolchain not found on PATH" >&2; exit 1; }

mkdir -p "$out_dir"
gobin="$(mktemp -d "$out_dir/.$name.XXXXXX")"
trap 'rm -rf "$gobin"' EXIT
start=$(date +%s)
echo "go-install.sh: building $name $version with $(go version | cut -d' ' -f3)" >&2
# GOTOOLCHAIN=local: never switch toolchains behind the caller's back; GOFLAGS cleared so a -mod setting
# meant for another module cannot break `go install pkg@version`.
(cd "$gobin" && GOBIN="$gobin" GOTOOLCHAIN=local GOFLAGS= go install "$package@$version")
mv -f "$gobin/$name" "$bin"   # atomic: a half-written binary is never seen as built
echo "go-install.sh: built $bin in $(( $(date +%s) - start ))s" >&2
echo "$bin"
