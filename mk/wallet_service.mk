# wallet-manager service (services/wallet_manager): its tests, the signing benchmark, operator commands.
.PHONY: test-wallet-service bench-sign wallet-rotate-key

test-wallet-service: ## wallet-manager service tests: kinds, custody scan, rotation, policy, devices, TronLink, Envoy REST, devnet
	$(PY) -m pytest -q tests/wallet_manager/test_service_wallets.py tests/wallet_manager/test_service_custody.py \
		tests/wallet_manager/test_service_devices.py tests/wallet_manager/test_service_edge.py \
		tests/wallet_manager/test_service_outage.py tests/wallet_manager/test_service_replicas.py

bench-sign: ## SignTransaction signatures/s over gRPC from concurrent callers, sealed keys (BENCH_SIGN_ARGS=...)
	$(PY) benchmarks/bench_sign.py $(BENCH_SIGN_ARGS)

wallet-rotate-key: ## Re-wrap every wallet data key under WALLET_ENCRYPTION_KEY (old key in WALLET_ENCRYPTION_KEY_PREVIOUS)
	PYTHONPATH=gen:. $(PY) -m services.wallet_manager rotate-key
