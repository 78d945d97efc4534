"""TRON base58check addresses: 21 bytes, 0x41 prefix, 4-byte double-SHA256 checksum."""

from __future__ import annotations

import base58

TRON_ADDRESS_PREFIX = 0x41


def decode_tron_address(text: str) -> bytes:
    """Return the 21-byte address for a base58check TRON address, or raise ValueError saying why."""
    try:
        raw = base58.b58decode_check(text)
    except ValueError as exc:  # bad alphabet or checksum
        raise ValueError(f"not a base58check string ({exc})") from None
    if len(raw) != 21:
        raise ValueError(f"decodes to {len(raw)} bytes, want 21")
    if raw[0] != TRON_ADDRESS_PREFIX:
        raise ValueError(f"prefix byte is 0x{raw[0]:02x}, want 0x41")
    return raw


def is_tron_address(text: str) -> bool:
    """True when text is a valid base58check TRON address."""
    try:
        decode_tron_address(text)
    except ValueError:
        return False
    return True
