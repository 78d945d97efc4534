# The `tronpay` command line (cli/tronpay_cli, docs/cli.md; installed into .venv/bin by `make install`).
.PHONY: test-cli

test-cli: ## tronpay CLI tests: every area's commands through Envoy against the real services (devnet), exit codes, CSV checks
	$(PY) -m pytest -q tests/cli
