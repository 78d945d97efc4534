"""Conversions between the contract (wallet_manager.v1), MongoDB documents and the vault's policy types."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from services.common.tron.wire import INT64_MAX
from services.wallet_manager.vault.policy import AssetLimit, WalletPolicy
from services.wallet_manager.vault.tron_tx import TRX

# common.v1.ContractType -> java-tron contract name (the vault's policy speaks names).
CONTRACT_NAMES: dict[int, str] = {
    common_pb2.CONTRACT_TYPE_TRANSFER: "TransferContract",
    common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT: "TriggerSmartContract",
    common_pb2.CONTRACT_TYPE_FREEZE_BALANCE_V2: "FreezeBalanceV2Contract",
    common_pb2.CONTRACT_TYPE_UNFREEZE_BALANCE_V2: "UnfreezeBalanceV2Contract",
    common_pb2.CONTRACT_TYPE_WITHDRAW_EXPIRE_UNFREEZE: "WithdrawExpireUnfreezeContract",
    common_pb2.CONTRACT_TYPE_DELEGATE_RESOURCE: "DelegateResourceContract",
    common_pb2.CONTRACT_TYPE_UNDELEGATE_RESOURCE: "UnDelegateResourceContract",
    common_pb2.CONTRACT_TYPE_VOTE_WITNESS: "VoteWitnessContract",
    common_pb2.CONTRACT_TYPE_WITHDRAW_BALANCE: "WithdrawBalanceContract",
    common_pb2.CONTRACT_TYPE_ACCOUNT_PERMISSION_UPDATE: "AccountPermissionUpdateContract",
}
CONTRACT_ENUMS = {v: k for k, v in CONTRACT_NAMES.items()}

KIND_NAMES = {v: k.removeprefix("KIND_") for k, v in pb.Wallet.Kind.items() if v}
KIND_VALUES = {v: k for k, v in KIND_NAMES.items()}
STATE_VALUES = {"ACTIVE": pb.Wallet.STATE_ACTIVE, "DELETED": pb.Wallet.STATE_DELETED}


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value)
    return out


def wallet_to_pb(doc: Mapping[str, Any]) -> pb.Wallet:
    policy = pb.SigningPolicy()
    if doc.get("policy"):
        policy.ParseFromString(doc["policy"])
    w = pb.Wallet(
        wallet_id=doc["_id"],
        display_name=doc.get("display_name", ""),
        owner_id=doc["owner_id"],
        kind=KIND_VALUES[doc["kind"]],
        state=STATE_VALUES[doc["state"]],
        address=doc.get("address", ""),
        xpub=doc.get("xpub", ""),
        account_index=int(doc.get("account_index", 0)),
        derivation_path=doc.get("derivation_path", ""),
        address_count=int(doc.get("address_count", 0)),
        labels=list(doc.get("labels", [])),
        policy=policy,
        tenant=doc.get("tenant", ""),
    )
    for name in ("create_time", "update_time", "delete_time"):
        t = ts(doc.get(name))
        if t is not None:
            getattr(w, name).CopyFrom(t)
    return w


def asset_key(limit: pb.AssetLimit, usdt_address: str) -> str:
    """The vault policy's asset key: "TRX" or a TRC20 contract's base58 address."""
    if limit.asset == common_pb2.ASSET_TRX:
        return TRX
    if limit.asset == common_pb2.ASSET_USDT:
        return usdt_address
    return limit.token_address


def _stricter(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


@lru_cache(maxsize=4096)
def vault_policy(policy_bytes: bytes, usdt_address: str, tokens: tuple[str, ...] = ()) -> WalletPolicy:
    """The vault's WalletPolicy for a stored SigningPolicy and the deployment's TRC20 tokens (USDT and
    `tokens`; cached: wallets sign again and again).

    Several limits for one asset (listed twice, or USDT also as ASSET_TRC20) combine to the strictest:
    a later, looser entry never lifts an earlier one."""
    p = pb.SigningPolicy.FromString(policy_bytes)
    limits: dict[str, AssetLimit] = {}
    for lim in p.limits:
        key = asset_key(lim, usdt_address)
        seen = limits.get(key, AssetLimit())
        limits[key] = AssetLimit(
            per_tx=_stricter(seen.per_tx, lim.per_transaction_limit or None),
            daily=_stricter(seen.daily, lim.daily_limit or None),
        )
    return WalletPolicy(
        allowed_contract_types=frozenset(CONTRACT_NAMES[t] for t in p.allowed_contract_types),
        allowed_destinations=frozenset(p.allowed_destinations) or None,
        limits=limits,
        allow_unlisted_assets=p.allow_unlisted_assets,
        max_fee_limit=p.max_fee_limit_sun or None,
        tokens=frozenset((usdt_address, *tokens)),
        allowed_call_contracts=frozenset(p.allowed_call_contracts),
        allowed_spenders=frozenset(p.allowed_spenders),
        allow_unlimited_approvals=p.allow_unlimited_approvals,
        allowed_resource_receivers=frozenset(p.allowed_resource_receivers),
        allow_locked_delegation=p.allow_locked_delegation,
        allowed_witnesses=frozenset(p.allowed_witnesses),
        allowed_permission_keys=frozenset(p.allowed_permission_keys),
        allowed_permission_ids=frozenset(p.allowed_permission_ids) or frozenset({0}),
        allow_sign_message=p.allow_sign_message,
        allowed_multisig_accounts=frozenset(p.allowed_multisig_accounts),
        allow_contract_creation=p.allow_contract_creation,
    )


def asset_of(asset: str | None, usdt_address: str) -> tuple[int, str]:
    """(common.v1.Asset, token address) of a vault asset key ("TRX", a token address), for the signing log."""
    if asset == TRX:
        return common_pb2.ASSET_TRX, ""
    if asset == usdt_address:
        return common_pb2.ASSET_USDT, asset
    if asset is not None and asset.startswith("T"):
        return common_pb2.ASSET_TRC20, asset
    return common_pb2.ASSET_UNSPECIFIED, ""


def log_to_pb(doc: Mapping[str, Any]) -> pb.SigningRecord:
    r = pb.SigningRecord(
        record_id=doc["_id"],
        kind=pb.SigningRecord.Kind.Value(doc["kind"]),
        wallet_id=doc["wallet_id"],
        signer_address=doc["signer_address"],
        caller=doc.get("caller", ""),
        request_id=doc.get("request_id", ""),
        purpose=doc.get("purpose", ""),
        txid=doc.get("txid", ""),
        contract_type=int(doc.get("contract_type", 0)),  # type: ignore[arg-type]
        asset=int(doc.get("asset", 0)),  # type: ignore[arg-type]
        token_address=doc.get("token_address", ""),
        to_address=doc.get("to_address", ""),
        # uint256 token amounts (e.g. an unlimited approve) are stored as text; the contract field is int64.
        amount=min(int(doc.get("amount", 0)), INT64_MAX),
        permission_id=int(doc.get("permission_id", 0)),
        message_sha256=doc.get("message_sha256", ""),
    )
    t = ts(doc.get("sign_time"))
    if t is not None:
        r.sign_time.CopyFrom(t)
    return r
