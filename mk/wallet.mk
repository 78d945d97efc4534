# wallet-manager vault core: tests and the signing-core micro-benchmark (the service's KeyVault, no gRPC).
.PHONY: test-wallet-vault bench-sign-core

test-wallet-vault: ## Vault core tests: keystore, KeyVault custody, HD vectors, tx parser, policy, TIP-191 vs TronWeb, Ledger/Trezor
	$(PY) -m pytest -q tests/wallet_manager --ignore-glob='*/test_service_*.py'

bench-sign-core: ## Service signing path per second in-process (parse + policy + KeyVault open/sign/verify), per step
	$(PY) benchmarks/bench_sign_core.py
