"""Development PKI for mutual TLS inside the mesh: a cluster CA and one certificate per identity.

Every service, the edge and the operator's command-line tools hold a certificate from the cluster CA; the
services authorise internal RPCs by the peer certificate's identity (services/common/tls.py,
services/common/access.py `Peer`). `make up` runs this on start: it makes what is missing under
``.data/pki/`` (gitignored) and keeps what exists, renewing a certificate that expires within 30 days or
was issued by another CA.

Layout (the keys of a cert-manager / kubernetes.io/tls Secret, so production mounts one per identity):
    <dir>/ca.crt, <dir>/ca.key                       the development CA (key 0600; never leaves the machine)
    <dir>/<identity>/tls.crt, tls.key, ca.crt        one per identity: CN and DNS SAN = the identity

Usage:
    python tools/devpki.py [--dir .data/pki] [identity ...]   # default: every Peer
The tests make their own CA with ``ensure`` in a temporary directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO_ROOT / ".data" / "pki"
CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
# Every certificate identity of services.common.access.Peer (a test keeps the two equal; tools/ does not
# import services/).
IDENTITIES = (
    "tron-client",
    "payout-router",
    "wallet-manager",
    "usdt-manager",
    "trx-staking",
    "payment-gateway",
    "edge",
    "operator",
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA under `directory`, made when absent."""
    crt, key = directory / "ca.crt", directory / "ca.key"
    if crt.exists() and key.exists():
        loaded = serialization.load_pem_private_key(key.read_bytes(), None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise SystemExit(f"{key}: not an EC private key")
        return x509.load_pem_x509_certificate(crt.read_bytes()), loaded
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tronpay development CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()), critical=False)
        .sign(private, hashes.SHA256())
    )
    _write(key, _key_pem(private), private=True)
    _write(crt, cert.public_bytes(serialization.Encoding.PEM))
    return cert, private


def issue(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, identity: str, dns_names: Sequence[str] = ()
) -> tuple[bytes, bytes]:
    """A leaf certificate and key (PEM) for `identity`: CN = identity, DNS SANs = identity + `dns_names`,
    usable as both TLS server and client."""
    private = ec.generate_private_key(ec.SECP256R1())
    names = list(dict.fromkeys((identity, *dns_names)))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .issuer_name(ca.subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(private)


def _current(leaf_dir: Path, ca: x509.Certificate) -> bool:
    """Whether the identity's files exist, come from this CA and are not about to expire."""
    try:
        cert = x509.load_pem_x509_certificate((leaf_dir / "tls.crt").read_bytes())
        ca_copy = (leaf_dir / "ca.crt").read_bytes()
    except (OSError, ValueError):
        return False
    return (
        (leaf_dir / "tls.key").exists()
        and cert.issuer == ca.subject
        and ca_copy == ca.public_bytes(serialization.Encoding.PEM)
        and cert.not_valid_after_utc - _now() > RENEW_BEFORE
    )


def ensure(
    directory: Path,
    identities: Iterable[str] = IDENTITIES,
    dns_names: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """Make the CA and each identity's files under `directory` where missing or stale; returns the
    identities (re)issued. `dns_names` adds SANs per identity (e.g. a test upstream that answers for every
    service name)."""
    ca, ca_key = _ca(directory)
    made = []
    for identity in identities:
        leaf = directory / identity
        if _current(leaf, ca):
            continue
        cert, key = issue(ca, ca_key, identity, (dns_names or {}).get(identity, ()))
        _write(leaf / "tls.key", key, private=True)
        _write(leaf / "tls.crt", cert)
        _write(leaf / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
        made.append(identity)
    return made


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("TLS_DIR") or DEFAULT_DIR))
    parser.add_argument("identities", nargs="*", default=list(IDENTITIES))
    args = parser.parse_args(argv)
    made = ensure(args.dir, args.identities)
    if made:
        print(f"development certificates in {args.dir}: issued {', '.join(made)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
