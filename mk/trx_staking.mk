# trx-staking (services/trx_staking): its tests and the energy broker benchmark.
# Options: BENCH_ENERGY_ARGS (e.g. --transfers 60 --senders 10).
BENCH_ENERGY_ARGS ?=

.PHONY: test-trx-staking bench-energy

test-trx-staking: ## trx-staking tests: operations, chain rules, crash, energy broker, treasury, Envoy REST (devnet)
	$(PY) -m pytest -q tests/trx_staking

bench-energy: ## TRX burned and energy delegated per USDT transfer with and without the energy broker (devnet --mainnet)
	$(PY) benchmarks/bench_energy.py $(BENCH_ENERGY_ARGS)
