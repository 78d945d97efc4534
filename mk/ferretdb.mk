# FerretDB v1.24.2 (SQLite backend): the MongoDB wire-protocol server for local runs and tests.
# Built with Go through the module proxy into a cache outside the repo (see reference/mongodb.md).
FERRETDB_BIN := $(or $(FERRETDB_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tronpay/ferretdb-v1.24.2)/ferretdb
MONGO_PORT ?= 27017
FERRETDB_DATA ?= .data/ferretdb

.PHONY: ferretdb ferretdb-run

ferretdb: ## Build FerretDB v1.24.2 into the user cache (skipped when already built)
	@scripts/ferretdb-build.sh >/dev/null

INSTALL_STEPS += ferretdb

ferretdb-run: ferretdb ## Run FerretDB in the foreground on 127.0.0.1:$(MONGO_PORT), data in .data/ferretdb
	@mkdir -p $(FERRETDB_DATA)
	exec $(FERRETDB_BIN) -listen-addr 127.0.0.1:$(MONGO_PORT) -handler sqlite -sqlite-url file:$(FERRETDB_DATA)/ -log-level warn
