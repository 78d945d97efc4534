#!/usr/bin/env bash
# Build the pinned protoc-gen-openapi (google/gnostic: OpenAPI 3 from google.api.http bindings and proto
# comments) with Go through the module proxy into a cache outside the repo, then print its path
# (tools/go-install.sh; about 30 s cold, 0 s warm). tools/protogen.py runs it to write gen/openapi/.
set -euo pipefail
exec "$(dirname "$0")/go-install.sh" protoc-gen-openapi github.com/google/gnostic/cmd/protoc-gen-openapi "${PROTOC_GEN_OPENAPI_VERSION:-v0.7.0}"
