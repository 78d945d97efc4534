# Kubernetes manifests (k8s/: kustomize base, components, overlays). kustomize is built with Go through the
# module proxy into ~/.cache/tronpay/bin (k8s/tools/kustomize.sh); schemas come from kubernetes-validate.
KUSTOMIZE_SH := k8s/tools/kustomize.sh

.PHONY: k8s-tools k8s-validate k8s-envoy-config k8s-dev-secrets test-k8s

k8s-tools: ## Build the pinned kustomize into ~/.cache/tronpay/bin (skipped when already built)
	@$(KUSTOMIZE_SH) >/dev/null

INSTALL_STEPS += k8s-tools

k8s-envoy-config: ## Render the Kubernetes Envoy config into k8s/base/envoy/ (envoy.json + tronpay.pb); commit both
	@$(PY) k8s/tools/envoy_config.py

k8s-validate: k8s-tools ## Build every k8s overlay, check it against the Kubernetes schemas, run tests/k8s
	$(PY) k8s/tools/envoy_config.py --check
	$(PY) k8s/tools/validate.py
	$(PY) -m pytest -q tests/k8s

k8s-dev-secrets: ## Write the dev overlay's gitignored secrets (random values; existing files are kept)
	@$(PY) k8s/tools/dev_secrets.py

test-k8s: install ## Run the Kubernetes manifest tests (tests/k8s)
	$(PY) -m pytest tests/k8s

CHECK_STEPS += k8s-validate
