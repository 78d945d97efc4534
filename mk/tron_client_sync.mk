# tron-client block sync: benchmark. Options: BENCH_SYNC_ARGS (e.g. --blocks 1200 --watched 50).
BENCH_SYNC_ARGS ?=

.PHONY: bench-sync

bench-sync: ## Benchmark tron-client block sync: blocks/s ingested from a cold cursor, mainnet-sized devnet blocks
	$(PY) benchmarks/bench_sync.py $(BENCH_SYNC_ARGS)
