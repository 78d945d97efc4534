"""Build every overlay with kustomize and check the output against Kubernetes' schemas, offline.

kustomize is the pinned release that k8s/tools/kustomize.sh builds into the user cache. The schemas are
the ones the kubernetes-validate package ships (strict: unknown fields such as a misspelt
``readOnlyRootFilesytem`` are errors). Builds run on a temporary copy of k8s/ in which the dev overlay's
gitignored secret files are generated (its TLS files from a throwaway CA), so the repository is never
written to.

Usage: ``python k8s/tools/validate.py`` prints, per overlay, the resources, build and validation time,
and every schema error; exit status 1 on any error. tests/k8s/ use the same functions.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

K8S_DIR = Path(__file__).resolve().parents[1]
#: The oldest Kubernetes the manifests target: preStop `sleep` is GA in 1.34 (on by default since 1.30).
KUBERNETES_VERSION = "1.34.0"


def _sibling(name: str) -> ModuleType:
    """Another script of k8s/tools (not a package; nothing is added to sys.path)."""
    path = K8S_DIR / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"tronpay_k8s_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
    if spec.name not in sys.modules:
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


dev_secrets = _sibling("dev_secrets")
dev_tls = _sibling("dev_tls")


def kustomize_bin() -> str:
    """Path of the cached kustomize binary, built on first use (about a minute)."""
    out = subprocess.run(
        [str(K8S_DIR / "tools" / "kustomize.sh")], check=True, capture_output=True, text=True
    ).stdout
    return out.strip().splitlines()[-1]


def overlays(root: Path = K8S_DIR) -> list[str]:
    """Names of the overlays under k8s/overlays/ (every directory with a kustomization.yaml)."""
    return sorted(p.parent.name for p in (root / "overlays").glob("*/kustomization.yaml"))


@contextmanager
def workspace() -> Iterator[Path]:
    """A temporary copy of k8s/ with the dev overlay's secret files generated (placeholders for builds)."""
    with tempfile.TemporaryDirectory(prefix="tronpay-k8s-") as tmp:
        root = Path(tmp) / "k8s"
        shutil.copytree(
            K8S_DIR,
            root,
            ignore=shutil.ignore_patterns("secrets.env", "mongodb.env", "keyfile", dev_tls.SUBDIR),
        )
        dev_secrets.write(root / "overlays" / "dev")
        dev_tls.write(root / "overlays" / "dev", pki=Path(tmp) / "pki")
        yield root


@dataclass
class Build:
    """One overlay's rendered documents and how long kustomize took."""

    overlay: str
    docs: list[dict[str, Any]]
    seconds: float


def build(root: Path, overlay: str, kustomize: str) -> Build:
    """Run `kustomize build` on one overlay and parse the documents."""
    start = time.perf_counter()
    proc = subprocess.run(
        [kustomize, "build", str(root / "overlays" / overlay)], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"kustomize build overlays/{overlay} failed:\n{proc.stderr}")
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return Build(overlay, docs, seconds)


def build_all() -> list[Build]:
    """Every overlay, built from one temporary workspace."""
    kustomize = kustomize_bin()
    with workspace() as root:
        return [build(root, name, kustomize) for name in overlays(root)]


def schema_errors(docs: list[dict[str, Any]], version: str = KUBERNETES_VERSION) -> list[str]:
    """Strict schema violations, one line each ("Kind/name: message")."""
    import kubernetes_validate  # 100 MB of schemas: imported only when validating

    errors = []
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{where}: {exc.message} at {'.'.join(str(p) for p in exc.path)}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{where}: no schema ({exc})")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION)
    args = parser.parse_args(argv)
    failed = False
    for result in build_all():
        start = time.perf_counter()
        errors = schema_errors(result.docs, args.kubernetes_version)
        check = time.perf_counter() - start
        print(
            f"overlays/{result.overlay}: {len(result.docs)} resources, "
            f"kustomize build {result.seconds:.2f} s, "
            f"schema check (Kubernetes {args.kubernetes_version}, strict) {check:.2f} s, "
            f"{len(errors)} error(s)"
        )
        for line in errors:
            print(f"  {line}")
        failed |= bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
