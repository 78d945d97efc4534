"""A software Trezor (core firmware 2.12, model T) with the native TRON messages, behind the emulator's
UDP transport: 64-byte datagrams, PINGPING/PONGPONG readiness, protocol v1 framing ('?##' + uint16 type +
uint32 length + protobuf, continuation packets '?' + 63 bytes). Messages are (de)serialised with
trezorlib's own mapping. Like the firmware (core/src/apps/tron/sign_tx.py) it rebuilds Transaction.raw
from fields 1, 4, 8, 10, 11, 14, 18 only (with devnet's protobuf classes), signs sha256 of that and
returns v = 27 + recid. Every message received is recorded as (wire type, payload bytes, decoded).
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any

import base58
import coincurve
from bip_utils import Bip32Secp256k1, Bip39SeedGenerator
from Crypto.Hash import keccak
from trezorlib import messages as m
from trezorlib.mapping import DEFAULT_MAPPING

from devnet.pb import common_pb2, contract_pb2, tron_pb2

HARDENED = 0x80000000
TYPE_URL = "type.googleapis.com/protocol."


def _resource(value: int | None) -> common_pb2.ResourceCode.ValueType:
    """A Trezor message's resource field (absent = BANDWIDTH) as TRON's ResourceCode."""
    return common_pb2.ResourceCode.ValueType(value or 0)


@dataclass
class TrezorState:
    reject: bool = False  # the user presses "cancel" at the confirmation screen
    tamper: bool = False  # sign different bytes than the host sent (amount + 1), to prove we verify
    locked: bool = False  # PIN entry fails
    firmware: tuple[int, int, int] = (2, 12, 4)


class SoftTrezor:
    def __init__(self, mnemonic: str, port: int = 0) -> None:
        self._master = Bip32Secp256k1.FromSeed(Bip39SeedGenerator(mnemonic).Generate())
        self.state = TrezorState()
        self.received: list[tuple[int, bytes, Any]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", port))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self._session_id = os.urandom(32)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="soft-trezor", daemon=True)
        self._partial: tuple[int, int, bytearray] | None = None
        self._sign_tx: m.TronSignTx | None = None
        self._after_ack: Any = None

    @property
    def path(self) -> str:
        return f"udp:127.0.0.1:{self.port}"

    def start(self) -> SoftTrezor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    # ------------------------------------------------------------------ transport
    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                pkt, peer = self._sock.recvfrom(64)
            except TimeoutError:
                continue
            except OSError:
                return
            if pkt == b"PINGPING":
                self._sock.sendto(b"PONGPONG", peer)
                continue
            msg = self._reassemble(pkt)
            if msg is None:
                continue
            mtype, payload = msg
            decoded = DEFAULT_MAPPING.decode(mtype, payload)
            self.received.append((mtype, payload, decoded))
            reply = self._handle(decoded)
            self._send(peer, reply)

    def _reassemble(self, pkt: bytes) -> tuple[int, bytes] | None:
        if len(pkt) != 64:
            return None
        if pkt[:3] == b"?##":
            mtype, length = struct.unpack(">HI", pkt[3:9])
            self._partial = (mtype, length, bytearray(pkt[9:]))
        elif pkt[:1] == b"?" and self._partial is not None:
            self._partial[2].extend(pkt[1:])
        else:
            return None
        mtype, length, buf = self._partial
        if len(buf) < length:
            return None
        self._partial = None
        return mtype, bytes(buf[:length])

    def _send(self, peer: Any, msg: Any) -> None:
        mtype, payload = DEFAULT_MAPPING.encode(msg)
        data = struct.pack(">HI", mtype, len(payload)) + payload
        first, rest = data[:61], data[61:]
        self._sock.sendto(b"?##" + first.ljust(61, b"\0"), peer)
        for i in range(0, len(rest), 63):
            self._sock.sendto(b"?" + rest[i : i + 63].ljust(63, b"\0"), peer)

    # ------------------------------------------------------------------ device
    def _node(self, path: list[int]) -> Bip32Secp256k1:
        node = self._master
        for i in path:
            node = node.ChildKey(i)
        return node

    def _features(self) -> m.Features:
        major, minor, patch = self.state.firmware
        return m.Features(
            vendor="trezor.io",
            major_version=major,
            minor_version=minor,
            patch_version=patch,
            model="T",
            internal_model="T2T1",
            device_id="SOFTTREZOR0001",
            label="soft trezor",
            initialized=True,
            unlocked=True,
            pin_protection=False,
            passphrase_protection=False,
            session_id=self._session_id,
            capabilities=[m.Capability.Bitcoin, m.Capability.Ethereum],
        )

    def _failure(self, code: m.FailureType, text: str) -> m.Failure:
        self._sign_tx = None
        self._after_ack = None
        return m.Failure(code=code, message=text)

    def _confirm(self, then: Any, code: m.ButtonRequestType = m.ButtonRequestType.SignTx) -> m.ButtonRequest:
        self._after_ack = then
        return m.ButtonRequest(code=code)

    def _tron_path_ok(self, path: list[int]) -> bool:
        return (
            len(path) == 5 and path[0] == 44 | HARDENED and path[1] == 195 | HARDENED and path[2] >= HARDENED
        )

    def _handle(self, msg: Any) -> Any:
        if isinstance(msg, m.Cancel):
            return self._failure(m.FailureType.ActionCancelled, "Cancelled")
        if isinstance(msg, m.Initialize | m.GetFeatures):
            return self._features()
        if isinstance(msg, m.ApplyFlags):  # trezorlib's ensure_unlocked(): a no-op that needs the PIN
            if self.state.locked:
                return self._failure(m.FailureType.PinInvalid, "PIN invalid")
            return m.Success()
        if isinstance(msg, m.EndSession):
            return m.Success()
        if isinstance(msg, m.Ping):
            return m.Success(message=msg.message)
        if isinstance(msg, m.ButtonAck):
            then, self._after_ack = self._after_ack, None
            if then is None:
                return self._failure(m.FailureType.UnexpectedMessage, "Unexpected message")
            if self.state.reject:
                return self._failure(m.FailureType.ActionCancelled, "Cancelled")
            return then()
        if isinstance(msg, m.GetPublicKey):
            return self._public_key(list(msg.address_n))
        if isinstance(msg, m.TronGetAddress):
            path = list(msg.address_n)
            if not self._tron_path_ok(path):
                return self._failure(m.FailureType.DataError, "Forbidden key path")
            answer = lambda: m.TronAddress(address=self._address(path))  # noqa: E731
            return self._confirm(answer, m.ButtonRequestType.Address) if msg.show_display else answer()
        if isinstance(msg, m.TronSignTx):
            if not self._tron_path_ok(list(msg.address_n)):
                return self._failure(m.FailureType.DataError, "Forbidden key path")
            self._sign_tx = msg
            return m.TronContractRequest()
        if self._sign_tx is not None and type(msg).__name__.startswith("Tron"):
            tx, self._sign_tx = self._sign_tx, None
            return self._confirm(lambda: self._sign(tx, msg))
        return self._failure(m.FailureType.UnexpectedMessage, "Unexpected message")

    def _address(self, path: list[int]) -> str:
        pub = self._node(path).PublicKey().RawUncompressed().ToBytes()
        return base58.b58encode_check(
            b"\x41" + keccak.new(digest_bits=256, data=pub[1:]).digest()[12:]
        ).decode()

    def _public_key(self, path: list[int]) -> m.PublicKey:
        node = self._node(path)
        parent = self._node(path[:-1]) if path else node
        fp = int.from_bytes(parent.PublicKey().FingerPrint().ToBytes(), "big") if path else 0
        hd = m.HDNodeType(
            depth=len(path),
            fingerprint=fp,
            child_num=path[-1] if path else 0,
            chain_code=node.ChainCode().ToBytes(),
            public_key=node.PublicKey().RawCompressed().ToBytes(),
        )
        return m.PublicKey(node=hd, xpub=node.PublicKey().ToExtended())

    def _contract(self, c: Any) -> tuple[str, Any]:
        if isinstance(c, m.TronTransferContract):
            amount = c.amount + (1 if self.state.tamper else 0)
            msg = contract_pb2.TransferContract(
                owner_address=c.owner_address, to_address=c.to_address, amount=amount
            )
            return "TransferContract", msg
        if isinstance(c, m.TronTriggerSmartContract):
            return "TriggerSmartContract", contract_pb2.TriggerSmartContract(
                owner_address=c.owner_address, contract_address=c.contract_address, data=c.data
            )
        if isinstance(c, m.TronFreezeBalanceV2Contract):
            return "FreezeBalanceV2Contract", contract_pb2.FreezeBalanceV2Contract(
                owner_address=c.owner_address, frozen_balance=c.balance, resource=_resource(c.resource)
            )
        if isinstance(c, m.TronUnfreezeBalanceV2Contract):
            return "UnfreezeBalanceV2Contract", contract_pb2.UnfreezeBalanceV2Contract(
                owner_address=c.owner_address, unfreeze_balance=c.balance, resource=_resource(c.resource)
            )
        if isinstance(c, m.TronWithdrawUnfreeze):
            return "WithdrawExpireUnfreezeContract", contract_pb2.WithdrawExpireUnfreezeContract(
                owner_address=c.owner_address
            )
        if isinstance(c, m.TronWithdrawBalance):
            return "WithdrawBalanceContract", contract_pb2.WithdrawBalanceContract(
                owner_address=c.owner_address
            )
        raise ValueError("unsupported contract")

    def _sign(self, tx: m.TronSignTx, contract: Any) -> Any:
        try:
            name, msg = self._contract(contract)
        except ValueError:
            return self._failure(m.FailureType.DataError, "Unsupported contract")
        raw = tron_pb2.Transaction.raw(
            ref_block_bytes=tx.ref_block_bytes,
            ref_block_hash=tx.ref_block_hash,
            expiration=tx.expiration,
            data=tx.data or b"",
            timestamp=tx.timestamp,
            fee_limit=tx.fee_limit or 0,
        )
        c = raw.contract.add(type=tron_pb2.Transaction.Contract.ContractType.Value(name))
        c.parameter.type_url = TYPE_URL + name
        c.parameter.value = msg.SerializeToString()
        digest = hashlib.sha256(raw.SerializeToString()).digest()
        key = self._node(list(tx.address_n)).PrivateKey().Raw().ToBytes()
        sig = coincurve.PrivateKey(key).sign_recoverable(digest, hasher=None)
        return m.TronSignature(signature=sig[:64] + bytes([27 + sig[64]]))

    def names(self) -> list[str]:
        return [type(d).__name__ for _, _, d in self.received]
