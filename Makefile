# TRON payment cluster. `make help` lists the targets.
# Each area keeps its own targets in mk/<area>.mk and adds its set-up step to INSTALL_STEPS.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.9.30
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PY := .venv/bin/python
BIN := .venv/bin
NPM_BIN := node_modules/.bin
INSTALL_STEPS :=
CHECK_STEPS :=

include $(sort $(wildcard mk/*.mk))

.PHONY: help install python-deps npm-deps check test lint typecheck up down

help: ## Show this help
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F ':.*## ' '{printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

python-deps: ## Install the pinned Python environment (.venv) from uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen --quiet

npm-deps: ## Install the pinned JavaScript tooling (solc, tronweb, buf) from package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

install: python-deps npm-deps $(INSTALL_STEPS) ## Install everything the cluster and its tests need

lint: install ## Lint Python (ruff) and the other checks of each area
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## Type-check Python (mypy; configured in pyproject.toml)
	$(BIN)/mypy

check: install $(CHECK_STEPS) ## Run the contract checks of each area (proto lint/breaking, gen freshness, Envoy validate)

test: install ## Run every check and test CI runs (lint, format, types, then pytest with the contract checks)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(PY) -m pytest

# The recipe's shell writes its pid to .data/up.pid and exec hands that pid to honcho: `make down` stops it.
up: install dev-pki ## Run the whole cluster locally (FerretDB, devnet, six services, Envoy; mesh mTLS; crashed parts restart)
	mkdir -p .data && echo $$$$ > .data/up.pid && exec $(BIN)/honcho -f Procfile start

down: ## Stop the cluster `make up` started from this checkout (its pid file; nothing else)
	@$(PY) -m tools.supervise down
