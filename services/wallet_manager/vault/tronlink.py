"""TronLink ownership proofs: the service issues a challenge (random nonce, expiry) that the user signs
with tronWeb.trx.signMessageV2; the proof is accepted when the signature recovers to the claimed
address before expiry, for the owner the challenge was issued to. The signed text names the cluster, the
chain and that owner, so the user sees whom the address is being given to, and a proof is worth nothing
to another owner, cluster or network. Single use is the servicer's job: it consumes the challenge
atomically once the proof verifies (a unique insert per challenge id, wallets.py), so only one use of a
proof can succeed."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from .ecdsa import vault_address
from .errors import SignatureMismatch
from .messages import recover_message_v2

CHALLENGE_EXPIRED = "CHALLENGE_EXPIRED"
WRONG_OWNER = "WRONG_OWNER"
WRONG_SIGNER = "WRONG_SIGNER"
BAD_SIGNATURE = "BAD_SIGNATURE"


@dataclass(frozen=True)
class Challenge:
    address: str
    owner: str  # the wallet owner the proof is for
    nonce: str
    expires_at: float  # unix seconds
    message: str  # the exact text the user signs


@dataclass(frozen=True)
class ProofResult:
    ok: bool
    reason: str | None = None


def new_challenge(
    address: str,
    *,
    owner: str,
    cluster: str,
    chain: str,
    ttl_seconds: int = 300,
    now: float | None = None,
    app: str = "tronpay",
) -> Challenge:
    """A challenge binding one address to one owner of one cluster on one chain; the message names them,
    the nonce and the expiry in plain text."""
    vault_address(address)  # validate before issuing anything
    issued = time.time() if now is None else now
    nonce = secrets.token_hex(16)
    expires = issued + ttl_seconds
    when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = "\n".join(
        [
            f"{app} wallet ownership proof",
            f"cluster: {cluster}",
            f"chain: {chain}",
            f"owner: {owner}",
            f"address: {address}",
            f"nonce: {nonce}",
            f"expires: {when}",
        ]
    )
    return Challenge(address, owner, nonce, expires, message)


def verify_proof(
    challenge: Challenge, signature: str | bytes, *, owner: str, now: float | None = None
) -> ProofResult:
    """Check expiry, that the proof is submitted for the challenge's owner, and that
    signMessageV2(challenge.message) recovers to challenge.address."""
    if (time.time() if now is None else now) >= challenge.expires_at:
        return ProofResult(False, CHALLENGE_EXPIRED)
    if not owner or owner != challenge.owner:
        return ProofResult(False, WRONG_OWNER)
    try:
        signer = recover_message_v2(challenge.message, signature)
    except SignatureMismatch:
        return ProofResult(False, BAD_SIGNATURE)
    if signer != challenge.address:
        return ProofResult(False, WRONG_SIGNER)
    return ProofResult(True)
