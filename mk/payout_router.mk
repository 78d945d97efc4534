# payout-router (services/payout_router): tests, benchmark, deploying the router contracts.
BENCH_PAYOUTS_ARGS ?=
DEPLOY_ROUTERS_ARGS ?=

.PHONY: test-payout-router bench-payouts deploy-routers

test-payout-router: ## payout-router against devnet + FerretDB + Envoy: batches, approvals, refusals, PRKYC, kill -9, timeout
	$(PY) -m pytest -q tests/payout_router

bench-payouts: ## Payouts through Envoy to CONFIRMED: energy/bandwidth per recipient for batches of 1/10/50/100, payouts/h (BENCH_PAYOUTS_ARGS=--mainnet)
	$(PY) benchmarks/bench_payouts.py $(BENCH_PAYOUTS_ARGS)

deploy-routers: ## Deploy PayoutRouterV0/KYC through the running cluster's signing, grant roles, print the addresses (DEPLOY_ROUTERS_ARGS="--deployer-wallet ID --max-per-tx N --max-per-day N [--disburser T..]"; --help)
	$(PY) -m tools.deploy_routers $(DEPLOY_ROUTERS_ARGS)
