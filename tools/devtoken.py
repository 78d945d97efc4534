"""Development identity for the edge: a local signing key, its JWKS, and bearer tokens (`make token`).

The Envoy edge (envoy/render.py) verifies every bearer JWT against a JWKS. In development that is the file
this tool keeps in ``.data/dev-auth/`` (``DEV_AUTH_DIR``; gitignored with the rest of ``.data/``, never
committed): an EC P-256 key (``signing-key.pem``, mode 0600) made on first use and its public half
(``jwks.json``, key id = the RFC 7638 thumbprint). In production the identity provider signs and the edge
reads its JWKS URL (``EDGE_JWKS_URI``); this tool is not involved.

A token carries ``iss`` and ``aud`` (``EDGE_JWT_ISSUER`` / the first of ``EDGE_JWT_AUDIENCES``, the same
defaults as the renderer), ``sub``, ``roles`` (a JSON array of role names from services.common.access.Role;
the edge also accepts one space-delimited string), ``tenant`` (optional), ``iat`` and ``exp``.

Usage:
    python tools/devtoken.py --role operator --subject alice --tenant m1     # prints a token (12 h)
    python tools/devtoken.py --role operator,approver --ttl 15m
    python tools/devtoken.py --jwks                                          # prints the JWKS path
The module is also the tests' token factory (tests/harness/envoy.py loads it with a key of its own).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO_ROOT / ".data" / "dev-auth"
KEY_FILE = "signing-key.pem"
JWKS_FILE = "jwks.json"
#: The renderer's defaults (envoy/render.py; a test keeps them equal).
DEFAULT_ISSUER = "tronpay-dev"
DEFAULT_AUDIENCE = "tronpay-api"
ALGORITHM = "ES256"
DEFAULT_TTL_SECONDS = 12 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class DevKey:
    """An ES256 signing key with its key id."""

    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> DevKey:
        """A fresh random key."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK (with kid, alg and use)."""
        numbers = self.private_key.public_key().public_numbers()
        jwk = {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
        # RFC 7638: the SHA-256 of the required members, sorted, no whitespace.
        thumbprint = _b64(
            hashlib.sha256(json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()).digest()
        )
        return {**jwk, "kid": thumbprint, "alg": ALGORITHM, "use": "sig"}

    @property
    def kid(self) -> str:
        """The key id (RFC 7638 thumbprint) tokens name in their header."""
        return self.public_jwk["kid"]

    def jwks(self) -> dict[str, Any]:
        """The JWKS document holding this key's public half."""
        return {"keys": [self.public_jwk]}

    def pem(self) -> bytes:
        """The private key, PKCS#8 PEM, unencrypted (a development key)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def sign(self, claims: Mapping[str, Any], *, kid: str | None = None) -> str:
        """A compact JWS of ``claims`` signed with this key (header kid defaults to this key's)."""
        return jwt.encode(
            dict(claims), self.private_key, algorithm=ALGORITHM, headers={"kid": kid or self.kid}
        )

    def token(
        self,
        *,
        subject: str,
        roles: Iterable[str],
        tenant: str | None = None,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        now: int | None = None,
        **extra: Any,
    ) -> str:
        """A bearer token the edge accepts (when issuer and audience match its configuration)."""
        issued = int(time.time()) if now is None else now
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "roles": roles if isinstance(roles, str) else list(roles),
            "iat": issued,
            "exp": issued + ttl_seconds,
        }
        if tenant:
            claims["tenant"] = tenant
        claims.update(extra)
        return self.sign(claims)


def write_key(key: DevKey, directory: Path) -> Path:
    """Write ``signing-key.pem`` (0600) and ``jwks.json`` into ``directory``; return the JWKS path."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    key_path = directory / KEY_FILE
    tmp = key_path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_bytes(key.pem())
    tmp.replace(key_path)
    jwks_path = directory / JWKS_FILE
    jwks_path.write_text(json.dumps(key.jwks(), indent=2) + "\n")
    return jwks_path


def load_or_create(directory: Path | None = None) -> DevKey:
    """The development key in ``directory`` (default ``DEV_AUTH_DIR`` or .data/dev-auth), made on first use;
    its jwks.json is rewritten when missing."""
    directory = directory or Path(os.environ.get("DEV_AUTH_DIR") or DEFAULT_DIR)
    key_path = directory / KEY_FILE
    if key_path.is_file():
        private = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} is not an EC private key")
        key = DevKey(private)
        if not (directory / JWKS_FILE).is_file():
            write_key(key, directory)
        return key
    key = DevKey.generate()
    write_key(key, directory)
    return key


def _ttl(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match or int(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a positive duration like 900, 15m, 12h or 7d")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def main(argv: list[str] | None = None) -> int:
    """Print a token (or, with --jwks, the JWKS path), making the development key on first use."""
    sys.path.insert(0, str(REPO_ROOT))
    from services.common.access import Role

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--role", default="admin", help="role(s), comma-separated: " + ", ".join(Role))
    parser.add_argument("--subject", default=os.environ.get("USER") or "developer", help="the `sub` claim")
    parser.add_argument("--tenant", default="", help="the `tenant` claim (omitted when empty)")
    parser.add_argument("--ttl", type=_ttl, default=DEFAULT_TTL_SECONDS, help="lifetime, e.g. 15m or 12h")
    parser.add_argument("--issuer", default=os.environ.get("EDGE_JWT_ISSUER") or DEFAULT_ISSUER)
    audiences = os.environ.get("EDGE_JWT_AUDIENCES") or DEFAULT_AUDIENCE
    parser.add_argument("--audience", default=audiences.split(",")[0].strip())
    parser.add_argument("--dir", type=Path, default=None, help="key directory (DEV_AUTH_DIR, .data/dev-auth)")
    parser.add_argument(
        "--jwks", action="store_true", help="only make sure the key exists; print the JWKS path"
    )
    args = parser.parse_args(argv)

    key = load_or_create(args.dir)
    directory = args.dir or Path(os.environ.get("DEV_AUTH_DIR") or DEFAULT_DIR)
    if args.jwks:
        print(directory / JWKS_FILE)
        return 0
    roles = [r.strip() for r in args.role.split(",") if r.strip()]
    unknown = sorted(set(roles) - {r.value for r in Role})
    if unknown or not roles:
        parser.error(f"unknown role(s) {unknown or args.role!r}; known: {', '.join(Role)}")
    token = key.token(
        subject=args.subject,
        roles=roles,
        tenant=args.tenant or None,
        issuer=args.issuer,
        audience=args.audience,
        ttl_seconds=args.ttl,
    )
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
