"""Building unsigned transactions and broadcasting signed ones.

Build: map the request's contract to TRON's contract message, take a reference block (solid by default,
as java-tron's own builders; head as TronWeb), set timestamp = now and expiration = head block time +
window (java-tron), encode raw_data with services.common.tron and compute txID = sha256(raw_data).
Optionally (TRON_TXID_CHECK) the node re-encodes the same transaction from its JSON (getsignweight) and
its txID must equal ours; that one round trip also reports permission problems of the owner.

Broadcast: wallet/broadcasthex with the full serialized Transaction. Idempotent by txID: a duplicate is
success. Node rejections map to gRPC errors carrying the node's code; after transport failures (retried
by the pool) the txID is looked up before failure is reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as pb

from services.common.errors import FailedPrecondition, FieldViolation, InvalidArgument, Unavailable
from services.common.logging import get_logger
from services.common.tron import tx as ttx
from services.common.tron.abi import selector
from services.common.tron.address import keccak256
from services.common.tron.wire import ENUMS
from services.tron_client.convert import now_ms, read_address
from services.tron_client.network import Block, Network
from services.tron_client.node import NodeError
from services.tron_client.pool import NodePool
from services.tron_client.settings import TronClientSettings

log = get_logger("tron_client.builder")

# tronpay ResourceType -> TRON ResourceCode; Permission.Type -> TRON PermissionType.
RESOURCE = {
    common_pb2.RESOURCE_TYPE_BANDWIDTH: ttx.RESOURCE_CODES["BANDWIDTH"],
    common_pb2.RESOURCE_TYPE_ENERGY: ttx.RESOURCE_CODES["ENERGY"],
}
PERMISSION_TYPE = {
    pb.Permission.TYPE_OWNER: ttx.PERMISSION_TYPES["Owner"],
    pb.Permission.TYPE_WITNESS: ttx.PERMISSION_TYPES["Witness"],
    pb.Permission.TYPE_ACTIVE: ttx.PERMISSION_TYPES["Active"],
}

# solc's ABI JSON names -> SmartContract.ABI.Entry enums (EntryType, StateMutabilityType).
ENTRY_TYPES = {name.lower(): n for n, name in ENUMS["EntryType"].items() if n}
MUTABILITY = {name.lower(): n for n, name in ENUMS["StateMutabilityType"].items() if n}

# broadcast response codes (GrpcAPI.Return.response_code) that mean "the node is busy, try again".
TRANSIENT_CODES = {"SERVER_BUSY", "NO_CONNECTION", "NOT_ENOUGH_EFFECTIVE_CONNECTION", "BLOCK_UNSOLIDIFIED"}


class BroadcastOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """What a BuildTransaction request asks for, in TRON terms."""

    type_name: str
    value: dict[str, Any]
    fee_limit: int = 0


def _permission(p: pb.Permission, field: str, violations: list[FieldViolation]) -> dict[str, Any]:
    ptype = PERMISSION_TYPE.get(p.type, 0)
    want_id = {0: "0", 1: "1", 2: "2 or more"}[ptype]
    if (ptype == 0 and p.id != 0) or (ptype == 1 and p.id != 1) or (ptype == 2 and p.id < 2):
        violations.append(
            FieldViolation(f"{field}.id", f"a {pb.Permission.Type.Name(p.type)} permission has id {want_id}")
        )
    if ptype == 2 and len(p.operations) != 32:
        violations.append(
            FieldViolation(f"{field}.operations", "an active permission needs the 32-byte operations bitmap")
        )
    if ptype != 2 and p.operations:
        violations.append(FieldViolation(f"{field}.operations", "only active permissions have operations"))
    keys: list[dict[str, Any]] = [
        {"address": read_address(k.address, f"{field}.keys[{i}].address", violations), "weight": k.weight}
        for i, k in enumerate(p.keys)
    ]
    if len({k["address"] for k in keys}) != len(keys):
        violations.append(FieldViolation(f"{field}.keys", "a key address appears twice"))
    if sum(k.weight for k in p.keys) < p.threshold:
        violations.append(FieldViolation(f"{field}.threshold", "threshold is above the sum of key weights"))
    return {
        "type": ptype,
        "id": p.id,
        "permission_name": p.permission_name,
        "threshold": p.threshold,
        "operations": p.operations,
        "keys": keys,
    }


def _abi_params(items: Any) -> list[dict[str, Any]]:
    return [
        {"indexed": bool(p.get("indexed", False)), "name": str(p.get("name", "")), "type": str(p["type"])}
        for p in items or ()
    ]


def abi_entries(text: str, field: str, violations: list[FieldViolation]) -> list[dict[str, Any]]:
    """solc's ABI JSON as SmartContract.ABI entries (what java-tron stores and getcontract returns)."""
    try:
        items = json.loads(text)
        if not isinstance(items, list):
            raise ValueError("not a JSON array")
        entries = []
        for e in items:
            kind = ENTRY_TYPES[str(e["type"]).lower()]
            mutability = MUTABILITY.get(str(e.get("stateMutability", "")).lower(), 0)
            entries.append(
                {
                    "anonymous": bool(e.get("anonymous", False)),
                    "constant": bool(
                        e.get("constant", mutability in (MUTABILITY["view"], MUTABILITY["pure"]))
                    ),
                    "name": str(e.get("name", "")),
                    "inputs": _abi_params(e.get("inputs")),
                    "outputs": _abi_params(e.get("outputs")),
                    "type": kind,
                    "payable": bool(e.get("payable", mutability == MUTABILITY["payable"])),
                    "stateMutability": mutability,
                }
            )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        violations.append(FieldViolation(field, f"not a solc ABI JSON array: {exc}", "INVALID_ABI"))
        return []
    return entries


