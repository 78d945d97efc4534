"""Signing policy: decide whether a parsed transaction may be signed for a wallet, on what it does on chain.

The check is pure: the servicer passes the wallet's effective policy (its SigningPolicy plus the
deployment's TRC20 tokens), its address, whether it is watch-only, the amounts it already counted today
per asset (it keeps the signing log), and the current time. The answer is an allow or a refusal whose
`reason` is one of REASONS, for google.rpc.ErrorInfo.reason.

What a transaction does, not what it looks like:
 - transfer, transferFrom, approve and increaseAllowance are token operations only on a configured token;
   the same call of any other contract is an arbitrary call, allowed only to allowed_call_contracts;
 - every counterparty is checked against its own allow-list (recipients, spenders, resource receivers,
   witnesses, permission keys, called contracts); a contract type the policy cannot check is refused;
 - TRX counts the worst case: the value moved plus fee_bound() (fee_limit, bandwidth, fixed fees);
 - the refusals that depend on time or on the day's totals (STATE_REASONS) come after all the others, so
   such a refusal means the policy allows the transaction itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from services.common.tron.tx import CONTRACT_TYPE_IDS
from services.common.tron.wire import INT64_MAX

from .tron_tx import TRX, ParsedTransaction

WATCH_ONLY = "WATCH_ONLY"
WRONG_OWNER = "WRONG_OWNER"
PERMISSION_ID_NOT_ALLOWED = "PERMISSION_ID_NOT_ALLOWED"
CONTRACT_NOT_ALLOWED = "CONTRACT_NOT_ALLOWED"
CALL_NOT_ALLOWED = "CALL_NOT_ALLOWED"
DESTINATION_NOT_ALLOWED = "DESTINATION_NOT_ALLOWED"
SPENDER_NOT_ALLOWED = "SPENDER_NOT_ALLOWED"
UNLIMITED_APPROVAL = "UNLIMITED_APPROVAL"
RECEIVER_NOT_ALLOWED = "RECEIVER_NOT_ALLOWED"
LOCK_NOT_ALLOWED = "LOCK_NOT_ALLOWED"
WITNESS_NOT_ALLOWED = "WITNESS_NOT_ALLOWED"
PERMISSION_KEY_NOT_ALLOWED = "PERMISSION_KEY_NOT_ALLOWED"
MEMO_NOT_ALLOWED = "MEMO_NOT_ALLOWED"
OVER_FEE_LIMIT = "OVER_FEE_LIMIT"
ASSET_NOT_LISTED = "ASSET_NOT_LISTED"
OVER_TX_LIMIT = "OVER_TX_LIMIT"
EXPIRED = "EXPIRED"
EXPIRATION_TOO_FAR = "EXPIRATION_TOO_FAR"
OVER_DAILY_LIMIT = "OVER_DAILY_LIMIT"
MESSAGE_NOT_ALLOWED = "MESSAGE_NOT_ALLOWED"
# Signing for a multi-signature account (the servicer checks the chain): the wallet's key is no key of the
# transaction's permission, or the transaction already carries this key's signature.
NOT_A_PERMISSION_KEY = "NOT_A_PERMISSION_KEY"
ALREADY_SIGNED = "ALREADY_SIGNED"
REASONS = (
    WATCH_ONLY, WRONG_OWNER, PERMISSION_ID_NOT_ALLOWED, CONTRACT_NOT_ALLOWED, CALL_NOT_ALLOWED,
    DESTINATION_NOT_ALLOWED, SPENDER_NOT_ALLOWED, UNLIMITED_APPROVAL, RECEIVER_NOT_ALLOWED, LOCK_NOT_ALLOWED,
    WITNESS_NOT_ALLOWED, PERMISSION_KEY_NOT_ALLOWED, MEMO_NOT_ALLOWED, OVER_FEE_LIMIT, ASSET_NOT_LISTED,
    OVER_TX_LIMIT, EXPIRED, EXPIRATION_TOO_FAR, OVER_DAILY_LIMIT, MESSAGE_NOT_ALLOWED, NOT_A_PERMISSION_KEY,
    ALREADY_SIGNED,
)  # fmt: skip
# Allowed in principle but not now (FAILED_PRECONDITION); every other refusal is PERMISSION_DENIED.
STATE_REASONS = frozenset({EXPIRED, EXPIRATION_TOO_FAR, OVER_DAILY_LIMIT})
# java-tron refuses an expiration more than 24 h after the head block; anything further is a mistake.
MAX_EXPIRATION_AHEAD_MS = 24 * 3600 * 1000
DEFAULT_CONTRACTS = frozenset({"TransferContract", "TriggerSmartContract"})
# Contract types whose only party is the owner (or that take resources back to it).
OWNER_ONLY_CONTRACTS = frozenset(
    {
        "FreezeBalanceV2Contract",
        "UnfreezeBalanceV2Contract",
        "WithdrawExpireUnfreezeContract",
        "CancelAllUnfreezeV2Contract",
        "UnDelegateResourceContract",
        "UnfreezeBalanceContract",
        "WithdrawBalanceContract",
    }
)
APPROVALS = frozenset({"approve", "increaseAllowance"})

# Mainnet fees (tron-protocol.md §5.1, §5.3) a signed transaction can burn besides its fee_limit (energy).
SUN_PER_BANDWIDTH_BYTE = 1_000  # getTransactionFee: bandwidth bought by burning TRX
# Bandwidth bytes besides raw_data: Transaction framing (tag + length, at most 4), one signature (67) and the
# 64 bytes reserved for the result.
TX_OVERHEAD_BYTES = 4 + 67 + 64
NEW_ACCOUNT_FEE = 1_000_000  # getCreateNewAccountFeeInSystemContract, a transfer to a new account
MEMO_FEE = 1_000_000  # getMemoFee
PERMISSION_UPDATE_FEE = 100_000_000  # getUpdateAccountPermissionFee


def fee_bound(tx: ParsedTransaction) -> int:
    """The most TRX (sun) the transaction can burn: its fee_limit, its bandwidth at the burn price, and the
    fixed fees it can incur. A transfer to a new account pays its bandwidth as a flat 0.1 TRX instead,
    which the bytes price (at least 135 000 sun) covers. The 1 TRX multi-signature fee is not counted:
    the vault adds one signature."""
    fee = tx.fee_limit + (len(tx.raw) + TX_OVERHEAD_BYTES) * SUN_PER_BANDWIDTH_BYTE
    if tx.contract_type_name in ("TransferContract", "TransferAssetContract"):
        fee += NEW_ACCOUNT_FEE
    if tx.memo:
        fee += MEMO_FEE
    if tx.contract_type_name == "AccountPermissionUpdateContract":
        fee += PERMISSION_UPDATE_FEE
    return fee


@dataclass(frozen=True)
class AssetLimit:
    """Limits for one asset in base units (sun for TRX, token units for TRC20); None = unlimited."""

    per_tx: int | None = None
    daily: int | None = None


@dataclass(frozen=True)
class WalletPolicy:
    """A wallet's effective policy. Addresses are base58; an empty allow-list allows none, except
    allowed_destinations, where None allows any recipient."""

    allowed_contract_types: frozenset[str] = DEFAULT_CONTRACTS
    # Recipients of TRX/TRC10 transfers and of token transfer/transferFrom calls.
    allowed_destinations: frozenset[str] | None = None
    # Keys: "TRX", "TRC10:<id>", or a TRC20 contract's base58 address. Per-transaction limits bound the
    # value moved, daily limits the value plus (TRX) the worst-case fee.
    limits: Mapping[str, AssetLimit] = field(default_factory=dict)
    allow_unlisted_assets: bool = False
    memo_allowed: bool = False
    max_fee_limit: int | None = None
    # The deployment's TRC20 tokens (USDT_CONTRACT_ADDRESS, WALLET_TRC20_TOKENS), not the wallet's choice.
    tokens: frozenset[str] = frozenset()
    allowed_call_contracts: frozenset[str] = frozenset()
    allowed_spenders: frozenset[str] = frozenset()
    allow_unlimited_approvals: bool = False
    allowed_resource_receivers: frozenset[str] = frozenset()
    allow_locked_delegation: bool = False
    allowed_witnesses: frozenset[str] = frozenset()
    allowed_permission_keys: frozenset[str] = frozenset()
    allowed_permission_ids: frozenset[int] = frozenset({0})
    allow_sign_message: bool = False
    # Accounts the wallet may sign for as one key of their permission (the servicer checks the key on chain).
    allowed_multisig_accounts: frozenset[str] = frozenset()
    allow_contract_creation: bool = False

    def to_doc(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        doc = {k: sorted(v) if isinstance(v, frozenset) else v for k, v in doc.items()}
        doc["limits"] = {a: {"per_tx": lim.per_tx, "daily": lim.daily} for a, lim in self.limits.items()}
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> WalletPolicy:
        unknown = set(doc.get("allowed_contract_types", ())) - set(CONTRACT_TYPE_IDS)
        if unknown:
            raise ValueError(f"unknown contract types: {sorted(unknown)}")
        kw = {f.name: doc[f.name] for f in fields(cls) if f.name in doc}
        kw = {k: frozenset(v) if isinstance(v, list) else v for k, v in kw.items()}
        limits = doc.get("limits", {})
        kw["limits"] = {a: AssetLimit(v.get("per_tx"), v.get("daily")) for a, v in limits.items()}
        return cls(**kw)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str | None = None  # one of REASONS when refused
    detail: str = ""  # safe, human-readable; names fields, never secrets

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)


def _refuse(reason: str, detail: str) -> Decision:
    return Decision(False, reason, detail)


def is_token_call(tx: ParsedTransaction, policy: WalletPolicy) -> bool:
    """A transfer, transferFrom, approve or increaseAllowance of one of the deployment's tokens."""
    return tx.token_method is not None and tx.token_contract in policy.tokens


