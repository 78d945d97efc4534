# FerretDB v1.24.2 (SQLite backend): the MongoDB wire-protocol server for local runs and tests.
# Built with Go through the module proxy into a cache outside the repo (see reference/mongodb.md); the build
# script prints the binary path (cache keyed by a hash of scripts/ferretdb, so source changes rebuild).
# The binary serialises write commands per database so conditional single-document updates are atomic, as
# on MongoDB (scripts/ferretdb/serialize.go), and FerretDB's SQLite backend is patched (scripts/ferretdb/
# patches) to find documents through the _id index, also when the filter has more than `_id`.
MONGO_PORT ?= 27017
FERRETDB_DATA ?= .data/ferretdb

.PHONY: ferretdb ferretdb-run bench-ferretdb

ferretdb: ## Build FerretDB v1.24.2 into the user cache (skipped when already built)
	@scripts/ferretdb-build.sh >/dev/null

INSTALL_STEPS += ferretdb

ferretdb-run: ## Run FerretDB in the foreground on 127.0.0.1:$(MONGO_PORT), data in .data/ferretdb
	@mkdir -p $(FERRETDB_DATA)
	@bin="$$(scripts/ferretdb-build.sh)" && \
	  exec "$$bin" -listen-addr 127.0.0.1:$(MONGO_PORT) -handler sqlite -sqlite-url file:$(FERRETDB_DATA)/ -log-level warn

bench-ferretdb: ferretdb ## FerretDB writes/reads per second with and without the write serialiser
	$(PY) benchmarks/bench_ferretdb.py
