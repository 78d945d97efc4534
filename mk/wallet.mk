# wallet-manager vault core: tests and the signing-core micro-benchmark (no gRPC, no MongoDB).
.PHONY: test-wallet-vault bench-sign-core

test-wallet-vault: ## Vault core tests: keystore, HD vectors, tx parser, policy, TIP-191 vs TronWeb, Ledger/Trezor devices
	$(PY) -m pytest -q tests/wallet_manager --ignore-glob='*/test_service_*.py'

bench-sign-core: ## Vault signing core per second (parse + policy + decrypt + sign + verify), 1 and N threads
	$(PY) benchmarks/bench_sign_core.py
