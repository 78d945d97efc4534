"""A software Ledger running the TRON app's APDU protocol, behind Speculos's TCP APDU framing.

Framing (Speculos speculos/mcu/apdu.py, ledgerblue commTCP): request = uint32 BE length || APDU;
response = uint32 BE length of data (without SW) || data || SW (2 bytes BE). Behaviour follows
LedgerHQ/app-tron as summarised in shared/reference/hardware-wallets.md §1-2: CLA/INS/Lc checks, the
FIRST/MORE/LAST/SIGN state machine, an independent protobuf parse of *each* chunk (devnet's classes, not
the vault's decoder), the settings rules for data and custom contracts, and rejection by the "user".
Every APDU received is recorded byte for byte in `received`.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import base58
import coincurve
from bip_utils import Bip32Secp256k1, Bip39SeedGenerator
from Crypto.Hash import keccak
from google.protobuf.message import DecodeError

from devnet.pb import contract_pb2, tron_pb2

SW_OK = 0x9000
USDT = bytes.fromhex("41a614f803b6fd780986a42c78ec9c7f77e6ded13c")
# Contracts app-tron parses and shows with default settings (§1.6); 46/16-18/10 need sign-by-hash.
PARSED = {1, 2, 4, 11, 12, 13, 31, 41, 42, 43, 44, 54, 55, 56, 57, 58}
HASH_ONLY = {10, 16, 17, 18, 46}
HARDENED = 0x80000000


@dataclass
class DeviceState:
    allow_data: bool = False
    allow_custom: bool = False
    sign_by_hash: bool = False
    reject: bool = False  # the user presses "reject" on every confirmation
    locked: bool = False  # OS-level lock: 0x5515 for everything
    wrong_app: bool = False  # another app is open: CLA 0xE0 is unknown (0x6E00)
    known_tokens: set[bytes] = field(default_factory=lambda: {USDT})


class SoftLedger:
    """Threaded TCP server; one client at a time, many exchanges per connection."""

    def __init__(self, mnemonic: str, port: int = 0) -> None:
        self._master = Bip32Secp256k1.FromSeed(Bip39SeedGenerator(mnemonic).Generate())
        self.state = DeviceState()
        self.received: list[bytes] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(4)
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="soft-ledger", daemon=True)
        self._reset_sign()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SoftLedger:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.2)
                self._reset_sign()
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        while not self._stop.is_set():
            head = self._recv_exact(conn, 4)
            if head is None:
                return
            (n,) = struct.unpack(">I", head)
            data = self._recv_exact(conn, n)
            if data is None:
                return
            self.received.append(data)
            resp, sw = self.handle(data)
            conn.sendall(struct.pack(">I", len(resp)) + resp + struct.pack(">H", sw))

    def _recv_exact(self, conn: socket.socket, n: int) -> bytes | None:
        # ledgerblue sends length and APDU in two send() calls: loop until all bytes are in.
        buf = b""
        while len(buf) < n:
            if self._stop.is_set():
                return None
            try:
                part = conn.recv(n - len(buf))
            except TimeoutError:
                continue
            except OSError:
                return None
            if not part:
                return None
            buf += part
        return buf

    # ------------------------------------------------------------------ keys
    def _key(self, path: list[int]) -> coincurve.PrivateKey:
        node = self._master
        for i in path:
            node = node.ChildKey(i)
        return coincurve.PrivateKey(node.PrivateKey().Raw().ToBytes())

    def _parse_path(self, data: bytes) -> tuple[list[int], bytes] | int:
        if not data or not 1 <= data[0] <= 10 or len(data) < 1 + 4 * data[0]:
            return 0x6A8A
        path = [struct.unpack(">I", data[1 + 4 * i : 5 + 4 * i])[0] for i in range(data[0])]
        if len(path) < 2 or path[0] != 44 | HARDENED or path[1] != 195 | HARDENED:
            return 0x6982  # the OS refuses derivation outside 44'/195'
        return path, data[1 + 4 * data[0] :]

    # ------------------------------------------------------------------ APDUs
    def handle(self, a: bytes) -> tuple[bytes, int]:
        if self.state.locked:
            return b"", 0x5515
        if len(a) < 4:
            return b"", 0x6A87
        cla, ins, p1, p2 = a[:4]
        lc = a[4] if len(a) > 4 else 0
        data = a[5:]
        if len(data) != lc:
            return b"", 0x6A87
        if cla != 0xE0 or self.state.wrong_app:
            return b"", 0x6E00
        handler = {0x02: self._get_public_key, 0x04: self._sign, 0x06: self._config, 0x08: self._message}.get(
            ins
        )
        if handler is None:
            return b"", 0x6D00
        return handler(p1, p2, data)

    def _config(self, p1: int, p2: int, data: bytes) -> tuple[bytes, int]:
        s = self.state
        flags = int(s.allow_data) | int(s.allow_custom) << 1 | int(s.sign_by_hash) << 3
        return bytes([flags, 0, 7, 1]), SW_OK

    def _get_public_key(self, p1: int, p2: int, data: bytes) -> tuple[bytes, int]:
        parsed = self._parse_path(data)
        if isinstance(parsed, int):
            return b"", parsed
        path, rest = parsed
        if rest:
            return b"", 0x6A8A
        if p1 == 1 and self.state.reject:
            return b"", 0x6985
        node = self._master
        for i in path:
            node = node.ChildKey(i)
        pub = node.PublicKey().RawUncompressed().ToBytes()
        addr = base58.b58encode_check(b"\x41" + keccak.new(digest_bits=256, data=pub[1:]).digest()[12:])
        out = bytes([65]) + pub + bytes([34]) + addr
        if p2 & 0x3F == 1:
            out += node.ChainCode().ToBytes()
        return out, SW_OK

    def _reset_sign(self) -> None:
        self._sign_path: list[int] | None = None
        self._sign_hash = hashlib.sha256()
        self._msg: tuple[list[int], int, bytearray] | None = None

    def _check_chunk(self, chunk: bytes) -> int:
        """Parse one chunk as Transaction.raw on its own, as app-tron's processTx does."""
        try:
            raw = tron_pb2.Transaction.raw.FromString(chunk)
        except DecodeError:
            return 0x6A80
        if raw.data and not self.state.allow_data:
            return 0x6A8B
        if len(raw.contract) > 1:
            return 0x6A80
        for c in raw.contract:
            if c.type in HASH_ONLY:
                return SW_OK if self.state.sign_by_hash else 0x6A8C
            if c.type not in PARSED:
                return 0x6A80
            if c.type == 31:
                t = contract_pb2.TriggerSmartContract.FromString(c.parameter.value)
                known = (
                    t.contract_address in self.state.known_tokens
                    and t.data[:4] in (bytes.fromhex("a9059cbb"), bytes.fromhex("095ea7b3"))
                    and len(t.data) == 68
                )
                if not known and not self.state.allow_custom:
                    return 0x6A8D
        return SW_OK

    def _sign(self, p1: int, p2: int, data: bytes) -> tuple[bytes, int]:
        if p2 != 0:
            return b"", 0x6B00
        if p1 in (0x00, 0x10):
            parsed = self._parse_path(data)
            if isinstance(parsed, int):
                return b"", parsed
            self._sign_path, chunk = parsed
            self._sign_hash = hashlib.sha256()
        elif p1 in (0x80, 0x90):
            if self._sign_path is None:
                return b"", 0x6B00
            chunk = data
        else:
            return b"", 0x6B00
        sw = self._check_chunk(chunk)
        if sw != SW_OK:
            self._reset_sign()
            return b"", sw
        self._sign_hash.update(chunk)
        if p1 in (0x00, 0x80):
            return b"", SW_OK
        path, digest = self._sign_path, self._sign_hash.digest()
        self._reset_sign()
        assert path is not None
        if self.state.reject:
            return b"", 0x6985
        return self._key(path).sign_recoverable(digest, hasher=None), SW_OK

    def _message(self, p1: int, p2: int, data: bytes) -> tuple[bytes, int]:
        if p2 != 0:
            return b"", 0x6B00
        if p1 in (0x00, 0x10):
            parsed = self._parse_path(data)
            if isinstance(parsed, int):
                return b"", parsed
            path, rest = parsed
            if len(rest) < 4:
                return b"", 0x6700
            (total,) = struct.unpack(">I", rest[:4])
            self._msg = (path, total, bytearray(rest[4:]))
        elif p1 == 0x80 and self._msg is not None:
            self._msg[2].extend(data)
        else:
            return b"", 0x6B00
        path, total, buf = self._msg
        if len(buf) > total:
            self._msg = None
            return b"", 0x6700
        if len(buf) < total:
            return b"", SW_OK
        self._msg = None
        if self.state.reject:
            return b"", 0x6985
        digest = keccak.new(
            digest_bits=256, data=b"\x19TRON Signed Message:\n" + str(total).encode() + bytes(buf)
        ).digest()
        return self._key(path).sign_recoverable(digest, hasher=None), SW_OK


@contextmanager
def soft_ledger(mnemonic: str) -> Iterator[SoftLedger]:
    dev = SoftLedger(mnemonic).start()
    try:
        yield dev
    finally:
        dev.stop()
