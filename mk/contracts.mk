# contracts/: Solidity sources, pinned solc (npm), committed artifacts; devnet TVM benchmark.
.PHONY: contracts contracts-check bench-tvm

contracts: ## Rebuild contracts/artifacts/*.json from contracts/src with the pinned solc (byte-for-byte reproducible)
	node contracts/build.mjs contracts/artifacts

contracts-check: ## Check that the committed contract artifacts match a fresh build
	$(PY) -m pytest -q tests/contracts

bench-tvm: ## Benchmark the devnet TVM alone: USDT transfers per second in one process, and one transfer's energy
	$(PY) benchmarks/bench_tvm.py
