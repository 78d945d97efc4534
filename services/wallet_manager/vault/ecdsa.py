"""secp256k1 signatures over 32-byte digests: sign (RFC 6979 low-S, r||s||v), recover, require a signer.

Addresses come from services.common.tron.address; failures here are vault errors (SignatureMismatch,
InvalidAddress) so the servicer maps them like every other vault refusal.
"""

from __future__ import annotations

import coincurve

from services.common.tron import address as taddr

from .errors import InvalidAddress, SignatureMismatch


def sign_digest(private_key: bytes, digest: bytes) -> bytes:
    """RFC 6979 low-S recoverable signature r||s||v, v in {0,1} (as Ledger returns; java-tron accepts)."""
    if len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    return coincurve.PrivateKey(private_key).sign_recoverable(digest, hasher=None)


def recover_raw_address(digest: bytes, signature: bytes) -> bytes:
    """21-byte signer address of a 65-byte signature; v may be 0/1 or 27/28."""
    if len(signature) != 65 or len(digest) != 32:
        raise SignatureMismatch("signature must be 65 bytes over a 32-byte digest")
    v = signature[64]
    v = v - 27 if v >= 27 else v
    if v not in (0, 1):
        raise SignatureMismatch("signature recovery id out of range")
    try:
        pub = coincurve.PublicKey.from_signature_and_message(signature[:64] + bytes([v]), digest, hasher=None)
    except Exception:  # coincurve raises plain Exception for unrecoverable signatures
        raise SignatureMismatch("signature does not recover to a public key") from None
    return taddr.pubkey_to_raw_address(pub.format(compressed=False))


def recover_address(digest: bytes, signature: bytes) -> str:
    return taddr.to_base58(recover_raw_address(digest, signature))


def vault_address(address: str) -> bytes:
    """21 bytes of a base58check address, failing as the vault's InvalidAddress (a VaultError)."""
    try:
        return taddr.from_base58(address)
    except taddr.InvalidAddress:
        raise InvalidAddress("address must be base58check of 21 bytes starting with 0x41") from None


def require_signer(digest: bytes, signature: bytes, address: str) -> None:
    """Raise SignatureMismatch unless the signature over digest recovers to address."""
    if recover_raw_address(digest, signature) != vault_address(address):
        raise SignatureMismatch("signature does not recover to the expected address")
