"""Ledger TRON app (LedgerHQ/app-tron) client over ledgerblue.

APDUs (hardware-wallets.md §1): CLA 0xE0; GET_PUBLIC_KEY 0x02, SIGN 0x04, GET_APP_CONFIGURATION 0x06,
SIGN_PERSONAL_MESSAGE 0x08. The app protobuf-decodes every SIGN chunk on its own, so raw_data is split
only at top-level field boundaries; the device hashes the concatenation (sha256 = txID). Signatures come
back as r||s||v with v in {0,1}; every one is checked to recover to the expected address over *our*
digest before it is returned.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ledgerblue import commTCP
from ledgerblue.commException import CommException

from services.common.tron.address import pubkey_to_address
from services.common.tron.tx import txid_digest

from .ecdsa import require_signer
from .errors import MalformedTransaction, SignatureMismatch, VaultError
from .hd import compress_pubkey, hash160_fingerprint, xpub_from_parts
from .messages import hash_message_v2
from .tron_tx import top_level_fields

CLA = 0xE0
INS_GET_PUBLIC_KEY = 0x02
INS_SIGN = 0x04
INS_GET_APP_CONFIGURATION = 0x06
INS_SIGN_PERSONAL_MESSAGE = 0x08
P1_FIRST, P1_SIGN, P1_MORE, P1_LAST = 0x00, 0x10, 0x80, 0x90
# hw-app-trx's chunk size; the APDU Lc byte allows 255, tests/tron.py stops below 255.
CHUNK_SIZE = 250

# Status word -> (reason, message). Messages are for operators and never include request data.
STATUS_WORDS: dict[int, tuple[str, str]] = {
    0x6985: ("USER_REJECTED", "the request was rejected on the Ledger"),
    0x6A8B: ("DATA_NOT_ALLOWED", "the TRON app refuses a memo/data field: enable 'Allow data' on the Ledger"),
    0x6A8D: (
        "CUSTOM_CONTRACTS_NOT_ALLOWED",
        "the TRON app refuses this smart-contract call: enable 'Custom contracts' on the Ledger",
    ),
    0x6A8C: ("SIGN_BY_HASH_NOT_ALLOWED", "this contract needs the 'Sign by hash' setting on the Ledger"),
    0x6A80: ("INVALID_DATA", "the TRON app cannot parse or does not support this transaction"),
    0x6A87: ("WRONG_DATA_LENGTH", "APDU length mismatch"),
    0x6A8A: ("INVALID_PATH", "the BIP32 path was refused"),
    0x6700: ("WRONG_LENGTH", "incorrect data length"),
    0x6B00: ("BAD_PARAMETERS", "bad P1/P2 or chunks out of sequence"),
    0x6982: ("DEVICE_LOCKED", "security status not satisfied: is the Ledger unlocked?"),
    0x5515: ("DEVICE_LOCKED", "the Ledger is locked"),
    0x6D00: ("WRONG_APP", "instruction not supported: is the TRON app open on the Ledger?"),
    0x6E00: ("WRONG_APP", "class not supported: is the TRON app open on the Ledger?"),
    0x6F00: ("DEVICE_UNAVAILABLE", "no answer from the Ledger"),
}


class LedgerError(VaultError):
    """A Ledger status word or transport failure, with a stable `reason` and the raw `sw`."""

    reason = "LEDGER_ERROR"

    def __init__(self, sw: int, reason: str | None = None, message: str | None = None) -> None:
        known = STATUS_WORDS.get(sw, ("LEDGER_ERROR", "unexpected status word"))
        self.sw = sw
        self.reason = reason or known[0]
        super().__init__(f"{message or known[1]} (SW {sw:04X})")


class LedgerUserRejected(LedgerError):
    """The user pressed reject (SW 0x6985)."""


class Dongle(Protocol):
    def exchange(self, apdu: bytes, timeout: int = ...) -> bytearray: ...
    def close(self) -> None: ...


def open_tcp(host: str = "127.0.0.1", port: int = 9999) -> Dongle:
    """A Speculos-framed TCP connection (ledgerblue.commTCP): Speculos, or a software device in tests."""
    try:
        # ledgerblue leaks its socket when the connect fails: find out first, on a socket we close.
        with socket.create_connection((host, port), timeout=5):
            pass
        return commTCP.getDongle(host, port, False)
    except (OSError, CommException):
        raise LedgerError(0x6F00, "DEVICE_UNAVAILABLE", "cannot connect to the Ledger transport") from None


def open_usb() -> Dongle:
    """The first Ledger ledgerblue finds (USB HID, or LEDGER_PROXY_ADDRESS/PORT read at its import)."""
    # Imported late: ledgerblue.comm reads LEDGER_PROXY_* and loads hid/nfc at import time.
    from ledgerblue.comm import getDongle

    try:
        return getDongle(False)
    except CommException:
        raise LedgerError(0x6F00, "DEVICE_UNAVAILABLE", "no Ledger found") from None


def encode_path(path: Sequence[int]) -> bytes:
    if not 1 <= len(path) <= 10:
        raise VaultError("a BIP32 path has 1 to 10 levels")
    return bytes([len(path)]) + b"".join(struct.pack(">I", i) for i in path)


def apdu(ins: int, p1: int, p2: int, data: bytes = b"") -> bytes:
    if len(data) > 255:
        raise VaultError("APDU data longer than 255 bytes")
    return bytes([CLA, ins, p1, p2, len(data)]) + data


def sign_apdus(path: Sequence[int], raw: bytes) -> list[bytes]:
    """SIGN APDUs for raw_data: greedy packing of whole top-level fields, the path in the first chunk."""
    chunks: list[bytes] = []
    cur, empty = encode_path(path), True
    for f in top_level_fields(raw):
        if not empty and len(cur) + len(f) > CHUNK_SIZE:
            chunks.append(cur)
            cur = b""
        cur, empty = cur + f, False
        if len(cur) > CHUNK_SIZE:
            raise MalformedTransaction("a transaction field is too large for one Ledger APDU")
    chunks.append(cur)
    if len(chunks) == 1:
        return [apdu(INS_SIGN, P1_SIGN, 0, chunks[0])]
    p1s = [P1_FIRST] + [P1_MORE] * (len(chunks) - 2) + [P1_LAST]
    return [apdu(INS_SIGN, p1, 0, c) for p1, c in zip(p1s, chunks, strict=True)]


def personal_message_apdus(path: Sequence[int], message: bytes) -> list[bytes]:
    """First APDU: path || uint32 BE length || bytes; then P1=0x80 continuations (no LAST flag)."""
    head = encode_path(path) + struct.pack(">I", len(message))
    first = CHUNK_SIZE - len(head)
    out = [apdu(INS_SIGN_PERSONAL_MESSAGE, P1_FIRST, 0, head + message[:first])]
    for i in range(first, len(message), CHUNK_SIZE):
        out.append(apdu(INS_SIGN_PERSONAL_MESSAGE, P1_MORE, 0, message[i : i + CHUNK_SIZE]))
    return out


@dataclass(frozen=True)
class LedgerAddress:
    address: str
    public_key: bytes = field(repr=False)  # 65-byte uncompressed
    chain_code: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AppConfiguration:
    allow_data: bool
    allow_custom_contracts: bool
    truncate_address: bool
    sign_by_hash: bool
    version: str


class LedgerTronClient:
    """The TRON app's commands over one ledgerblue dongle. Not thread-safe: one exchange at a time."""

    def __init__(self, dongle: Dongle) -> None:
        self._dongle = dongle

    def close(self) -> None:
        self._dongle.close()

    def __enter__(self) -> LedgerTronClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exchange(self, data: bytes) -> bytes:
        try:
            return bytes(self._dongle.exchange(data))
        except CommException as e:
            sw = int(getattr(e, "sw", 0x6F00))
            cls = LedgerUserRejected if sw == 0x6985 else LedgerError
            raise cls(sw) from None
        except OSError:
            raise LedgerError(0x6F00, "DEVICE_UNAVAILABLE", "the Ledger connection failed") from None

    def get_app_configuration(self) -> AppConfiguration:
        resp = self.exchange(apdu(INS_GET_APP_CONFIGURATION, 0, 0))
        if len(resp) < 4:
            raise LedgerError(0x6F00, "BAD_RESPONSE", "short GET_APP_CONFIGURATION response")
        f = resp[0]
        return AppConfiguration(
            bool(f & 1), bool(f & 2), bool(f & 4), bool(f & 8), f"{resp[1]}.{resp[2]}.{resp[3]}"
        )

    def get_address(
        self, path: Sequence[int], *, confirm: bool = False, chain_code: bool = False
    ) -> LedgerAddress:
        """Public key and address at path; the address is recomputed from the key and must agree."""
        resp = self.exchange(apdu(INS_GET_PUBLIC_KEY, int(confirm), int(chain_code), encode_path(path)))
        try:
            klen = resp[0]
            pub = resp[1 : 1 + klen]
            alen = resp[1 + klen]
            addr = resp[2 + klen : 2 + klen + alen].decode("ascii")
            cc = resp[2 + klen + alen : 2 + klen + alen + 32] if chain_code else None
        except (IndexError, UnicodeDecodeError):
            raise LedgerError(0x6F00, "BAD_RESPONSE", "malformed GET_PUBLIC_KEY response") from None
        if klen != 65 or alen != 34 or (cc is not None and len(cc) != 32):
            raise LedgerError(0x6F00, "BAD_RESPONSE", "malformed GET_PUBLIC_KEY response")
        if pubkey_to_address(pub) != addr:
            raise SignatureMismatch("the Ledger's address does not match its public key")
        return LedgerAddress(addr, pub, cc)

    def sign_transaction(self, path: Sequence[int], raw: bytes, expected_address: str) -> bytes:
        """Stream raw_data, return r||s||v (v in {0,1}) after checking it recovers to expected_address."""
        return self._signed(sign_apdus(path, raw), txid_digest(raw), expected_address)

    def sign_personal_message(self, path: Sequence[int], message: bytes, expected_address: str) -> bytes:
        """TIP-191 v2 signature by the device (v in {0,1}), checked against our own digest."""
        return self._signed(personal_message_apdus(path, message), hash_message_v2(message), expected_address)

    def _signed(self, apdus: Sequence[bytes], digest: bytes, expected_address: str) -> bytes:
        """Send the APDUs; the last reply is r||s||v, which must recover to expected_address over digest."""
        resp = b""
        for a in apdus:
            resp = self.exchange(a)
        if len(resp) < 65:
            raise LedgerError(0x6F00, "BAD_RESPONSE", "short signature from the Ledger")
        sig = resp[:65]
        require_signer(digest, sig, expected_address)
        return sig

    def account_xpub(self, account: int) -> str:
        """Account xpub m/44'/195'/account' assembled from INS 02 with chain code (hardware-wallets.md §5)."""
        h = 0x80000000
        parent = self.get_address([44 | h, 195 | h])
        node = self.get_address([44 | h, 195 | h, account | h], chain_code=True)
        if node.chain_code is None:
            raise LedgerError(0x6F00, "BAD_RESPONSE", "GET_PUBLIC_KEY answered without a chain code")
        fingerprint = hash160_fingerprint(compress_pubkey(parent.public_key))
        return xpub_from_parts(node.chain_code, compress_pubkey(node.public_key), fingerprint, account)
