# devnet/: local TRON node (java-tron HTTP API). Options: DEVNET_PORT, DEVNET_ARGS (e.g. --manual).
DEVNET_PORT ?= 8091
DEVNET_ARGS ?=
DEVNET_DATA ?= .data/devnet

.PHONY: devnet bench-devnet

devnet: ## Run the devnet on 127.0.0.1:$(DEVNET_PORT) (3 s blocks; state in .data/devnet/; DEVNET_ARGS=--manual)
	$(PY) -m devnet --port $(DEVNET_PORT) --data-dir $(DEVNET_DATA)/chain \
		--accounts-file $(DEVNET_DATA)/accounts.json $(DEVNET_ARGS)

bench-devnet: ## Benchmark the devnet over HTTP: TRX and TRC20 transfers/s accepted, executed, included
	$(PY) benchmarks/bench_devnet.py
