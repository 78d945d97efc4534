# Observability: Grafana dashboards and Prometheus alert rules in k8s/monitoring/ (its README), the metric names in
# docs/metrics.md, traces through services/common/tracing.py. promtool is built with Go through the module proxy
# into ~/.cache/tronpay/bin (tools/promtool.sh: about 4 minutes cold, reused afterwards).
PROMTOOL_SH := tools/promtool.sh

.PHONY: monitoring-tools monitoring-check monitoring-rules

monitoring-tools: ## Build the pinned promtool into ~/.cache/tronpay/bin (skipped when already built)
	@$(PROMTOOL_SH) >/dev/null

INSTALL_STEPS += monitoring-tools

monitoring-rules: ## Regenerate k8s/monitoring/prometheus-operator/prometheusrule.yaml from k8s/monitoring/alerts.yaml
	@$(PY) k8s/tools/prometheus_rule.py

monitoring-check: monitoring-tools ## promtool check and unit tests of the alert rules; dashboards, rules and docs/metrics.md against the services' metrics
	"$$($(PROMTOOL_SH))" check rules k8s/monitoring/alerts.yaml
	cd k8s/monitoring && "$$(../../$(PROMTOOL_SH))" test rules tests/alerts.test.yaml
	$(PY) k8s/tools/prometheus_rule.py --check
	$(PY) -m pytest -q -p no:cacheprovider tests/k8s/test_monitoring.py

CHECK_STEPS += monitoring-check
