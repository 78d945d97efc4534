# Envoy edge: REST (grpc_json_transcoder) and native gRPC on one listener in front of the six services.
# The config is rendered by envoy/render.py from the environment (EDGE_PORT, ADMIN_PORT, <SERVICE>_HOST,
# <SERVICE>_PORT, ENVOY_DESCRIPTOR, EDGE_ROUTE_TIMEOUT, ...); see its docstring.
ENVOY := $(BIN)/envoy
ENVOY_CONFIG ?= .build/envoy/envoy.json
ENVOY_LOG_LEVEL ?= warn

.PHONY: envoy-config envoy-validate envoy-run bench-edge

envoy-config: ## Render the Envoy edge config (.build/envoy/envoy.json) from the environment
	@$(PY) envoy/render.py --out $(ENVOY_CONFIG) >/dev/null
	@echo "envoy config: $(ENVOY_CONFIG)"

envoy-validate: envoy-config ## Check the rendered edge config with `envoy --mode validate`
	$(ENVOY) --mode validate -c $(ENVOY_CONFIG) --log-level error

envoy-run: envoy-config ## Run the Envoy edge in the foreground (REST + gRPC on :8080, admin on 127.0.0.1:9901)
	exec $(ENVOY) -c $(ENVOY_CONFIG) --disable-hot-restart --log-level $(ENVOY_LOG_LEVEL)

bench-edge: ## Benchmark GET /api/v1/tron/network/height vs a trivial RPC through Envoy (wrk; BENCH_EDGE_ARGS=...)
	$(PY) benchmarks/bench_edge.py $(BENCH_EDGE_ARGS)

CHECK_STEPS += envoy-validate
