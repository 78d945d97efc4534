"""Write the dev overlay's gitignored secret files with fresh random values (never overwriting one).

k8s/overlays/dev/secrets.env (Secret tronpay-secrets), mongodb.env (Secret mongodb-admin) and keyfile
(Secret mongodb-keyfile, the replica set's internal auth key). The MongoDB app password appears in both
mongodb.env and MONGODB_URI, so the files are written together or not at all.

Usage: ``python k8s/tools/dev_secrets.py [DIR]`` (DIR defaults to k8s/overlays/dev).
"""

from __future__ import annotations

import base64
import secrets
import sys
from pathlib import Path

DEV_DIR = Path(__file__).resolve().parents[1] / "overlays" / "dev"
FILES = ("secrets.env", "mongodb.env", "keyfile")


def render() -> dict[str, str]:
    """The three files' contents. Passwords are URL-safe, so they go into MONGODB_URI unescaped."""
    app_password = secrets.token_urlsafe(24)
    uri = (
        f"mongodb://tronpay:{app_password}@mongodb-0.mongodb-headless:27017/?replicaSet=rs0&authSource=admin"
    )
    return {
        "secrets.env": "\n".join(
            [
                "# Dev only, written by `make k8s-dev-secrets`; gitignored.",
                f"MONGODB_URI={uri}",
                f"WALLET_ENCRYPTION_KEY={secrets.token_urlsafe(32)}",
                "PAYOUT_ROUTER_PRIVATE_KEY=",
                "TRON_NODE_API_KEY=",
                "",
            ]
        ),
        "mongodb.env": "\n".join(
            [
                "root-username=root",
                f"root-password={secrets.token_urlsafe(24)}",
                "app-username=tronpay",
                f"app-password={app_password}",
                "",
            ]
        ),
        # mongod accepts 6..1024 base64 characters.
        "keyfile": base64.b64encode(secrets.token_bytes(756)).decode() + "\n",
    }


def write(directory: Path = DEV_DIR) -> list[Path]:
    """Write the files when none exists; return what was written (nothing when all exist)."""
    if not directory.is_dir():
        raise SystemExit(f"dev_secrets: {directory} is not a directory")
    paths = [directory / name for name in FILES]
    present = [p for p in paths if p.exists()]
    if len(present) == len(paths):
        return []
    if present:
        names = ", ".join(p.name for p in present)
        raise SystemExit(f"dev_secrets: {names} exist(s) but not all three; remove them to start over")
    for path, text in zip(paths, render().values(), strict=True):
        path.write_text(text)
        path.chmod(0o600)
    return paths


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv else DEV_DIR
    written = write(directory)
    print("wrote " + ", ".join(str(p) for p in written) if written else f"kept the secrets in {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
