"""HMAC-SHA256 webhook signatures, outgoing and incoming, in one header format:

    X-Tronpay-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]

Each v1 is HMAC-SHA256(key, f"{t}.".encode() + body) with key = the UTF-8 bytes of a secret; there is one v1
per valid secret, so during a rotation a receiver that knows either secret verifies. The timestamp is signed
with the body, so a receiver refuses a captured request replayed outside its window.

Outgoing: a merchant's secret derives from each master secret (PAYMENT_WEBHOOK_MASTER_SECRETS), so rotating
the master rotates every merchant at once and nothing per merchant is stored: merchant_secret() is what the
merchant configures on its side (`make webhook-secret`). Incoming: each source's secret is used directly.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
from collections.abc import Sequence

from services.common.settings import SettingsError, parse_settings
from services.payment_gateway.settings import PaymentGatewaySettings

HEADER = "X-Tronpay-Signature"
MAX_HEADER_LENGTH = 1024  # a few v1 values; longer is not a header we wrote
MAX_SIGNATURES = 4


class SignatureError(ValueError):
    """The signature header does not verify; `reason` is one of MISSING, MALFORMED, EXPIRED, MISMATCH."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def merchant_secret(master: str, merchant_id: str) -> str:
    """The webhook signing secret of a merchant under one master secret (hex; its ASCII is the HMAC key)."""
    return hmac.new(master.encode(), b"webhook:" + merchant_id.encode(), hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex v1 signature of body at timestamp under secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The header value signing body at timestamp with every secret (the current one first)."""
    if not secrets:
        raise ValueError("no signing secret")
    return ",".join([f"t={timestamp}", *(f"v1={sign(s, timestamp, body)}" for s in secrets)])


def parse_signature(header: str) -> tuple[int, list[str]]:
    """The timestamp and v1 signatures of a header value; other keys are ignored (later schemes)."""
    if not header:
        raise SignatureError("MISSING", "the request is not signed")
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureError("MALFORMED", "the signature header is too long")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("MALFORMED", "the signature header is not a list of key=value")
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit() or len(value) > 12:
                raise SignatureError("MALFORMED", "the signature timestamp is not unix seconds")
            timestamp = int(value)
        elif key == "v1":
            digest = value.lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise SignatureError("MALFORMED", "a v1 signature is not 64 hex digits")
            signatures.append(digest)
    if timestamp is None or not signatures:
        raise SignatureError("MALFORMED", "the signature header needs t= and at least one v1=")
    if len(signatures) > MAX_SIGNATURES:
        raise SignatureError("MALFORMED", "too many signatures")
    return timestamp, signatures


def verify_signature(
    header: str, body: bytes, secrets: Sequence[str], now: float, window_seconds: float
) -> int:
    """Check a signature header against body: some v1 must match some secret and the timestamp must be
    within window_seconds of now (either way). Returns the signed timestamp; SignatureError otherwise."""
    timestamp, signatures = parse_signature(header)
    if abs(now - timestamp) > window_seconds:
        raise SignatureError("EXPIRED", "the signature timestamp is outside the allowed window")
    expected = [sign(s, timestamp, body) for s in secrets]
    # Every comparison runs (no early exit), each in constant time.
    matched = False
    for given in signatures:
        for want in expected:
            matched |= hmac.compare_digest(given, want)
    if not matched:
        raise SignatureError("MISMATCH", "the signature does not match")
    return timestamp


def main(argv: Sequence[str]) -> int:
    """`make webhook-secret MERCHANT=m`: the merchant's secret under each master secret configured."""
    try:
        masters = parse_settings(PaymentGatewaySettings, SERVICE_NAME="payment_gateway").webhook_masters
    except SettingsError as err:
        print(err, file=sys.stderr)
        return 2
    if len(argv) != 1 or not argv[0] or not masters:
        print(
            "usage: [PAYMENT_WEBHOOK_MASTER_SECRETS=...] make webhook-secret MERCHANT=<merchant id>",
            file=sys.stderr,
        )
        return 2
    for master in masters:  # the current one first; a second one is still valid during a rotation
        print(merchant_secret(master, argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
