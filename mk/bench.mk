# Every benchmark in one report (tools/bench_report.py). Options: BENCH_ONLY (e.g. usdt,payments).
BENCH_ONLY ?=

.PHONY: bench

bench: ## Run every benchmark with short settings, print one table: figure, value, target, met or not, the command (BENCH_ONLY=usdt,payments)
	$(PY) -m tools.bench_report $(if $(BENCH_ONLY),--only $(BENCH_ONLY))
