# contracts/: Solidity sources, pinned solc (npm), committed artifacts; devnet TVM benchmark.
.PHONY: contracts contracts-check bench-tvm bench-payout-contract

contracts: ## Rebuild contracts/artifacts/*.json from contracts/src with the pinned solc (byte-for-byte reproducible)
	node contracts/build.mjs contracts/artifacts

contracts-check: ## Check that the committed contract artifacts match a fresh build
	$(PY) -m pytest -q tests/contracts

bench-tvm: ## Benchmark the devnet TVM alone: USDT transfers per second in one process, and one transfer's energy
	$(PY) benchmarks/bench_tvm.py

bench-payout-contract: ## Energy and bandwidth per recipient of the payout routers on the devnet: single vs batches of 10/50/100 (BENCH_PAYOUT_CONTRACT_ARGS=--mainnet)
	$(PY) benchmarks/bench_payout_contract.py $(BENCH_PAYOUT_CONTRACT_ARGS)
