# Envoy edge: REST (grpc_json_transcoder) and native gRPC on one listener in front of the six services.
# The config is rendered by envoy/render.py from the environment (EDGE_PORT, ADMIN_PORT, <SERVICE>_HOST,
# <SERVICE>_PORT, ENVOY_DESCRIPTOR, EDGE_ROUTE_TIMEOUT, EDGE_JWT_*, EDGE_JWKS_*, EDGE_RATE_LIMIT_*, ...); see its
# docstring. Without EDGE_JWKS_FILE/EDGE_JWKS_URI the edge trusts the development key of tools/devtoken.py,
# made on first use in .data/dev-auth/ (gitignored); `make token` mints tokens with it.
ENVOY := $(BIN)/envoy
ENVOY_CONFIG ?= .build/envoy/envoy.json
ENVOY_LOG_LEVEL ?= warn
ROLE ?= admin
SUBJECT ?= $(USER)
TENANT ?=
TTL ?= 12h

.PHONY: envoy-config envoy-validate envoy-run bench-edge bench-edge-strict dev-auth token grpcurl

grpcurl: ## Build the pinned grpcurl into ~/.cache/tronpay/bin (the edge's gRPC discovery tests and README use it)
	@tools/grpcurl.sh >/dev/null

INSTALL_STEPS += grpcurl

dev-auth: ## Make the development signing key and JWKS in .data/dev-auth/ (kept when they exist)
	@$(PY) tools/devtoken.py --jwks >/dev/null

token: ## Print a development bearer token: make token ROLE=operator SUBJECT=alice TENANT=m1 [TTL=15m]
	@$(PY) tools/devtoken.py --role '$(ROLE)' --subject '$(or $(SUBJECT),developer)' --tenant '$(TENANT)' --ttl '$(TTL)'

envoy-config: dev-pki ## Render the Envoy edge config (.build/envoy/envoy.json) from the environment
	@if [ -z "$${EDGE_JWKS_FILE:-}$${EDGE_JWKS_URI:-}" ]; then $(PY) tools/devtoken.py --jwks >/dev/null; fi
	@$(PY) envoy/render.py --out $(ENVOY_CONFIG) >/dev/null
	@echo "envoy config: $(ENVOY_CONFIG)"

envoy-validate: envoy-config ## Check the rendered edge config with `envoy --mode validate`
	$(ENVOY) --mode validate -c $(ENVOY_CONFIG) --log-level error

envoy-run: envoy-config ## Run the Envoy edge in the foreground (REST + gRPC on :8080, admin on 127.0.0.1:9901)
	exec $(ENVOY) -c $(ENVOY_CONFIG) --disable-hot-restart --log-level $(ENVOY_LOG_LEVEL)

bench-edge: ## Benchmark GET /api/v1/tron/network/height and a MongoDB-backed wallet read vs a trivial RPC through Envoy (wrk; BENCH_EDGE_ARGS=...)
	$(PY) benchmarks/bench_edge.py $(BENCH_EDGE_ARGS)

bench-edge-strict: ## Benchmark REST POSTs through Envoy with and without the strict JSON check (wrk; BENCH_EDGE_STRICT_ARGS=...)
	$(PY) benchmarks/bench_edge_strict.py $(BENCH_EDGE_STRICT_ARGS)

CHECK_STEPS += envoy-validate
