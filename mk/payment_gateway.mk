# payment-gateway (services/payment_gateway): tests, benchmark, the merchants' webhook secrets.
BENCH_PAYMENTS_ARGS ?=

.PHONY: test-payment-gateway bench-payments webhook-secret

test-payment-gateway: ## payment-gateway against devnet + FerretDB + Envoy: payments, detection, forks, inbox, refunds, sweeps, reconciliation, webhooks, kill -9
	$(PY) -m pytest -q tests/payment_gateway

bench-payments: ## Payments through Envoy paid on the devnet to the PAID webhook: payments/h, p50/p99 block -> webhook, backlog (BENCH_PAYMENTS_ARGS=...)
	$(PY) benchmarks/bench_payments.py $(BENCH_PAYMENTS_ARGS)

webhook-secret: ## Print a merchant's webhook signing secret(s) from PAYMENT_WEBHOOK_MASTER_SECRETS: make webhook-secret MERCHANT=m1
	@$(PY) -m services.payment_gateway.signing $(MERCHANT)
