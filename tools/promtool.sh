#!/usr/bin/env bash
# Build Prometheus's promtool (rule checks and rule unit tests for k8s/monitoring) with Go through the module
# proxy into a cache outside the repo, then print its path (tools/go-install.sh). The module's v0.316.0 is
# Prometheus 3.16.0 (its go.mod needs Go >= 1.26.7). Measured on the 2-core build machine: 238 s cold (downloads
# and build), 0 s warm.
set -euo pipefail
exec "$(dirname "$0")/go-install.sh" promtool github.com/prometheus/prometheus/cmd/promtool "${PROMTOOL_VERSION:-v0.316.0}"
