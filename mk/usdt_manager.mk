# usdt-manager (services/usdt_manager and the shared lifecycle services/common/chain_ops.py): tests, benchmark.
BENCH_USDT_ARGS ?=

.PHONY: test-usdt-manager bench-usdt

test-usdt-manager: ## usdt-manager against devnet + FerretDB + Envoy: endpoints, pre-checks, faults, forks, kill -9, replicas
	$(PY) -m pytest -q tests/usdt_manager tests/tron_client/test_rescan.py

bench-usdt: ## USDT transfers/h through Envoy to CONFIRMED, p50/p99 to INCLUDED/CONFIRMED, vs the devnet's own rate (BENCH_USDT_ARGS=...)
	$(PY) benchmarks/bench_usdt.py $(BENCH_USDT_ARGS)