def spends(tx: ParsedTransaction, policy: WalletPolicy) -> dict[str, int]:
    """Value the transaction moves or lets another account move, per asset (the token first). An approval
    counts: the spender can move that amount later. Staking and delegation stay in the owner's account."""
    out: dict[str, int] = {}
    if tx.contract_type_name in ("TransferContract", "TransferAssetContract"):
        out[tx.asset or TRX] = tx.amount or 0
    elif tx.contract_type_name in ("TriggerSmartContract", "CreateSmartContract"):
        if is_token_call(tx, policy):
            out[tx.token_contract or ""] = tx.amount or 0
        if tx.call_value:
            out[TRX] = tx.call_value
        if tx.call_token_value:
            out[f"TRC10:{tx.call_token_id}"] = tx.call_token_value
    return out


def costs(tx: ParsedTransaction, policy: WalletPolicy) -> dict[str, int]:
    """What counts against daily limits: spends() plus, in TRX, the most the transaction can burn in fees."""
    out = spends(tx, policy)
    out[TRX] = out.get(TRX, 0) + fee_bound(tx)
    return out


def _destination(tx: ParsedTransaction, policy: WalletPolicy) -> Decision | None:
    if policy.allowed_destinations is None or tx.destination in policy.allowed_destinations:
        return None
    return _refuse(DESTINATION_NOT_ALLOWED, "destination is not on the wallet's allow-list")


