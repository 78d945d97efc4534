"""TRON transactions: build raw_data for one contract, txID = sha256(raw_data), (de)serialize Transaction.

`raw_data` bytes are what gets hashed and signed; everything here produces and reads exactly those bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.common.tron.wire import (
    ENUMS,
    LEN,
    SCHEMAS,
    WireError,
    decode,
    encode,
    encode_varint,
    iter_fields,
    to_json,
)

TYPE_URL_PREFIX = "type.googleapis.com/protocol."

# Transaction.Contract.ContractType (core/Tron.proto): every type java-tron knows, number -> name.
CONTRACT_TYPE_NAMES: dict[int, str] = {
    0: "AccountCreateContract", 1: "TransferContract", 2: "TransferAssetContract", 3: "VoteAssetContract",
    4: "VoteWitnessContract", 5: "WitnessCreateContract", 6: "AssetIssueContract", 8: "WitnessUpdateContract",
    9: "ParticipateAssetIssueContract", 10: "AccountUpdateContract", 11: "FreezeBalanceContract",
    12: "UnfreezeBalanceContract", 13: "WithdrawBalanceContract", 14: "UnfreezeAssetContract",
    15: "UpdateAssetContract", 16: "ProposalCreateContract", 17: "ProposalApproveContract",
    18: "ProposalDeleteContract", 19: "SetAccountIdContract", 20: "CustomContract", 30: "CreateSmartContract",
    31: "TriggerSmartContract", 32: "GetContract", 33: "UpdateSettingContract", 41: "ExchangeCreateContract",
    42: "ExchangeInjectContract", 43: "ExchangeWithdrawContract", 44: "ExchangeTransactionContract",
    45: "UpdateEnergyLimitContract", 46: "AccountPermissionUpdateContract", 48: "ClearABIContract",
    49: "UpdateBrokerageContract", 51: "ShieldedTransferContract", 52: "MarketSellAssetContract",
    53: "MarketCancelOrderContract", 54: "FreezeBalanceV2Contract", 55: "UnfreezeBalanceV2Contract",
    56: "WithdrawExpireUnfreezeContract", 57: "DelegateResourceContract", 58: "UnDelegateResourceContract",
    59: "CancelAllUnfreezeV2Contract",
}  # fmt: skip
CONTRACT_TYPE_IDS: dict[str, int] = {v: k for k, v in CONTRACT_TYPE_NAMES.items()}

# The contracts the cluster builds and decodes: those with a schema in wire.SCHEMAS.
CONTRACT_TYPES: dict[str, int] = {k: v for k, v in CONTRACT_TYPE_IDS.items() if k in SCHEMAS}
CONTRACT_NAMES: dict[int, str] = {v: k for k, v in CONTRACT_TYPES.items()}

# ResourceCode (core/contract/common.proto) and Permission.PermissionType, name -> number.
RESOURCE_NAMES: dict[int, str] = ENUMS["ResourceCode"]
RESOURCE_CODES = {v: k for k, v in RESOURCE_NAMES.items()}
PERMISSION_TYPES = {v: k for k, v in ENUMS["PermissionType"].items()}


def txid_digest(raw_data: bytes) -> bytes:
    """The 32-byte txID, SHA-256 of the serialized Transaction.raw (not Keccak; signatures not hashed):
    the digest a signature is made over."""
    return hashlib.sha256(raw_data).digest()


def txid(raw_data: bytes) -> str:
    """Lowercase hex txID, as the node shows it."""
    return txid_digest(raw_data).hex()


@dataclass(frozen=True, slots=True)
class RefBlock:
    """TAPOS reference: ref_block_bytes = block number bytes 6..8, ref_block_hash = block id bytes 8..16."""

    number: int
    block_id: bytes  # 32 bytes
    timestamp_ms: int

    @property
    def ref_block_bytes(self) -> bytes:
        return self.number.to_bytes(8, "big")[6:8]

    @property
    def ref_block_hash(self) -> bytes:
        return self.block_id[8:16]


def build_raw(
    contract_type: str,
    value: dict[str, Any],
    ref: RefBlock,
    *,
    expiration_ms: int,
    timestamp_ms: int,
    fee_limit: int = 0,
    data: bytes = b"",
    permission_id: int = 0,
) -> bytes:
    """Serialized Transaction.raw holding exactly one contract (java-tron accepts only one)."""
    if contract_type not in CONTRACT_TYPES:
        raise ValueError(f"unsupported contract type {contract_type}")
    contract = {
        "type": CONTRACT_TYPES[contract_type],
        "parameter": {"type_url": TYPE_URL_PREFIX + contract_type, "value": encode(contract_type, value)},
        "Permission_id": permission_id,
    }
    raw = {
        "ref_block_bytes": ref.ref_block_bytes,
        "ref_block_hash": ref.ref_block_hash,
        "expiration": expiration_ms,
        "data": data,
        "contract": [contract],
        "timestamp": timestamp_ms,
        "fee_limit": fee_limit,
    }
    return encode("Transaction.raw", raw)


def encode_transaction(raw_data: bytes, signatures: list[bytes]) -> bytes:
    """Serialized Transaction (raw_data + signatures) as broadcasthex takes it. raw_data is spliced in
    verbatim, never re-encoded, so the signed bytes are exactly the ones sent."""
    out = bytearray(encode_varint((1 << 3) | LEN) + encode_varint(len(raw_data)) + raw_data)
    for sig in signatures:
        out += encode_varint((2 << 3) | LEN) + encode_varint(len(sig)) + sig
    return bytes(out)


@dataclass(frozen=True, slots=True)
class DecodedRaw:
    """The parts of a Transaction.raw the cluster looks at."""

    raw: dict[str, Any]
    contract_type: str  # name, e.g. "TransferContract"; "" if not one of CONTRACT_TYPES
    contract_type_number: int
    type_url: str
    value: dict[str, Any]  # the decoded contract message ({} when the type is unknown)
    permission_id: int

    @property
    def owner_address(self) -> bytes:
        return bytes(self.value.get("owner_address", b""))


def decode_raw(raw_data: bytes) -> DecodedRaw:
    """Decode raw_data and its one contract; ValueError when it is not a single-contract transaction."""
    raw = decode("Transaction.raw", raw_data)
    contracts = raw.get("contract", [])
    if len(contracts) != 1:
        raise ValueError(f"transaction has {len(contracts)} contracts, want exactly 1")
    c = contracts[0]
    number = int(c.get("type", 0))
    name = CONTRACT_NAMES.get(number, "")
    param = c.get("parameter", {})
    type_url = str(param.get("type_url", ""))
    value = decode(name, bytes(param.get("value", b""))) if name else {}
    return DecodedRaw(raw, name, number, type_url, value, int(c.get("Permission_id", 0)))


def decode_transaction(tx_bytes: bytes) -> tuple[bytes, list[bytes]]:
    """(raw_data bytes exactly as sent, signatures) of a serialized Transaction."""
    raw: bytes | None = None
    sigs: list[bytes] = []
    for num, wt, value, _, _ in iter_fields(tx_bytes):
        if num == 1 and wt == LEN:
            raw = bytes(value)
        elif num == 2 and wt == LEN:
            sigs.append(bytes(value))
    if raw is None:
        raise WireError("Transaction has no raw_data")
    return raw, sigs


def transaction_json(raw_data: bytes, signatures: Sequence[bytes] = ()) -> dict[str, Any]:
    """The node's visible=false Transaction JSON (broadcasttransaction / getsignweight input), from raw_data.

    The node re-encodes raw_data from this JSON, so comparing its txID with ours checks our encoder."""
    d = decode_raw(raw_data)
    if not d.contract_type:
        raise ValueError(f"contract type {d.contract_type_number} is not one the cluster builds")
    raw = to_json("Transaction.raw", {k: v for k, v in d.raw.items() if k != "contract"})
    contract: dict[str, Any] = {
        "parameter": {"value": to_json(d.contract_type, d.value), "type_url": d.type_url},
        "type": d.contract_type,
    }
    if d.permission_id:
        contract["Permission_id"] = d.permission_id
    raw["contract"] = [contract]
    out: dict[str, Any] = {"txID": txid(raw_data), "raw_data": raw, "raw_data_hex": raw_data.hex()}
    if signatures:
        out["signature"] = [s.hex() for s in signatures]
    return out
