"""Write the dev overlay's mesh TLS files: k8s/overlays/dev/tls/<identity>/{tls.crt,tls.key,ca.crt} for every
identity a pod mounts (the six services and the edge), which the overlay's secretGenerator turns into the
kubernetes.io/tls Secrets tronpay-tls-<identity>. Gitignored.

They are copies of the development PKI of tools/devpki.py (.data/pki, made or renewed here as `make up`
does): the same CA as the local cluster, so the local operator certificate (.data/pki/operator) is trusted
by the dev cluster too and is never copied into it. Copies are refreshed when the PKI renewed a
certificate; the content hash in each Secret's name then rolls the pods that mount it.

Usage: ``python k8s/tools/dev_tls.py [DIR]`` (DIR defaults to k8s/overlays/dev); `make k8s-dev-secrets`
runs it through dev_secrets.py.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

K8S_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = K8S_DIR.parent
DEV_DIR = K8S_DIR / "overlays" / "dev"
SUBDIR = "tls"
FILES = ("tls.crt", "tls.key", "ca.crt")
#: The identities whose Secret a pod mounts: each service as its dashed name, Envoy as "edge".
MOUNTED = (
    "tron-client",
    "payout-router",
    "wallet-manager",
    "usdt-manager",
    "trx-staking",
    "payment-gateway",
    "edge",
)


def secret_name(identity: str) -> str:
    """The Secret an identity's pods mount (before the dev overlay's content hash)."""
    return f"tronpay-tls-{identity}"


def load_devpki() -> ModuleType:
    """tools/devpki.py as a module (these scripts run without the repository on sys.path)."""
    path = REPO_ROOT / "tools" / "devpki.py"
    spec = importlib.util.spec_from_file_location("tronpay_devpki", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(directory: Path = DEV_DIR, pki: Path | None = None) -> list[Path]:
    """Make or renew the identities in the PKI directory ``pki`` (default .data/pki), then copy each one's
    files to ``directory``/tls/<identity>/ where they differ; return the files written."""
    devpki = load_devpki()
    source = pki if pki is not None else devpki.DEFAULT_DIR
    devpki.ensure(source, MOUNTED)
    written = []
    for identity in MOUNTED:
        for name in FILES:
            data = (source / identity / name).read_bytes()
            target = directory / SUBDIR / identity / name
            if target.exists() and target.read_bytes() == data:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            written.append(target)
    return written


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv else DEV_DIR
    written = write(directory)
    print(f"wrote {len(written)} TLS file(s) under {directory / SUBDIR}" if written else "kept the TLS files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
