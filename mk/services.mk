# The six gRPC services (services/<name>, `python -m services.<name>`) and their tests.
SERVICE ?= tron_client

.PHONY: service-run test-services

service-run: ## Run one service in the foreground (SERVICE=tron_client|payout_router|wallet_manager|...)
	PYTHONPATH=gen:. exec $(PY) -m services.$(SERVICE)

test-services: install ## Run the service runtime tests (tests/services: settings, health, errors, restart, network)
	$(PY) -m pytest tests/services
