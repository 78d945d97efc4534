"""Mapping TRON node data (raw_data bytes, java-tron JSON) to tronpay messages. Integers only."""

from __future__ import annotations

import time
from typing import Any

from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as pb

from services.common.errors import FieldViolation
from services.common.timestamps import timestamp_ms
from services.common.tron import address as taddr
from services.common.tron import tx as ttx
from services.common.tron.wire import WireError

CONTRACT_TYPE_PB = {
    "TransferContract": common_pb2.CONTRACT_TYPE_TRANSFER,
    "TriggerSmartContract": common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT,
    "FreezeBalanceV2Contract": common_pb2.CONTRACT_TYPE_FREEZE_BALANCE_V2,
    "UnfreezeBalanceV2Contract": common_pb2.CONTRACT_TYPE_UNFREEZE_BALANCE_V2,
    "WithdrawExpireUnfreezeContract": common_pb2.CONTRACT_TYPE_WITHDRAW_EXPIRE_UNFREEZE,
    "DelegateResourceContract": common_pb2.CONTRACT_TYPE_DELEGATE_RESOURCE,
    "UnDelegateResourceContract": common_pb2.CONTRACT_TYPE_UNDELEGATE_RESOURCE,
    "VoteWitnessContract": common_pb2.CONTRACT_TYPE_VOTE_WITNESS,
    "WithdrawBalanceContract": common_pb2.CONTRACT_TYPE_WITHDRAW_BALANCE,
    "AccountPermissionUpdateContract": common_pb2.CONTRACT_TYPE_ACCOUNT_PERMISSION_UPDATE,
}
RESOURCE_PB = {"BANDWIDTH": common_pb2.RESOURCE_TYPE_BANDWIDTH, "ENERGY": common_pb2.RESOURCE_TYPE_ENERGY}
PERMISSION_TYPE_PB = {
    "Owner": pb.Permission.TYPE_OWNER,
    "Witness": pb.Permission.TYPE_WITNESS,
    "Active": pb.Permission.TYPE_ACTIVE,
}


def block_ref(number: int, block_id: str, time_ms: int) -> pb.BlockRef:
    """BlockRef of a block's number, id (hex) and time (epoch ms; 0 leaves block_time unset)."""
    return pb.BlockRef(number=number, block_id=block_id, block_time=timestamp_ms(time_ms))


def base58(addr_hex: str) -> str:
    """base58 of a node hex address (41..., or a 20-byte log address); "" when empty or malformed."""
    if not addr_hex:
        return ""
    try:
        raw = bytes.fromhex(addr_hex)
        if len(raw) == 20:
            raw = b"\x41" + raw
        return taddr.to_base58(raw)
    except ValueError:
        return ""


def read_address(text: str, field: str, violations: list[FieldViolation]) -> bytes:
    """21 bytes of a request's base58 address; b"" and a violation of `field` when it is not one (the
    contract checks the shape, the checksum and prefix are checked here)."""
    try:
        return taddr.from_base58(text)
    except ValueError as exc:
        violations.append(FieldViolation(field, f"not a TRON address: {exc}", "INVALID_ADDRESS"))
        return b""


def hexbytes(text: Any) -> bytes:
    try:
        return bytes.fromhex(str(text or ""))
    except ValueError:
        return b""


def transaction_message(raw_data: bytes, signatures: list[bytes] | None = None) -> common_pb2.Transaction:
    """tronpay.common.v1.Transaction for raw_data (contract type, owner, times and fee limit decoded)."""
    msg = common_pb2.Transaction(
        txid=ttx.txid(raw_data), raw_data=raw_data, raw_data_hex=raw_data.hex(), signatures=signatures or []
    )
    try:
        d = ttx.decode_raw(raw_data)
    except (ValueError, WireError):
        return msg
    msg.contract_type = CONTRACT_TYPE_PB.get(d.contract_type, common_pb2.CONTRACT_TYPE_UNSPECIFIED)
    owner = d.owner_address
    if len(owner) == 21 and owner[0] == 0x41:
        msg.owner_address = taddr.to_base58(owner)
    for name, ms in (
        ("expiration_time", d.raw.get("expiration", 0)),
        ("create_time", d.raw.get("timestamp", 0)),
    ):
        ts = timestamp_ms(int(ms))
        if ts is not None:
            getattr(msg, name).CopyFrom(ts)
    msg.fee_limit_sun = int(d.raw.get("fee_limit", 0))
    msg.permission_id = d.permission_id
    return msg


