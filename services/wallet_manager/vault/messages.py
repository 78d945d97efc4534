"""TRON personal messages: TIP-191-style V2 (TronWeb signMessageV2) and legacy v1 digests, sign, verify.

V2 digest: keccak256("\\x19TRON Signed Message:\\n" || ascii(len(msg)) || msg); signatures are r||s||v
with v = 27/28 as TronWeb/TronLink produce; Ledger returns v = 0/1 and both verify.
"""

from __future__ import annotations

from services.common.tron.address import keccak256

from .ecdsa import recover_address, sign_digest
from .errors import SignatureMismatch

PREFIX = b"\x19TRON Signed Message:\n"


def _as_bytes(message: str | bytes) -> bytes:
    # TronWeb hashes a string as UTF-8 text (even "0x.."), and bytes as themselves.
    return message.encode("utf-8") if isinstance(message, str) else bytes(message)


def hash_message_v2(message: str | bytes) -> bytes:
    msg = _as_bytes(message)
    return keccak256(PREFIX + str(len(msg)).encode() + msg)


def hash_message_v1(hex_message: str) -> bytes:
    """Legacy tronWeb.trx.sign(hexString): a literal "32" length, whatever the message length."""
    return keccak256(PREFIX + b"32" + bytes.fromhex(hex_message.removeprefix("0x")))


def sign_message_v2(private_key: bytes, message: str | bytes) -> bytes:
    """65-byte r||s||v with v in {27, 28}, byte-identical to TronWeb signMessageV2 (RFC 6979)."""
    sig = sign_digest(private_key, hash_message_v2(message))
    return sig[:64] + bytes([sig[64] + 27])


def parse_signature(signature: str | bytes) -> bytes:
    """Accept "0x"-hex or raw 65 bytes; raise SignatureMismatch for anything else."""
    if isinstance(signature, str):
        try:
            signature = bytes.fromhex(signature.removeprefix("0x"))
        except ValueError:
            raise SignatureMismatch("signature is not hex") from None
    if len(signature) != 65:
        raise SignatureMismatch("signature must be 65 bytes")
    return bytes(signature)


def recover_message_v2(message: str | bytes, signature: str | bytes) -> str:
    """Base58 address that signed the message (TronWeb verifyMessageV2)."""
    return recover_address(hash_message_v2(message), parse_signature(signature))


def verify_message_v2(message: str | bytes, signature: str | bytes, address: str) -> bool:
    try:
        return recover_message_v2(message, signature) == address
    except SignatureMismatch:
        return False
