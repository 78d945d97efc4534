# The six gRPC services (services/<name>, `python -m services.<name>`) and their tests.
SERVICE ?= tron_client

.PHONY: service-run test-services dev-pki access-doc

access-doc: ## Regenerate docs/access.md (roles x RPCs, mesh grants) from services/common/access.py
	@PYTHONPATH=gen:. $(PY) -m tools.access_doc >/dev/null

dev-pki: ## Make the development CA and mesh certificates in .data/pki/ (kept while valid; TLS_DIR=...)
	@$(PY) tools/devpki.py

service-run: dev-pki ## Run one service in the foreground (SERVICE=tron_client|payout_router|wallet_manager|...)
	PYTHONPATH=gen:. exec $(PY) -m services.$(SERVICE)

test-services: install ## Run the service runtime tests (tests/services: settings, health, errors, restart, network)
	$(PY) -m pytest tests/services
