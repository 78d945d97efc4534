"""Contract call data for TRON: 4-byte selector (Keccak-256 of the signature) + ABI-encoded arguments.

TRON addresses are ABI `address` values without their 0x41 prefix; these helpers take and return
base58/21-byte addresses so callers never handle the 20-byte form.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from services.common.tron.address import from_any, keccak256, to_base58

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
# TRC20 calls that move or expose a balance (what signing policy and transfer tracking look for).
TRC20_TRANSFER = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
TRC20_APPROVE = bytes.fromhex("095ea7b3")  # approve(address,uint256)
TRC20_TRANSFER_FROM = bytes.fromhex("23b872dd")  # transferFrom(address,address,uint256)
_SIG = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$")


def selector(signature: str) -> bytes:
    """First 4 bytes of keccak256("transfer(address,uint256)")."""
    return keccak256(signature.replace(" ", "").encode())[:4]


def arg_types(signature: str) -> list[str]:
    """Argument types of a flat signature ("f(address,uint256)" -> ["address", "uint256"])."""
    m = _SIG.match(signature.replace(" ", ""))
    if m is None:
        raise ValueError(f"not a function signature: {signature!r}")
    inner = m.group(2)
    if "(" in inner:
        raise ValueError("tuple arguments are not supported here; pass ABI-encoded parameters")
    return [t for t in inner.split(",") if t]


def _to_abi(typ: str, value: Any) -> Any:
    if typ == "address":
        return "0x" + from_any(value).hex()[2:] if isinstance(value, str) else "0x" + bytes(value)[-20:].hex()
    if typ == "address[]":
        return [_to_abi("address", v) for v in value]
    return value


def encode_args(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """ABI-encode arguments; TRON addresses (base58, 41-hex or 21 bytes) become ABI addresses."""
    return abi_encode(list(types), [_to_abi(t, v) for t, v in zip(types, values, strict=True)])


def encode_call(signature: str, *values: Any) -> bytes:
    """selector ‖ encoded arguments, e.g. encode_call("transfer(address,uint256)", "T...", 10**6)."""
    return selector(signature) + encode_args(arg_types(signature), values)


def decode_result(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """ABI-decode return data; addresses come back as base58."""
    out = []
    for t, v in zip(types, abi_decode(list(types), data), strict=True):
        out.append(to_base58(b"\x41" + bytes.fromhex(v[2:])) if t == "address" else v)
    return tuple(out)


def revert_reason(data: bytes) -> str:
    """The message of Error(string) revert data, or "" when it is not one."""
    if data[:4] != ERROR_SELECTOR:
        return ""
    try:
        return str(abi_decode(["string"], data[4:])[0])
    except Exception:  # malformed revert data: no reason to show
        return ""