def permission(p: dict[str, Any]) -> pb.Permission:
    """Permission JSON (visible=false) -> tronpay Permission."""
    return pb.Permission(
        type=PERMISSION_TYPE_PB.get(str(p.get("type", "Owner")), pb.Permission.TYPE_UNSPECIFIED),
        id=int(p.get("id", 0)),
        permission_name=str(p.get("permission_name", "")),
        threshold=int(p.get("threshold", 0)),
        operations=hexbytes(p.get("operations")),
        keys=[
            pb.PermissionKey(address=base58(k.get("address", "")), weight=int(k.get("weight", 0)))
            for k in p.get("keys", [])
        ],
    )


def account(address: str, acc: dict[str, Any], reward: int) -> pb.Account:
    """getaccount JSON (visible=false) -> Account; an empty answer means the account does not exist."""
    if not acc:
        return pb.Account(address=address, exists=False)
    res = acc.get("account_resource", {})
    out = pb.Account(
        address=address,
        exists=True,
        balance_sun=int(acc.get("balance", 0)),
        delegated_bandwidth_sun=int(acc.get("delegated_frozenV2_balance_for_bandwidth", 0)),
        delegated_energy_sun=int(res.get("delegated_frozenV2_balance_for_energy", 0)),
        acquired_delegated_bandwidth_sun=int(acc.get("acquired_delegated_frozenV2_balance_for_bandwidth", 0)),
        acquired_delegated_energy_sun=int(res.get("acquired_delegated_frozenV2_balance_for_energy", 0)),
        reward_sun=reward,
        is_witness=bool(acc.get("is_witness", False)),
    )
    for name, ms in (
        ("create_time", acc.get("create_time", 0)),
        ("latest_withdraw_time", acc.get("latest_withdraw_time", 0)),
    ):
        ts = timestamp_ms(int(ms))
        if ts is not None:
            getattr(out, name).CopyFrom(ts)
    for f in acc.get("frozenV2", []):
        kind = RESOURCE_PB.get(str(f.get("type", "BANDWIDTH")))  # BANDWIDTH (0) is not printed
        if kind is not None and int(f.get("amount", 0)):
            out.frozen.append(pb.FrozenBalance(resource=kind, amount_sun=int(f["amount"])))
    for u in acc.get("unfrozenV2", []):
        kind = RESOURCE_PB.get(str(u.get("type", "BANDWIDTH")))
        if kind is not None:
            out.unfreezing.append(
                pb.UnfreezingBalance(
                    resource=kind,
                    amount_sun=int(u.get("unfreeze_amount", 0)),
                    unfreeze_expire_time=timestamp_ms(int(u.get("unfreeze_expire_time", 0))),
                )
            )
    for v in acc.get("votes", []):
        out.votes.append(
            pb.Vote(witness_address=base58(v.get("vote_address", "")), vote_count=int(v.get("vote_count", 0)))
        )
    if acc.get("owner_permission"):
        out.owner_permission.CopyFrom(permission(acc["owner_permission"]))
    out.active_permissions.extend(permission(p) for p in acc.get("active_permission", []))
    return out


