"""TRON addresses: 21 bytes (0x41 prefix + 20), shown as base58check ("T...") or hex ("41..."), and the
address of a secp256k1 key. The one place that validates an address: base58check checksum, exactly
21 bytes, 0x41 prefix; InvalidAddress (a ValueError) says which check failed.
"""

from __future__ import annotations

from functools import lru_cache

import base58
import coincurve
from Crypto.Hash import keccak

TRON_ADDRESS_PREFIX = 0x41


class InvalidAddress(ValueError):
    """Not a TRON address; the message says why (settings and field violations show it)."""


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (the pre-standard SHA-3 variant Ethereum and TRON use)."""
    return keccak.new(digest_bits=256, data=data).digest()


# Addresses repeat (the same wallets sign again and again); pure-Python base58 costs ~10 µs a call.
@lru_cache(maxsize=65536)
def from_base58(text: str) -> bytes:
    """21-byte address of a base58check TRON address; InvalidAddress says why it is not one."""
    try:
        raw = base58.b58decode_check(text)
    except ValueError as exc:  # bad alphabet or checksum
        raise InvalidAddress(f"not a base58check string ({exc})") from None
    if len(raw) != 21:
        raise InvalidAddress(f"decodes to {len(raw)} bytes, want 21")
    if raw[0] != TRON_ADDRESS_PREFIX:
        raise InvalidAddress(f"prefix byte is 0x{raw[0]:02x}, want 0x41")
    return raw


def to_base58(addr: bytes) -> str:
    """base58check of a 21-byte address."""
    return _to_base58(bytes(addr))  # bytes() so bytearray/memoryview callers can use the cache


@lru_cache(maxsize=65536)
def _to_base58(addr: bytes) -> str:
    if len(addr) != 21 or addr[0] != TRON_ADDRESS_PREFIX:
        raise InvalidAddress("a TRON address is 21 bytes starting with 0x41")
    return base58.b58encode_check(addr).decode()


def from_any(text: str) -> bytes:
    """21 bytes from base58check or 42-char hex (41...), as node JSON may carry either."""
    if len(text) == 42 and text[:2] == "41":
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if len(raw) == 21:  # fromhex skips whitespace, so the length is checked on the bytes
            return raw
    return from_base58(text)


def evm_word(addr: bytes) -> bytes:
    """The 20-byte EVM form (drop the 0x41 prefix), as ABI address arguments take it."""
    return addr[1:] if len(addr) == 21 else addr


def pubkey_to_raw_address(pubkey: bytes) -> bytes:
    """21-byte address 0x41 || keccak256(X||Y)[12:] from a 33- or 65-byte SEC1 public key."""
    if len(pubkey) != 65:
        pubkey = coincurve.PublicKey(pubkey).format(compressed=False)
    return bytes([TRON_ADDRESS_PREFIX]) + keccak256(pubkey[1:])[12:]


def pubkey_to_address(pubkey: bytes) -> str:
    return to_base58(pubkey_to_raw_address(pubkey))


def private_key_to_address(private_key: bytes) -> str:
    return pubkey_to_address(coincurve.PrivateKey(private_key).public_key.format(compressed=False))
