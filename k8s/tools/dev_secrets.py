"""Write the dev overlay's gitignored secret files with fresh random values (never overwriting one).

k8s/overlays/dev/secrets.env (Secret tronpay-secrets), mongodb.env (Secret mongodb-admin) and keyfile
(Secret mongodb-keyfile, the replica set's internal auth key). Each service has its own MongoDB user (the
users of k8s/components/mongodb/service-roles.json): its password appears in both mongodb.env
(<service>-password) and its MONGODB_URI_<SERVICE>, so the files are written together or not at all.

Also jwks.json (ConfigMap envoy-jwks, the keys the edge trusts): the public half of the local development
key of tools/devtoken.py (.data/dev-auth/, made on first use), so `make token` tokens work against the dev
overlay as against `make up`. Written when missing; ``write`` without a JWKS copies the base's placeholder.

The command also writes the mesh TLS Secrets' files (k8s/tools/dev_tls.py).

Usage: ``python k8s/tools/dev_secrets.py [DIR]`` (DIR defaults to k8s/overlays/dev).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import secrets
import sys
from pathlib import Path
from types import ModuleType

K8S_DIR = Path(__file__).resolve().parents[1]
DEV_DIR = K8S_DIR / "overlays" / "dev"
FILES = ("secrets.env", "mongodb.env", "keyfile")
SERVICE_ROLES = K8S_DIR / "components" / "mongodb" / "service-roles.json"
MONGODB_HOSTS = "mongodb-0.mongodb-headless:27017/?replicaSet=rs0&authSource=admin"
JWKS = "jwks.json"
#: A JWKS whose private key was discarded: the base's, so an edge trusts nothing until keys are supplied.
PLACEHOLDER_JWKS = K8S_DIR / "base" / "envoy" / JWKS


def uri_key(service: str) -> str:
    """The tronpay-secrets key of a service's MongoDB URI (tron-client -> MONGODB_URI_TRON_CLIENT)."""
    return "MONGODB_URI_" + service.upper().replace("-", "_")


def render() -> dict[str, str]:
    """The three files' contents. Passwords are URL-safe, so they go into the URIs unescaped."""
    users = [s["user"] for s in json.loads(SERVICE_ROLES.read_text())["services"]]
    passwords = {user: secrets.token_urlsafe(24) for user in users}
    return {
        "secrets.env": "\n".join(
            [
                "# Dev only, written by `make k8s-dev-secrets`; gitignored.",
                *(f"{uri_key(u)}=mongodb://{u}:{pw}@{MONGODB_HOSTS}" for u, pw in passwords.items()),
                f"WALLET_ENCRYPTION_KEY={secrets.token_urlsafe(32)}",
                "PAYOUT_ROUTER_PRIVATE_KEY=",
                "TRON_NODE_API_KEY=",
                f"PAYMENT_WEBHOOK_MASTER_SECRETS={secrets.token_urlsafe(32)}",
                "",
            ]
        ),
        "mongodb.env": "\n".join(
            [
                "root-username=root",
                f"root-password={secrets.token_urlsafe(24)}",
                *(f"{u}-password={pw}" for u, pw in passwords.items()),
                "",
            ]
        ),
        # mongod accepts 6..1024 base64 characters.
        "keyfile": base64.b64encode(secrets.token_bytes(756)).decode() + "\n",
    }


def dev_jwks() -> str:
    """The JWKS of the local development key (tools/devtoken.py; made on first use)."""
    path = K8S_DIR.parent / "tools" / "devtoken.py"
    spec = importlib.util.spec_from_file_location("tronpay_devtoken", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    devtoken = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(devtoken)
    return json.dumps(devtoken.load_or_create().jwks(), indent=2) + "\n"


def write(directory: Path = DEV_DIR, jwks: str | None = None) -> list[Path]:
    """Write the files that are missing (the three secrets all or none; jwks.json: ``jwks``, else the
    placeholder); return what was written (nothing when all exist)."""
    if not directory.is_dir():
        raise SystemExit(f"dev_secrets: {directory} is not a directory")
    written = []
    if not (directory / JWKS).exists():
        (directory / JWKS).write_text(jwks if jwks is not None else PLACEHOLDER_JWKS.read_text())
        written.append(directory / JWKS)
    paths = [directory / name for name in FILES]
    present = [p for p in paths if p.exists()]
    if len(present) == len(paths):
        return written
    if present:
        names = ", ".join(p.name for p in present)
        raise SystemExit(f"dev_secrets: {names} exist(s) but not all three; remove them to start over")
    for path, text in zip(paths, render().values(), strict=True):
        path.write_text(text)
        path.chmod(0o600)
    return [*paths, *written]


def dev_tls() -> ModuleType:
    """k8s/tools/dev_tls.py: the mesh TLS Secrets' files, from the development PKI."""
    path = K8S_DIR / "tools" / "dev_tls.py"
    spec = importlib.util.spec_from_file_location("tronpay_k8s_dev_tls", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv else DEV_DIR
    written = write(directory, jwks=dev_jwks())
    print("wrote " + ", ".join(str(p) for p in written) if written else f"kept the secrets in {directory}")
    return int(dev_tls().main([str(directory)]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
