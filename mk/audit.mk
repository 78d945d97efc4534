# Audit trail (services/common/audit.py, docs/audit.md): check and export the services' hash-chained audit
# logs straight from MongoDB with tools/audit.py. The database comes from MONGODB_URI and PAYMENT_DB_NAME in
# the environment (defaults: the local cluster of `make up`); the URI stays off the command line.
AUDIT_SERVICE ?=
AUDIT_ANCHOR ?=
AUDIT_AFTER_SEQ ?= 0

.PHONY: audit-verify audit-export

audit-verify: ## Verify every service's audit chain (AUDIT_SERVICE=wallet_manager, AUDIT_ANCHOR=seq:hash optional)
	$(PY) -m tools.audit verify $(if $(AUDIT_SERVICE),--service $(AUDIT_SERVICE)) $(if $(AUDIT_ANCHOR),--anchor $(AUDIT_ANCHOR))

audit-export: ## Export one service's audit log as JSON lines to stdout (AUDIT_SERVICE=..., AUDIT_AFTER_SEQ=N)
	@$(PY) -m tools.audit export --service $(AUDIT_SERVICE) --after-seq $(AUDIT_AFTER_SEQ)
