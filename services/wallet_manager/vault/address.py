"""TRON addresses and secp256k1 signing helpers (keccak, base58check, 65-byte r||s||v signatures)."""

from __future__ import annotations

import hashlib
from functools import lru_cache

import base58
import coincurve
from Crypto.Hash import keccak

from .errors import InvalidAddress, SignatureMismatch

ADDRESS_PREFIX = 0x41


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (the pre-standard SHA-3 variant Ethereum and TRON use)."""
    return keccak.new(digest_bits=256, data=data).digest()


def pubkey_to_raw_address(pubkey: bytes) -> bytes:
    """21-byte address 0x41 || keccak256(X||Y)[12:] from a 33- or 65-byte SEC1 public key."""
    if len(pubkey) != 65:
        pubkey = coincurve.PublicKey(pubkey).format(compressed=False)
    return bytes([ADDRESS_PREFIX]) + keccak256(pubkey[1:])[12:]


# Addresses repeat (the same wallets sign again and again); pure-Python base58 costs ~10 µs a call.
@lru_cache(maxsize=65536)
def to_base58(raw: bytes) -> str:
    """Base58Check of a 21-byte address."""
    if len(raw) != 21 or raw[0] != ADDRESS_PREFIX:
        raise InvalidAddress("address must be 21 bytes starting with 0x41")
    return base58.b58encode_check(raw).decode()


@lru_cache(maxsize=65536)
def from_base58(address: str) -> bytes:
    """Validate a base58check TRON address (checksum, length, 0x41) and return its 21 bytes."""
    try:
        raw = base58.b58decode_check(address)
    except ValueError:
        raise InvalidAddress("bad base58check address") from None
    if len(raw) != 21 or raw[0] != ADDRESS_PREFIX:
        raise InvalidAddress("address must decode to 21 bytes starting with 0x41")
    return raw


def pubkey_to_address(pubkey: bytes) -> str:
    return to_base58(pubkey_to_raw_address(pubkey))


def private_key_to_address(private_key: bytes) -> str:
    return pubkey_to_address(coincurve.PrivateKey(private_key).public_key.format(compressed=False))


def txid(raw_data: bytes) -> bytes:
    """TRON txID: SHA-256 of the serialized Transaction.raw."""
    return hashlib.sha256(raw_data).digest()


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
    return pubkey_to_raw_address(pub.format(compressed=False))


def recover_address(digest: bytes, signature: bytes) -> str:
    return to_base58(recover_raw_address(digest, signature))


def require_signer(digest: bytes, signature: bytes, address: str) -> None:
    """Raise SignatureMismatch unless the signature over digest recovers to address."""
    if recover_raw_address(digest, signature) != from_base58(address):
        raise SignatureMismatch("signature does not recover to the expected address")
