"""Fixtures for the Kubernetes manifest tests: every overlay built once per session (kustomize from the
user cache, built on first use), plus the repository's own facts the manifests must agree with."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = REPO_ROOT / "k8s" / "tools"


def load_tool(name: str) -> ModuleType:
    """A script of k8s/tools/ as a module (k8s/ is not a Python package)."""
    spec = importlib.util.spec_from_file_location(f"tronpay_k8s_{name}", TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    if spec.name in sys.modules:  # validate.py loads dev_secrets under the same name
        return sys.modules[spec.name]
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


validate = load_tool("validate")
envoy_config = load_tool("envoy_config")
dev_secrets = load_tool("dev_secrets")

OVERLAYS = validate.overlays()


@pytest.fixture(scope="session")
def builds() -> dict[str, list[dict[str, Any]]]:
    """overlay name -> its rendered documents."""
    return {b.overlay: b.docs for b in validate.build_all()}
