"""TRON cryptography: keccak, 21-byte addresses (0x41 || 20), base58check, secp256k1 sign/recover.

Signatures are r||s||v over a 32-byte digest (the txID) with no prefix or re-hash, as java-tron does.
"""

from __future__ import annotations

import hashlib

import base58
from coincurve import PrivateKey, PublicKey
from Crypto.Hash import keccak

ADDRESS_PREFIX = 0x41
ADDRESS_SIZE = 21


class AddressError(ValueError):
    """An address string or byte string is not a valid TRON address."""


class SignatureError(ValueError):
    """A signature cannot be recovered to a public key."""


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def address_from_public_key(pub: bytes) -> bytes:
    """21-byte address from a compressed (33) or uncompressed (65/64) secp256k1 public key."""
    if len(pub) == 64:
        pub = b"\x04" + pub
    uncompressed = PublicKey(pub).format(compressed=False)
    return bytes([ADDRESS_PREFIX]) + keccak256(uncompressed[1:])[12:]


def address_from_private_key(priv: bytes) -> bytes:
    if len(priv) != 32:
        raise ValueError("private key must be 32 bytes")
    return address_from_public_key(PrivateKey(priv).public_key.format(compressed=False))


def is_address(addr: bytes) -> bool:
    return len(addr) == ADDRESS_SIZE and addr[0] == ADDRESS_PREFIX


def to_base58(addr: bytes) -> str:
    return base58.b58encode_check(addr).decode()


def from_base58(s: str) -> bytes:
    """Decode a base58check TRON address; raises AddressError on bad characters, checksum or shape."""
    if not isinstance(s, str) or not s:
        raise AddressError("Invalid address")
    try:
        raw = base58.b58decode_check(s)
    except ValueError as exc:
        raise AddressError(f"Invalid address {s!r}: {exc}") from None
    if not is_address(raw):
        raise AddressError(f"Invalid address {s!r}")
    return raw


def to_hex(addr: bytes) -> str:
    return addr.hex()


def from_hex(s: str) -> bytes:
    """Decode a 42-hex-char '41...' address (a '0x' prefix is not accepted, as in java-tron)."""
    try:
        raw = bytes.fromhex(s)
    except (ValueError, TypeError):
        raise AddressError(f"Invalid address {s!r}") from None
    if not is_address(raw):
        raise AddressError(f"Invalid address {s!r}")
    return raw


def parse_address(s: str) -> bytes:
    """Accept either form: 34-char base58 ('T...') or 42-char hex ('41...')."""
    if isinstance(s, str) and len(s) == 42 and s[:2] == "41":
        return from_hex(s)
    return from_base58(s)


def sign(digest: bytes, priv: bytes) -> bytes:
    """65-byte r||s||v signature (v in {0,1}) of a 32-byte digest, as tronpy and java-tron produce."""
    if len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    return PrivateKey(priv).sign_recoverable(digest, hasher=None)


def recover_public_key(digest: bytes, sig: bytes) -> bytes:
    """Uncompressed public key (65 bytes) that signed `digest`; v may be 0..3 or 27..34 (java-tron rule)."""
    if len(digest) != 32:
        raise SignatureError("digest must be 32 bytes")
    if len(sig) < 65:
        raise SignatureError(f"Signature size is {len(sig)}")
    v = sig[64]
    header = v + 27 if v < 27 else v
    if not 27 <= header <= 34:
        raise SignatureError(f"Header byte out of range: {header}")
    if header >= 31:
        header -= 4
    try:
        pub = PublicKey.from_signature_and_message(sig[:64] + bytes([header - 27]), digest, hasher=None)
    except Exception as exc:  # coincurve raises plain Exception on an unrecoverable signature
        raise SignatureError(f"Signature recovery failed: {exc}") from None
    return pub.format(compressed=False)


def recover_address(digest: bytes, sig: bytes) -> bytes:
    return address_from_public_key(recover_public_key(digest, sig))