def delegations(entries: list[dict[str, Any]]) -> list[pb.DelegatedResource]:
    """getdelegatedresourcev2 `delegatedResource` entries (visible=false) -> one DelegatedResource per entry
    and resource with an amount (java-tron keeps a locked and an unlocked record per pair of accounts)."""
    out = []
    for e in entries:
        for kind, amount_key, expire_key in (
            (common_pb2.RESOURCE_TYPE_BANDWIDTH, "frozen_balance_for_bandwidth", "expire_time_for_bandwidth"),
            (common_pb2.RESOURCE_TYPE_ENERGY, "frozen_balance_for_energy", "expire_time_for_energy"),
        ):
            amount = int(e.get(amount_key, 0))
            if amount:
                out.append(
                    pb.DelegatedResource(
                        from_address=base58(str(e.get("from", ""))),
                        to_address=base58(str(e.get("to", ""))),
                        resource=kind,
                        amount_sun=amount,
                        lock_expire_time=timestamp_ms(int(e.get(expire_key, 0))),
                    )
                )
    return out


def account_resource(address: str, r: dict[str, Any]) -> pb.AccountResource:
    """getaccountresource JSON -> AccountResource (java-tron's mixed-case keys)."""
    return pb.AccountResource(
        address=address,
        free_net_limit=int(r.get("freeNetLimit", 0)),
        free_net_used=int(r.get("freeNetUsed", 0)),
        net_limit=int(r.get("NetLimit", 0)),
        net_used=int(r.get("NetUsed", 0)),
        energy_limit=int(r.get("EnergyLimit", 0)),
        energy_used=int(r.get("EnergyUsed", 0)),
        tron_power_limit=int(r.get("tronPowerLimit", 0)),
        tron_power_used=int(r.get("tronPowerUsed", 0)),
        total_net_limit=int(r.get("TotalNetLimit", 0)),
        total_net_weight=int(r.get("TotalNetWeight", 0)),
        total_energy_limit=int(r.get("TotalEnergyLimit", 0)),
        total_energy_weight=int(r.get("TotalEnergyWeight", 0)),
    )


VM_RESULTS = {
    "SUCCESS": pb.TransactionInfo.RESULT_SUCCESS,
    "DEFAULT": pb.TransactionInfo.RESULT_SUCCESS,
    "REVERT": pb.TransactionInfo.RESULT_REVERT,
    "OUT_OF_ENERGY": pb.TransactionInfo.RESULT_OUT_OF_ENERGY,
}


def info_result(info: dict[str, Any]) -> pb.TransactionInfo.Result.ValueType:
    """Execution result: a VM result when there is one, else the transaction's SUCESS/FAILED."""
    vm = info.get("receipt", {}).get("result")
    if vm is not None:
        return VM_RESULTS.get(str(vm), pb.TransactionInfo.RESULT_FAILED)
    return (
        pb.TransactionInfo.RESULT_FAILED
        if info.get("result") == "FAILED"
        else pb.TransactionInfo.RESULT_SUCCESS
    )


def transaction_info(info: dict[str, Any], block: pb.BlockRef, solidified: bool) -> pb.TransactionInfo:
    """gettransactioninfobyid JSON (visible=false) -> TransactionInfo."""
    receipt = info.get("receipt", {})
    results = info.get("contractResult", [])
    message = hexbytes(info.get("resMessage")).decode(errors="replace")
    return pb.TransactionInfo(
        txid=str(info.get("id", "")),
        block=block,
        solidified=solidified,
        result=info_result(info),
        failure_reason=message,
        fee_sun=int(info.get("fee", 0)),
        energy_usage_total=int(receipt.get("energy_usage_total", 0)),
        energy_fee_sun=int(receipt.get("energy_fee", 0)),
        net_usage=int(receipt.get("net_usage", 0)),
        net_fee_sun=int(receipt.get("net_fee", 0)),
        contract_result=hexbytes(results[0]) if results else b"",
        contract_address=base58(str(info.get("contract_address", ""))),
        logs=[
            pb.Log(
                address=base58(str(lg.get("address", ""))),
                topics=[hexbytes(t) for t in lg.get("topics", [])],
                data=hexbytes(lg.get("data")),
            )
            for lg in info.get("log", [])
        ],
        withdraw_amount_sun=int(info.get("withdraw_amount", 0)),
        withdraw_expire_amount_sun=int(info.get("withdraw_expire_amount", 0)),
    )


def now_ms() -> int:
    """Wall-clock time in milliseconds (TRON's timestamp unit)."""
    return time.time_ns() // 1_000_000
