"""Raw TRON transactions for the vault tests, built with devnet's protobuf classes (an encoder that is
independent of the vault's wire decoder)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TypedDict, Unpack

from google.protobuf.message import Message

from devnet.codec import pack_contract
from devnet.pb import contract_pb2, tron_pb2
from services.common.tron.address import from_base58

ABANDON = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
ALL12 = " ".join(["all"] * 12)
ABANDON_ADDR0 = "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"
USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
DEST = "THChUb7p2bwY6ReAiJXao6qc2ZGn88T46v"

# app-tron examples/signTransaction.py vector (hardware-wallets.md §1.5)
LEDGER_VECTOR_RAW = bytes.fromhex(
    "0a027d52220889fd90c45b71f24740e0bcb0f2be2c5a67080112630a2d747970652e676f6f676c65617069732e636f6d2f"
    "70726f746f636f6c2e5472616e73666572436f6e747261637412320a1541c8599111f29c1e1e061265b4af93ea1f274a"
    "d78a1215414f560eb4182ca53757f905609e226e96e8e1a80c18c0843d70d0f5acf2be2c"
)
LEDGER_VECTOR_TXID = "1275c8c9cd5889997bfce9b877b258e7524c19eec0067c131abfa0d2c91c16ab"
LEDGER_VECTOR_SIG = (
    "cd01fcd0a4f0bb9a55a43d57ae1c955374f2540ff931307029e4c1fb80a6dc91"
    "3185edd8a4dfda2d03aad569b856cfb3ed9db387b6589451797ff01c9c353583"
    "01"
)


def a(addr: str) -> bytes:
    return from_base58(addr)


def raw_tx(
    type_name: str,
    msg: Message,
    *,
    memo: bytes = b"",
    expiration_ms: int | None = None,
    fee_limit: int = 0,
    permission_id: int = 0,
    ref: Mapping[str, Any] | None = None,
) -> bytes:
    """ref: a devnet's Devnet.ref_block() (a transaction the devnet accepts); else a fixed, stale block."""
    now = int(time.time() * 1000)
    ref = ref or {"ref_block_bytes": "7d52", "ref_block_hash": "89fd90c45b71f247", "expiration": now + 60_000}
    raw = tron_pb2.Transaction.raw(
        ref_block_bytes=bytes.fromhex(ref["ref_block_bytes"]),
        ref_block_hash=bytes.fromhex(ref["ref_block_hash"]),
        expiration=ref["expiration"] if expiration_ms is None else expiration_ms,
        data=memo,
        timestamp=now,
        fee_limit=fee_limit,
    )
    raw.contract.append(pack_contract(type_name, msg, permission_id))
    return raw.SerializeToString()


class TxOptions(TypedDict, total=False):
    """raw_tx's keyword arguments, passed through by the builders below."""

    memo: bytes
    expiration_ms: int | None
    fee_limit: int
    permission_id: int
    ref: Mapping[str, Any] | None


def transfer(owner: str, to: str, amount: int, **kw: Unpack[TxOptions]) -> bytes:
    msg = contract_pb2.TransferContract(owner_address=a(owner), to_address=a(to), amount=amount)
    return raw_tx("TransferContract", msg, **kw)


def trc20_call(owner: str, token: str, data: bytes, call_value: int = 0, **kw: Unpack[TxOptions]) -> bytes:
    msg = contract_pb2.TriggerSmartContract(
        owner_address=a(owner), contract_address=a(token), data=data, call_value=call_value
    )
    kw.setdefault("fee_limit", 30_000_000)
    return raw_tx("TriggerSmartContract", msg, **kw)


def abi_call(selector: str, to: str, amount: int) -> bytes:
    return bytes.fromhex(selector) + a(to)[1:].rjust(32, b"\0") + amount.to_bytes(32, "big")


def trc20_transfer(owner: str, token: str, to: str, amount: int, **kw: Unpack[TxOptions]) -> bytes:
    return trc20_call(owner, token, abi_call("a9059cbb", to, amount), **kw)
