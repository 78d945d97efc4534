"""TronLink ownership proofs: the service issues a challenge (random nonce, expiry) that the user signs
with tronWeb.trx.signMessageV2; the proof is accepted when the signature recovers to the claimed
address before expiry. Single use is the servicer's job: it consumes the challenge atomically once the
proof verifies (a unique insert per challenge id, wallets.py), so only one use of a proof can succeed."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from .ecdsa import vault_address
from .errors import SignatureMismatch
from .messages import recover_message_v2

CHALLENGE_EXPIRED = "CHALLENGE_EXPIRED"
WRONG_SIGNER = "WRONG_SIGNER"
BAD_SIGNATURE = "BAD_SIGNATURE"


@dataclass(frozen=True)
class Challenge:
    address: str
    nonce: str
    expires_at: float  # unix seconds
    message: str  # the exact text the user signs


@dataclass(frozen=True)
class ProofResult:
    ok: bool
    reason: str | None = None


def new_challenge(
    address: str, *, ttl_seconds: int = 300, now: float | None = None, app: str = "tronpay"
) -> Challenge:
    """A challenge bound to one address; the message names the address, nonce and expiry in plain text."""
    vault_address(address)  # validate before issuing anything
    issued = time.time() if now is None else now
    nonce = secrets.token_hex(16)
    expires = issued + ttl_seconds
    when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = f"{app} wallet ownership proof\naddress: {address}\nnonce: {nonce}\nexpires: {when}"
    return Challenge(address, nonce, expires, message)


def verify_proof(challenge: Challenge, signature: str | bytes, *, now: float | None = None) -> ProofResult:
    """Check expiry and that signMessageV2(challenge.message) recovers to challenge.address."""
    if (time.time() if now is None else now) >= challenge.expires_at:
        return ProofResult(False, CHALLENGE_EXPIRED)
    try:
        signer = recover_message_v2(challenge.message, signature)
    except SignatureMismatch:
        return ProofResult(False, BAD_SIGNATURE)
    if signer != challenge.address:
        return ProofResult(False, WRONG_SIGNER)
    return ProofResult(True)
