"""Signing policy: decide whether a parsed transaction may be signed for a wallet.

The check is pure: the servicer passes the wallet's policy, its address, whether it is watch-only, the
amounts it already signed today per asset (it keeps the signing log), and the current time. The answer
is an allow or a refusal whose `reason` is one of REASONS, for google.rpc.ErrorInfo.reason.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.common.tron.tx import CONTRACT_TYPE_IDS

from .tron_tx import ParsedTransaction

WATCH_ONLY = "WATCH_ONLY"
WRONG_OWNER = "WRONG_OWNER"
CONTRACT_NOT_ALLOWED = "CONTRACT_NOT_ALLOWED"
DESTINATION_NOT_ALLOWED = "DESTINATION_NOT_ALLOWED"
MEMO_NOT_ALLOWED = "MEMO_NOT_ALLOWED"
OVER_TX_LIMIT = "OVER_TX_LIMIT"
OVER_DAILY_LIMIT = "OVER_DAILY_LIMIT"
OVER_FEE_LIMIT = "OVER_FEE_LIMIT"
EXPIRED = "EXPIRED"
EXPIRATION_TOO_FAR = "EXPIRATION_TOO_FAR"
REASONS = (
    WATCH_ONLY, WRONG_OWNER, CONTRACT_NOT_ALLOWED, DESTINATION_NOT_ALLOWED, MEMO_NOT_ALLOWED,
    OVER_TX_LIMIT, OVER_DAILY_LIMIT, OVER_FEE_LIMIT, EXPIRED, EXPIRATION_TOO_FAR,
)  # fmt: skip
# Refusals the servicer should map to PERMISSION_DENIED; the rest are FAILED_PRECONDITION.
PERMISSION_REASONS = frozenset({WATCH_ONLY, WRONG_OWNER})
# java-tron refuses an expiration more than 24 h after the head block; anything further is a mistake.
MAX_EXPIRATION_AHEAD_MS = 24 * 3600 * 1000
DEFAULT_CONTRACTS = frozenset({"TransferContract", "TriggerSmartContract"})


@dataclass(frozen=True)
class AssetLimit:
    """Limits for one asset in base units (sun for TRX, token units for TRC20); None = unlimited."""

    per_tx: int | None = None
    daily: int | None = None


@dataclass(frozen=True)
class WalletPolicy:
    allowed_contract_types: frozenset[str] = DEFAULT_CONTRACTS
    # None: any destination; otherwise base58 addresses a transfer/approve/call may go to.
    allowed_destinations: frozenset[str] | None = None
    # Keys: "TRX", "TRC10:<id>", or a TRC20 contract's base58 address.
    limits: Mapping[str, AssetLimit] = field(default_factory=dict)
    # Assets without an entry: refuse (True) or allow unlimited (False).
    deny_unlisted_assets: bool = False
    # Calls other than recognised TRC20 transfer/approve/transferFrom (custom contract calls).
    allow_arbitrary_calls: bool = False
    memo_allowed: bool = False
    max_fee_limit: int | None = None

    def to_doc(self) -> dict[str, Any]:
        return {
            "allowed_contract_types": sorted(self.allowed_contract_types),
            "allowed_destinations": None
            if self.allowed_destinations is None
            else sorted(self.allowed_destinations),
            "limits": {a: {"per_tx": lim.per_tx, "daily": lim.daily} for a, lim in self.limits.items()},
            "deny_unlisted_assets": self.deny_unlisted_assets,
            "allow_arbitrary_calls": self.allow_arbitrary_calls,
            "memo_allowed": self.memo_allowed,
            "max_fee_limit": self.max_fee_limit,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> WalletPolicy:
        unknown = set(doc.get("allowed_contract_types", ())) - set(CONTRACT_TYPE_IDS)
        if unknown:
            raise ValueError(f"unknown contract types: {sorted(unknown)}")
        dests = doc.get("allowed_destinations")
        return cls(
            allowed_contract_types=frozenset(doc.get("allowed_contract_types", DEFAULT_CONTRACTS)),
            allowed_destinations=None if dests is None else frozenset(dests),
            limits={a: AssetLimit(v.get("per_tx"), v.get("daily")) for a, v in doc.get("limits", {}).items()},
            deny_unlisted_assets=bool(doc.get("deny_unlisted_assets", False)),
            allow_arbitrary_calls=bool(doc.get("allow_arbitrary_calls", False)),
            memo_allowed=bool(doc.get("memo_allowed", False)),
            max_fee_limit=doc.get("max_fee_limit"),
        )


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


def check(
    tx: ParsedTransaction,
    *,
    policy: WalletPolicy,
    wallet_address: str,
    watch_only: bool = False,
    spent_today: Mapping[str, int] | None = None,
    now_ms: int | None = None,
) -> Decision:
    """Return ALLOW or the first refusal, in a fixed order (authority, shape, then amounts)."""
    if watch_only:
        return _refuse(WATCH_ONLY, "watch-only wallets cannot sign")
    if tx.owner != wallet_address:
        return _refuse(WRONG_OWNER, "owner_address is not this wallet's address")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if tx.expiration <= now:
        return _refuse(EXPIRED, "transaction expiration is in the past")
    if tx.expiration - now > MAX_EXPIRATION_AHEAD_MS:
        return _refuse(EXPIRATION_TOO_FAR, "transaction expiration is more than 24 h ahead")
    if tx.contract_type_name not in policy.allowed_contract_types:
        return _refuse(CONTRACT_NOT_ALLOWED, f"{tx.contract_type_name} is not allowed for this wallet")
    if tx.contract_type == 31 and tx.token_method is None and not policy.allow_arbitrary_calls:
        return _refuse(CONTRACT_NOT_ALLOWED, "only TRC20 transfer/approve calls are allowed")
    if tx.memo and not policy.memo_allowed:
        return _refuse(MEMO_NOT_ALLOWED, "a memo (raw_data.data) is not allowed for this wallet")
    if policy.max_fee_limit is not None and tx.fee_limit > policy.max_fee_limit:
        return _refuse(OVER_FEE_LIMIT, "fee_limit is above the wallet's maximum")
    if (
        policy.allowed_destinations is not None
        and tx.destination is not None
        and tx.destination not in policy.allowed_destinations
    ):
        return _refuse(DESTINATION_NOT_ALLOWED, "destination is not on the wallet's allow-list")
    spend = tx.spend
    if spend is None:
        return ALLOW
    limit = policy.limits.get(spend.asset)
    if limit is None:
        if policy.deny_unlisted_assets:
            return _refuse(OVER_TX_LIMIT, f"no limit is configured for asset {spend.asset}")
        return ALLOW
    if limit.per_tx is not None and spend.amount > limit.per_tx:
        return _refuse(OVER_TX_LIMIT, f"{spend.asset} amount is above the per-transaction limit")
    already = (spent_today or {}).get(spend.asset, 0)
    if limit.daily is not None and already + spend.amount > limit.daily:
        return _refuse(OVER_DAILY_LIMIT, f"{spend.asset} amount would exceed the daily limit")
    return ALLOW
