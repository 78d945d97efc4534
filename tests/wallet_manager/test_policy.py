"""Policy refusals with machine-readable reasons (signing with sealed keys: test_keys.py)."""

from __future__ import annotations

import time

import pytest

from devnet.pb import contract_pb2
from services.wallet_manager.vault import policy
from services.wallet_manager.vault.policy import AssetLimit, WalletPolicy, check
from services.wallet_manager.vault.tron_tx import parse_transaction

from .txs import (
    ABANDON_ADDR0,
    DEST,
    LEDGER_VECTOR_RAW,
    USDT,
    a,
    abi_call,
    raw_tx,
    transfer,
    trc20_call,
    trc20_transfer,
)

W = ABANDON_ADDR0
POLICY = WalletPolicy(
    allowed_contract_types=frozenset({"TransferContract", "TriggerSmartContract", "FreezeBalanceV2Contract"}),
    limits={"TRX": AssetLimit(per_tx=100_000_000, daily=150_000_000), USDT: AssetLimit(per_tx=1_000_000_000)},
)


def reason(raw: bytes, pol: WalletPolicy = POLICY, **kw: object) -> str | None:
    d = check(parse_transaction(raw), policy=pol, wallet_address=W, **kw)  # type: ignore[arg-type]
    assert bool(d) == (d.reason is None)
    return d.reason


def test_allowed_cases() -> None:
    assert reason(transfer(W, DEST, 100_000_000)) is None
    assert reason(trc20_transfer(W, USDT, DEST, 1_000_000_000)) is None
    freeze = contract_pb2.FreezeBalanceV2Contract(owner_address=a(W), frozen_balance=10**12)
    assert reason(raw_tx("FreezeBalanceV2Contract", freeze)) is None  # not a spend: no limit applies


def test_refusals_have_reasons() -> None:
    assert reason(transfer(W, DEST, 1), watch_only=True) == policy.WATCH_ONLY
    assert reason(transfer(DEST, W, 1)) == policy.WRONG_OWNER
    deleg = contract_pb2.DelegateResourceContract(owner_address=a(W), balance=1, receiver_address=a(DEST))
    assert reason(raw_tx("DelegateResourceContract", deleg)) == policy.CONTRACT_NOT_ALLOWED
    custom = trc20_call(W, USDT, bytes.fromhex("40c10f19") + bytes(64))  # mint(address,uint256)
    assert reason(custom) == policy.CONTRACT_NOT_ALLOWED
    assert reason(custom, WalletPolicy(allow_arbitrary_calls=True)) is None
    # A TRC20 transfer to an allowed destination that also sends TRX or TRC10 to the token contract is
    # not a plain token transfer: its value would escape the TRX limit and the destination allow-list.
    pays = trc20_call(W, USDT, abi_call("a9059cbb", DEST, 1), call_value=10**12)
    assert reason(pays) == policy.CONTRACT_NOT_ALLOWED
    open_calls = WalletPolicy(allow_arbitrary_calls=True, limits=POLICY.limits)
    assert reason(pays, open_calls) == policy.OVER_TX_LIMIT
    trc10 = contract_pb2.TriggerSmartContract(
        owner_address=a(W), contract_address=a(USDT), data=abi_call("a9059cbb", DEST, 1), call_token_value=5
    )
    assert reason(raw_tx("TriggerSmartContract", trc10)) == policy.CONTRACT_NOT_ALLOWED
    assert reason(transfer(W, DEST, 100_000_001)) == policy.OVER_TX_LIMIT
    assert reason(trc20_transfer(W, USDT, DEST, 1_000_000_001)) == policy.OVER_TX_LIMIT
    # approve is limited like a transfer: the allowance can be spent later.
    assert reason(trc20_call(W, USDT, abi_call("095ea7b3", DEST, 2**255))) == policy.OVER_TX_LIMIT
    assert reason(transfer(W, DEST, 60_000_000), spent_today={"TRX": 90_000_001}) == policy.OVER_DAILY_LIMIT
    assert reason(transfer(W, DEST, 60_000_000), spent_today={"TRX": 90_000_000}) is None
    assert reason(transfer(W, DEST, 1, memo=b"hi")) == policy.MEMO_NOT_ALLOWED
    assert reason(transfer(W, DEST, 1, memo=b"hi"), WalletPolicy(memo_allowed=True)) is None
    now = int(time.time() * 1000)
    assert reason(transfer(W, DEST, 1, expiration_ms=now - 1)) == policy.EXPIRED
    assert reason(transfer(W, DEST, 1, expiration_ms=now + 25 * 3600 * 1000)) == policy.EXPIRATION_TOO_FAR
    assert reason(LEDGER_VECTOR_RAW) == policy.EXPIRED  # 2018 expiration
    assert reason(LEDGER_VECTOR_RAW, now_ms=1528711297744) is None
    assert reason(trc20_transfer(W, USDT, DEST, 1, fee_limit=10**9), WalletPolicy(max_fee_limit=10**8)) == (
        policy.OVER_FEE_LIMIT
    )


def test_destination_allow_list_and_unlisted_assets() -> None:
    pol = WalletPolicy(allowed_destinations=frozenset({USDT}), deny_unlisted_assets=True)
    assert reason(transfer(W, DEST, 1), pol) == policy.DESTINATION_NOT_ALLOWED
    # For a TRC20 transfer the destination is the token recipient, not the token contract.
    assert reason(trc20_transfer(W, USDT, DEST, 1), pol) == policy.DESTINATION_NOT_ALLOWED
    assert reason(transfer(W, USDT, 1), pol) == policy.OVER_TX_LIMIT  # TRX has no configured limit


def test_repeated_asset_limits_combine_to_the_strictest() -> None:
    from tronpay.common.v1 import common_pb2
    from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

    from services.wallet_manager.convert import vault_policy

    p = pb.SigningPolicy(allowed_contract_types=[common_pb2.CONTRACT_TYPE_TRANSFER])
    p.limits.add(asset=common_pb2.ASSET_TRX, per_transaction_limit=7, daily_limit=10)
    p.limits.add(asset=common_pb2.ASSET_TRX)  # no limits: must not lift the ones above
    p.limits.add(asset=common_pb2.ASSET_TRX, per_transaction_limit=9, daily_limit=8)
    p.limits.add(asset=common_pb2.ASSET_USDT, daily_limit=5)
    p.limits.add(asset=common_pb2.ASSET_TRC20, token_address=USDT, per_transaction_limit=3, daily_limit=50)
    pol = vault_policy(p.SerializeToString(deterministic=True), USDT)
    assert pol.limits == {"TRX": AssetLimit(per_tx=7, daily=8), USDT: AssetLimit(per_tx=3, daily=5)}


def test_policy_doc_round_trip_and_validation() -> None:
    assert WalletPolicy.from_doc(POLICY.to_doc()) == POLICY
    with pytest.raises(ValueError, match="unknown contract"):
        WalletPolicy.from_doc({"allowed_contract_types": ["NopeContract"]})
    assert set(policy.REASONS) >= {"WRONG_OWNER", "CONTRACT_NOT_ALLOWED", "OVER_TX_LIMIT", "WATCH_ONLY"}
