#!/usr/bin/env bash
# Build kustomize (sigs.k8s.io/kustomize/kustomize/v5) with Go through the module proxy into a cache outside
# the repo, then print its path (tools/go-install.sh; about a minute cold, 0 s warm).
# Pinned: v5.8.1 builds with this machine's Go 1.26 (newer kustomize/api releases may need Go 1.27).
set -euo pipefail
exec "$(dirname "$0")/../../tools/go-install.sh" kustomize sigs.k8s.io/kustomize/kustomize/v5 "${KUSTOMIZE_VERSION:-v5.8.1}"
