# tron-client: node pool, transaction building/broadcast, read RPCs, and the shared TRON wire code.
.PHONY: test-tron-client test-tron-wire

test-tron-wire: ## TRON wire encoder/decoder (services/common/tron) against the public vectors; no node needed
	$(PY) -m pytest -q tests/tron_client/test_tron_wire.py

test-tron-client: ## tron-client against devnet + FerretDB: pool failover/faults, build -> sign -> broadcast for all contract types, reads
	$(PY) -m pytest -q tests/tron_client