def _counterparties(tx: ParsedTransaction, policy: WalletPolicy) -> Decision | None:
    """Every other party of the contract against its own allow-list; None when all are allowed."""
    name = tx.contract_type_name
    if name in ("TransferContract", "TransferAssetContract"):
        return _destination(tx, policy)
    if name == "TriggerSmartContract":
        if not is_token_call(tx, policy):
            if tx.contract_address in policy.allowed_call_contracts:
                return None
            return _refuse(CALL_NOT_ALLOWED, "the called contract is not in allowed_call_contracts")
        if tx.token_method not in APPROVALS:
            return _destination(tx, policy)
        if tx.destination not in policy.allowed_spenders:
            return _refuse(SPENDER_NOT_ALLOWED, "the approval's spender is not on the wallet's allow-list")
        if (tx.amount or 0) > INT64_MAX and not policy.allow_unlimited_approvals:
            return _refuse(UNLIMITED_APPROVAL, "approvals above 2^63-1 base units are not allowed")
        return None
    if name in ("DelegateResourceContract", "FreezeBalanceContract"):  # v1 freeze delegates with a receiver
        if tx.destination is not None and tx.destination not in policy.allowed_resource_receivers:
            return _refuse(RECEIVER_NOT_ALLOWED, "the resource receiver is not on the wallet's allow-list")
        if tx.lock and not policy.allow_locked_delegation:
            return _refuse(LOCK_NOT_ALLOWED, "locked delegations are not allowed for this wallet")
        return None
    if name == "VoteWitnessContract":
        if any(w not in policy.allowed_witnesses for w, _ in tx.votes):
            return _refuse(WITNESS_NOT_ALLOWED, "a voted witness is not on the wallet's allow-list")
        return None
    if name == "AccountPermissionUpdateContract":
        if any(k not in policy.allowed_permission_keys for k in tx.permission_keys):
            return _refuse(PERMISSION_KEY_NOT_ALLOWED, "a permission key is not on the wallet's allow-list")
        return None
    if name in OWNER_ONLY_CONTRACTS or name == "CreateSmartContract":  # a deployment has no counterparty
        return None
    return _refuse(CONTRACT_NOT_ALLOWED, f"the signing policy cannot check {name}")