def contract_address(txid: str, owner: bytes) -> bytes:
    """The address a CreateSmartContract transaction gives its contract: 0x41 || keccak256(txID || owner)[12:]
    (java-tron WalletUtil.generateContractAddress)."""
    return b"\x41" + keccak256(bytes.fromhex(txid) + owner)[12:]


def contract_of(req: pb.BuildTransactionRequest) -> ContractSpec:
    """The contract a request asks for; InvalidArgument with field violations for what protovalidate
    cannot see (checksums, permission shapes, ABI parameter length)."""
    v: list[FieldViolation] = []
    owner = read_address(req.owner_address, "owner_address", v)
    kind = req.WhichOneof("params")
    spec: ContractSpec
    if kind == "transfer":
        t = req.transfer
        to = read_address(t.to_address, "transfer.to_address", v)
        if to and to == owner:
            v.append(FieldViolation("transfer.to_address", "cannot transfer to the owner itself"))
        spec = ContractSpec(
            "TransferContract", {"owner_address": owner, "to_address": to, "amount": t.amount_sun}
        )
    elif kind == "trigger_smart_contract":
        c = req.trigger_smart_contract
        contract = read_address(c.contract_address, "trigger_smart_contract.contract_address", v)
        if len(c.parameter) % 32:
            v.append(
                FieldViolation("trigger_smart_contract.parameter", "ABI-encoded arguments are 32-byte words")
            )
        data = selector(c.function_selector) + c.parameter
        value = {
            "owner_address": owner,
            "contract_address": contract,
            "call_value": c.call_value_sun,
            "data": data,
        }
        spec = ContractSpec("TriggerSmartContract", value, c.fee_limit_sun)
    elif kind == "freeze_balance_v2":
        f = req.freeze_balance_v2
        value = {
            "owner_address": owner,
            "frozen_balance": f.amount_sun,
            "resource": RESOURCE.get(f.resource, 0),
        }
        spec = ContractSpec("FreezeBalanceV2Contract", value)
    elif kind == "unfreeze_balance_v2":
        u = req.unfreeze_balance_v2
        value = {
            "owner_address": owner,
            "unfreeze_balance": u.amount_sun,
            "resource": RESOURCE.get(u.resource, 0),
        }
        spec = ContractSpec("UnfreezeBalanceV2Contract", value)
    elif kind == "withdraw_expire_unfreeze":
        spec = ContractSpec("WithdrawExpireUnfreezeContract", {"owner_address": owner})
    elif kind == "delegate_resource":
        d = req.delegate_resource
        receiver = read_address(d.receiver_address, "delegate_resource.receiver_address", v)
        if d.lock_period_blocks and not d.lock:
            v.append(
                FieldViolation("delegate_resource.lock_period_blocks", "a lock period needs lock = true")
            )
        value = {
            "owner_address": owner,
            "resource": RESOURCE.get(d.resource, 0),
            "balance": d.amount_sun,
            "receiver_address": receiver,
            "lock": d.lock,
            "lock_period": d.lock_period_blocks,
        }
        spec = ContractSpec("DelegateResourceContract", value)
    elif kind == "undelegate_resource":
        d2 = req.undelegate_resource
        receiver = read_address(d2.receiver_address, "undelegate_resource.receiver_address", v)
        value = {
            "owner_address": owner,
            "resource": RESOURCE.get(d2.resource, 0),
            "balance": d2.amount_sun,
            "receiver_address": receiver,
        }
        spec = ContractSpec("UnDelegateResourceContract", value)
    elif kind == "vote_witness":
        votes = [
            {
                "vote_address": read_address(
                    x.witness_address, f"vote_witness.votes[{i}].witness_address", v
                ),
                "vote_count": x.vote_count,
            }
            for i, x in enumerate(req.vote_witness.votes)
        ]
        if len({x["vote_address"] for x in votes}) != len(votes):
            v.append(FieldViolation("vote_witness.votes", "a witness appears twice"))
        spec = ContractSpec("VoteWitnessContract", {"owner_address": owner, "votes": votes})
    elif kind == "withdraw_balance":
        spec = ContractSpec("WithdrawBalanceContract", {"owner_address": owner})
    elif kind == "account_permission_update":
        a = req.account_permission_update
        value = {"owner_address": owner, "owner": _permission(a.owner, "account_permission_update.owner", v)}
        if a.owner.type != pb.Permission.TYPE_OWNER:
            v.append(FieldViolation("account_permission_update.owner.type", "must be TYPE_OWNER"))
        if a.HasField("witness"):
            value["witness"] = _permission(a.witness, "account_permission_update.witness", v)
            if a.witness.type != pb.Permission.TYPE_WITNESS:
                v.append(FieldViolation("account_permission_update.witness.type", "must be TYPE_WITNESS"))
        value["actives"] = [
            _permission(p, f"account_permission_update.actives[{i}]", v) for i, p in enumerate(a.actives)
        ]
        for i, p in enumerate(a.actives):
            if p.type != pb.Permission.TYPE_ACTIVE:
                v.append(
                    FieldViolation(f"account_permission_update.actives[{i}].type", "must be TYPE_ACTIVE")
                )
        spec = ContractSpec("AccountPermissionUpdateContract", value)
    elif kind == "create_smart_contract":
        cs = req.create_smart_contract
        new_contract = {
            "origin_address": owner,
            "abi": {"entrys": abi_entries(cs.abi_json, "create_smart_contract.abi_json", v)},
            "bytecode": cs.bytecode,
            "call_value": cs.call_value_sun,
            "consume_user_resource_percent": cs.consume_user_resource_percent,
            "name": cs.name,
            "origin_energy_limit": cs.origin_energy_limit,
        }
        value = {"owner_address": owner, "new_contract": new_contract}
        spec = ContractSpec("CreateSmartContract", value, cs.fee_limit_sun)
    else:  # protovalidate requires the oneof; kept for direct callers
        v.append(FieldViolation("params", "exactly one contract must be set"))
        spec = ContractSpec("", {})
    if v:
        raise InvalidArgument("invalid transaction parameters", v)
    return spec


