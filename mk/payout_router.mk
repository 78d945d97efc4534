# payout-router (services/payout_router): tests, benchmark.
BENCH_PAYOUTS_ARGS ?=

.PHONY: test-payout-router bench-payouts

test-payout-router: ## payout-router against devnet + FerretDB + Envoy: batches, approvals, refusals, PRKYC, kill -9, timeout
	$(PY) -m pytest -q tests/payout_router

bench-payouts: ## Payouts through Envoy to CONFIRMED: energy/bandwidth per recipient for batches of 1/10/50/100, payouts/h (BENCH_PAYOUTS_ARGS=--mainnet)
	$(PY) benchmarks/bench_payouts.py $(BENCH_PAYOUTS_ARGS)
