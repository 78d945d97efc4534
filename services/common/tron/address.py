"""TRON addresses: 21 bytes (0x41 prefix + 20), shown as base58check ("T...") or hex ("41...")."""

from __future__ import annotations

import base58

from services.common.address import TRON_ADDRESS_PREFIX, decode_tron_address


def to_base58(addr: bytes) -> str:
    """base58check of a 21-byte address."""
    if len(addr) != 21 or addr[0] != TRON_ADDRESS_PREFIX:
        raise ValueError("a TRON address is 21 bytes starting with 0x41")
    return base58.b58encode_check(addr).decode()


def from_base58(text: str) -> bytes:
    """21-byte address of a base58check string; ValueError says why it is not one."""
    return decode_tron_address(text)


def from_any(text: str) -> bytes:
    """21 bytes from base58check or 42-char hex (41...), as node JSON may carry either."""
    if len(text) == 42 and text[:2] == "41":
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    return from_base58(text)


def to_hex(addr: bytes) -> str:
    """Lowercase hex of a 21-byte address (the node's visible=false form)."""
    return addr.hex()


def evm_word(addr: bytes) -> bytes:
    """The 20-byte EVM form (drop the 0x41 prefix), as ABI address arguments take it."""
    return addr[1:] if len(addr) == 21 else addr