@dataclass(frozen=True, slots=True)
class BuiltTransaction:
    raw_data: bytes
    txid: str
    contract_type: str


class TransactionService:
    """Builds and broadcasts transactions through the node pool."""

    def __init__(self, settings: TronClientSettings, pool: NodePool, network: Network) -> None:
        self._settings = settings
        self._pool = pool
        self._network = network

    # ---- build ------------------------------------------------------------------------------------
    async def reference(self) -> tuple[ttx.RefBlock, int]:
        """(reference block, head block time in ms), from the network's briefly cached height: a reference
        block stays valid for ~54 h, so a second-old one is as good as a fresh one."""
        height = await self._network.height()
        ref = height.solidified if self._settings.TRON_REF_BLOCK == "solid" else height.head
        return _ref_block(ref), height.head.time_ms

    async def build(
        self,
        spec: ContractSpec,
        *,
        memo: bytes = b"",
        expiration_seconds: int = 0,
        permission_id: int = 0,
    ) -> BuiltTransaction:
        if spec.fee_limit:
            max_fee = (await self._network.fees()).max_fee_limit_sun
            if max_fee and spec.fee_limit > max_fee:
                field = {"CreateSmartContract": "create_smart_contract"}.get(
                    spec.type_name, "trigger_smart_contract"
                )
                raise InvalidArgument(
                    "fee_limit is above the network's maximum",
                    [FieldViolation(f"{field}.fee_limit_sun", f"at most {max_fee} sun")],
                )
        ref, head_ms = await self.reference()
        window_ms = (expiration_seconds or self._settings.TRON_TX_EXPIRATION_SECONDS) * 1000
        now = now_ms()
        raw = ttx.build_raw(
            spec.type_name,
            spec.value,
            ref,
            expiration_ms=head_ms + window_ms,
            timestamp_ms=now,
            fee_limit=spec.fee_limit,
            data=memo,
            permission_id=permission_id,
        )
        built = BuiltTransaction(raw, ttx.txid(raw), spec.type_name)
        if self._settings.TRON_TXID_CHECK:
            await self.check_with_node(built)
        return built

    async def check_with_node(self, built: BuiltTransaction) -> None:
        """The node's txID for the same transaction (re-encoded from JSON by getsignweight) must equal ours;
        permission errors of the owner (unknown account, missing permission) are FAILED_PRECONDITION."""
        resp = await self._pool.call("wallet/getsignweight", ttx.transaction_json(built.raw_data))
        if "Error" in resp:
            raise FailedPrecondition(
                "the node refused the transaction",
                reason="NODE_REFUSED",
                metadata={"node_error": str(resp["Error"])},
            )
        ext = resp.get("transaction", {})
        node_txid = str(ext.get("transaction", {}).get("txID") or ext.get("txid") or "")
        if node_txid != built.txid:
            log.error(
                "txID mismatch with the node",
                extra={"fields": {"ours": built.txid, "node": node_txid, "contract": built.contract_type}},
            )
            raise FailedPrecondition(
                "the node computes a different txID for this transaction",
                reason="TXID_MISMATCH",
                metadata={"txid": built.txid, "node_txid": node_txid},
            )
        result = resp.get("result", {})
        if result.get("code") == "PERMISSION_ERROR":
            raise FailedPrecondition(
                f"the owner cannot sign this transaction: {result.get('message', '')}",
                reason="PERMISSION_ERROR",
                metadata={"node_message": str(result.get("message", "")), "txid": built.txid},
            )

    # ---- broadcast --------------------------------------------------------------------------------
    async def broadcast(self, raw_data: bytes, signatures: list[bytes]) -> tuple[str, BroadcastOutcome]:
        txid = ttx.txid(raw_data)
        body = {"transaction": ttx.encode_transaction(raw_data, signatures).hex()}
        try:
            resp = await self._pool.call("wallet/broadcasthex", body)
        except NodeError:
            # Every attempt failed in transport; one of them may still have reached a node.
            if await self.known(txid):
                return txid, BroadcastOutcome.ACCEPTED
            raise
        if resp.get("result") is True:
            return txid, BroadcastOutcome.ACCEPTED
        code = str(resp.get("code") or "OTHER_ERROR")
        message = _node_message(resp.get("message", resp.get("Error", "")))
        meta = {"txid": txid, "node_code": code, "node_message": message}
        if code == "DUP_TRANSACTION_ERROR" or "already" in message.lower():
            return txid, BroadcastOutcome.DUPLICATE
        if code in TRANSIENT_CODES:
            raise Unavailable(
                f"the node cannot take transactions now: {message}", reason="NODE_BUSY", metadata=meta
            )
        if code == "TOO_BIG_TRANSACTION_ERROR":
            raise InvalidArgument(
                message, [FieldViolation("transaction", message, code)], reason=code, metadata=meta
            )
        reasons = {
            "TRANSACTION_EXPIRATION_ERROR": "TRANSACTION_EXPIRED",
            "BANDWITH_ERROR": "INSUFFICIENT_RESOURCES",  # (sic) java-tron's spelling
        }
        raise FailedPrecondition(
            f"the node rejected the transaction: {message or code}",
            reason=reasons.get(code, code),
            metadata=meta,
        )

    async def known(self, txid: str) -> bool:
        """Whether a node has the transaction in a block (best effort: False if no node answers)."""
        try:
            return bool(await self._pool.call("wallet/gettransactionbyid", {"value": txid}))
        except NodeError:
            return False


def _ref_block(block: Block) -> ttx.RefBlock:
    if len(block.block_id) != 64:
        raise Unavailable("TRON node returned no block", reason="NODE_BAD_RESPONSE")
    return ttx.RefBlock(block.number, bytes.fromhex(block.block_id), block.time_ms)


def _node_message(value: Any) -> str:
    """broadcasthex sends plain text, broadcasttransaction hex: accept both."""
    text = str(value or "")
    try:
        if text and len(text) % 2 == 0:
            return bytes.fromhex(text).decode()
    except (ValueError, UnicodeDecodeError):
        pass
    return text
