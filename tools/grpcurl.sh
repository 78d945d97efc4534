#!/usr/bin/env bash
# Build the pinned grpcurl with Go through the module proxy into a cache outside the repo, then print its path
# (tools/go-install.sh; about 30 s cold, 0 s warm). The edge's gRPC discovery tests and README use it.
set -euo pipefail
exec "$(dirname "$0")/go-install.sh" grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl "${GRPCURL_VERSION:-v1.9.3}"