def check(
    tx: ParsedTransaction,
    *,
    policy: WalletPolicy,
    wallet_address: str,
    watch_only: bool = False,
    spent_today: Mapping[str, int] | None = None,
    now_ms: int | None = None,
) -> Decision:
    """Return ALLOW or the first refusal, in a fixed order: authority, what the transaction does and with
    whom, amounts; then the STATE_REASONS (expiration, the day's totals)."""
    if watch_only:
        return _refuse(WATCH_ONLY, "watch-only wallets cannot sign")
    if tx.owner != wallet_address and tx.owner not in policy.allowed_multisig_accounts:
        return _refuse(WRONG_OWNER, "owner_address is neither this wallet's address nor an allowed multisig")
    if tx.permission_id not in policy.allowed_permission_ids:
        return _refuse(PERMISSION_ID_NOT_ALLOWED, f"permission id {tx.permission_id} is not allowed")
    creation = tx.contract_type_name == "CreateSmartContract" and policy.allow_contract_creation
    if tx.contract_type_name not in policy.allowed_contract_types and not creation:
        return _refuse(CONTRACT_NOT_ALLOWED, f"{tx.contract_type_name} is not allowed for this wallet")
    refusal = _counterparties(tx, policy)
    if refusal is not None:
        return refusal
    if tx.memo and not policy.memo_allowed:
        return _refuse(MEMO_NOT_ALLOWED, "a memo (raw_data.data) is not allowed for this wallet")
    if policy.max_fee_limit is not None and tx.fee_limit > policy.max_fee_limit:
        return _refuse(OVER_FEE_LIMIT, "fee_limit is above the wallet's maximum")
    daily = costs(tx, policy)
    for asset in daily:
        if asset not in policy.limits and not policy.allow_unlisted_assets:
            paid = " (fees are paid in TRX)" if asset == TRX else ""
            return _refuse(ASSET_NOT_LISTED, f"no limit is configured for asset {asset}{paid}")
    for asset, amount in spends(tx, policy).items():
        per_tx = policy.limits[asset].per_tx if asset in policy.limits else None
        if per_tx is not None and amount > per_tx:
            return _refuse(OVER_TX_LIMIT, f"{asset} amount is above the per-transaction limit")

    now = int(time.time() * 1000) if now_ms is None else now_ms
    if tx.expiration <= now:
        return _refuse(EXPIRED, "transaction expiration is in the past")
    if tx.expiration - now > MAX_EXPIRATION_AHEAD_MS:
        return _refuse(EXPIRATION_TOO_FAR, "transaction expiration is more than 24 h ahead")
    for asset, amount in daily.items():
        limit = policy.limits[asset].daily if asset in policy.limits else None
        if limit is not None and (spent_today or {}).get(asset, 0) + amount > limit:
            fee = " with its worst-case fee" if asset == TRX else ""
            return _refuse(OVER_DAILY_LIMIT, f"{asset} amount{fee} would exceed the daily limit")
    return ALLOW
