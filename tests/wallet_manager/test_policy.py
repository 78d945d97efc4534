"""Policy refusals with machine-readable reasons (signing with sealed keys: test_keys.py)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from devnet.pb import contract_pb2, tron_pb2
from services.common.tron.address import private_key_to_address
from services.wallet_manager.vault import policy
from services.wallet_manager.vault.policy import AssetLimit, WalletPolicy, check, fee_bound
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
FAKE = private_key_to_address(bytes.fromhex("a1" * 32))  # a contract that is not a configured token
OTHER = private_key_to_address(bytes.fromhex("a2" * 32))
TRX = 1_000_000
POLICY = WalletPolicy(
    allowed_contract_types=frozenset({"TransferContract", "TriggerSmartContract", "FreezeBalanceV2Contract"}),
    limits={"TRX": AssetLimit(per_tx=100 * TRX, daily=150 * TRX), USDT: AssetLimit(per_tx=1_000_000_000)},
    tokens=frozenset({USDT}),
)
EVERYTHING = frozenset(
    {
        "TransferContract",
        "TriggerSmartContract",
        "DelegateResourceContract",
        "VoteWitnessContract",
        "AccountPermissionUpdateContract",
        "FreezeBalanceContract",
        "WithdrawBalanceContract",
        "AccountCreateContract",
    }
)
OPEN = WalletPolicy(allowed_contract_types=EVERYTHING, allow_unlisted_assets=True, tokens=frozenset({USDT}))


def reason(raw: bytes, pol: WalletPolicy = POLICY, **kw: object) -> str | None:
    d = check(parse_transaction(raw), policy=pol, wallet_address=W, **kw)  # type: ignore[arg-type]
    assert bool(d) == (d.reason is None)
    return d.reason


def test_allowed_cases() -> None:
    assert reason(transfer(W, DEST, 100 * TRX)) is None  # per-transaction limits bound the value only
    assert reason(trc20_transfer(W, USDT, DEST, 1_000_000_000)) is None
    freeze = contract_pb2.FreezeBalanceV2Contract(owner_address=a(W), frozen_balance=10**12)
    assert reason(raw_tx("FreezeBalanceV2Contract", freeze)) is None  # not a spend: no limit applies


def test_refusals_have_reasons() -> None:
    assert reason(transfer(W, DEST, 1), watch_only=True) == policy.WATCH_ONLY
    assert reason(transfer(DEST, W, 1)) == policy.WRONG_OWNER
    deleg = contract_pb2.DelegateResourceContract(owner_address=a(W), balance=1, receiver_address=a(DEST))
    assert reason(raw_tx("DelegateResourceContract", deleg)) == policy.CONTRACT_NOT_ALLOWED
    custom = trc20_call(W, USDT, bytes.fromhex("40c10f19") + bytes(64))  # mint(address,uint256)
    assert reason(custom) == policy.CALL_NOT_ALLOWED
    assert reason(custom, dataclasses.replace(OPEN, allowed_call_contracts=frozenset({USDT}))) is None
    # A TRC20 transfer to an allowed destination that also sends TRX or TRC10 to the token contract is
    # not a plain token transfer: its value would escape the TRX limit and the destination allow-list.
    pays = trc20_call(W, USDT, abi_call("a9059cbb", DEST, 1), call_value=10**12)
    assert reason(pays) == policy.CALL_NOT_ALLOWED
    open_calls = dataclasses.replace(POLICY, allowed_call_contracts=frozenset({USDT}))
    assert reason(pays, open_calls) == policy.OVER_TX_LIMIT
    trc10 = contract_pb2.TriggerSmartContract(
        owner_address=a(W), contract_address=a(USDT), data=abi_call("a9059cbb", DEST, 1), call_token_value=5
    )
    assert reason(raw_tx("TriggerSmartContract", trc10)) == policy.CALL_NOT_ALLOWED
    # Allowed as a call, the TRC10 it sends is an asset of its own: unlisted, refused.
    assert reason(raw_tx("TriggerSmartContract", trc10), open_calls) == policy.ASSET_NOT_LISTED
    assert reason(transfer(W, DEST, 100 * TRX + 1)) == policy.OVER_TX_LIMIT
    assert reason(trc20_transfer(W, USDT, DEST, 1_000_000_001)) == policy.OVER_TX_LIMIT
    assert reason(transfer(W, DEST, 1, memo=b"hi")) == policy.MEMO_NOT_ALLOWED
    assert reason(transfer(W, DEST, 1, memo=b"hi"), dataclasses.replace(OPEN, memo_allowed=True)) is None
    now = int(time.time() * 1000)
    assert reason(transfer(W, DEST, 1, expiration_ms=now - 1)) == policy.EXPIRED
    assert reason(transfer(W, DEST, 1, expiration_ms=now + 25 * 3600 * 1000)) == policy.EXPIRATION_TOO_FAR
    assert reason(LEDGER_VECTOR_RAW) == policy.EXPIRED  # 2018 expiration
    assert reason(LEDGER_VECTOR_RAW, now_ms=1528711297744) is None
    capped = dataclasses.replace(POLICY, max_fee_limit=10**8)
    assert reason(trc20_transfer(W, USDT, DEST, 1, fee_limit=10**8 + 1), capped) == policy.OVER_FEE_LIMIT
    assert reason(trc20_transfer(W, USDT, DEST, 1, fee_limit=10**8), capped) is None


def test_state_refusals_come_last() -> None:
    """An expired transaction the policy refuses anyway says why it is refused, not that it expired: a
    state refusal means the policy allows the transaction itself (signing.py may replay then)."""
    now = int(time.time() * 1000)
    nowhere = WalletPolicy(allowed_destinations=frozenset())
    assert reason(transfer(W, OTHER, 1, expiration_ms=now - 1), nowhere) == policy.DESTINATION_NOT_ALLOWED
    assert reason(transfer(W, DEST, 100 * TRX + 1, expiration_ms=now - 1)) == policy.OVER_TX_LIMIT
    assert set(policy.STATE_REASONS) == {policy.EXPIRED, policy.EXPIRATION_TOO_FAR, policy.OVER_DAILY_LIMIT}


def test_token_methods_count_only_on_configured_tokens() -> None:
    for selector in ("a9059cbb", "095ea7b3", "39509351"):  # transfer, approve, increaseAllowance
        raw = trc20_call(W, FAKE, abi_call(selector, DEST, 5))
        tx = parse_transaction(raw)
        assert policy.spends(tx, OPEN) == {}  # moves nothing the policy knows of: an arbitrary call
        assert reason(raw, OPEN) == policy.CALL_NOT_ALLOWED
        assert reason(raw, dataclasses.replace(OPEN, allowed_call_contracts=frozenset({FAKE}))) is None
    tx = parse_transaction(trc20_transfer(W, USDT, DEST, 5))
    assert policy.spends(tx, OPEN) == {USDT: 5} and policy.is_token_call(tx, OPEN)
    # Listed for arbitrary calls, a configured token's transfer is still a token transfer (limits apply).
    both = dataclasses.replace(POLICY, allowed_call_contracts=frozenset({USDT}))
    assert reason(trc20_transfer(W, USDT, DEST, 1_000_000_001), both) == policy.OVER_TX_LIMIT


def test_approvals_check_spender_and_amount() -> None:
    for selector in ("095ea7b3", "39509351"):  # approve, increaseAllowance
        finite = trc20_call(W, USDT, abi_call(selector, OTHER, 5))
        assert reason(finite, OPEN) == policy.SPENDER_NOT_ALLOWED
        spenders = dataclasses.replace(OPEN, allowed_spenders=frozenset({OTHER}))
        assert reason(finite, spenders) is None
        unlimited = trc20_call(W, USDT, abi_call(selector, OTHER, 2**256 - 1))
        assert reason(unlimited, spenders) == policy.UNLIMITED_APPROVAL
        assert reason(unlimited, dataclasses.replace(spenders, allow_unlimited_approvals=True)) is None
    # The destination allow-list does not stand in for the spender list, and a limit still bounds it.
    by_dest = dataclasses.replace(POLICY, allowed_destinations=frozenset({OTHER}))
    assert reason(trc20_call(W, USDT, abi_call("095ea7b3", OTHER, 5)), by_dest) == policy.SPENDER_NOT_ALLOWED
    limited = dataclasses.replace(POLICY, allowed_spenders=frozenset({OTHER}), allow_unlimited_approvals=True)
    assert reason(trc20_call(W, USDT, abi_call("095ea7b3", OTHER, 2**255)), limited) == policy.OVER_TX_LIMIT
    # transferFrom moves tokens to its `to`: the destination list applies.
    data = bytes.fromhex("23b872dd") + a(OTHER)[1:].rjust(32, b"\0") + a(DEST)[1:].rjust(32, b"\0")
    pull = trc20_call(W, USDT, data + (7).to_bytes(32, "big"))
    assert reason(pull, dataclasses.replace(OPEN, allowed_destinations=frozenset({OTHER}))) == (
        policy.DESTINATION_NOT_ALLOWED
    )
    assert reason(pull, dataclasses.replace(OPEN, allowed_destinations=frozenset({DEST}))) is None


def test_control_and_resource_contracts_use_their_own_lists() -> None:
    """A destination allow-list never passes a contract whose counterparty is not a destination."""
    by_dest = dataclasses.replace(OPEN, allowed_destinations=frozenset({DEST}))
    deleg = contract_pb2.DelegateResourceContract(owner_address=a(W), balance=TRX, receiver_address=a(DEST))
    raw = raw_tx("DelegateResourceContract", deleg)
    assert reason(raw, by_dest) == policy.RECEIVER_NOT_ALLOWED
    receivers = dataclasses.replace(OPEN, allowed_resource_receivers=frozenset({DEST}))
    assert reason(raw, receivers) is None
    deleg.lock, deleg.lock_period = True, 100
    locked = raw_tx("DelegateResourceContract", deleg)
    assert reason(locked, receivers) == policy.LOCK_NOT_ALLOWED
    assert reason(locked, dataclasses.replace(receivers, allow_locked_delegation=True)) is None
    v1 = contract_pb2.FreezeBalanceContract(
        owner_address=a(W), frozen_balance=TRX, frozen_duration=3, receiver_address=a(OTHER)
    )
    assert reason(raw_tx("FreezeBalanceContract", v1), receivers) == policy.RECEIVER_NOT_ALLOWED

    vote = contract_pb2.VoteWitnessContract(owner_address=a(W))
    vote.votes.add(vote_address=a(DEST), vote_count=1)
    vote.votes.add(vote_address=a(OTHER), vote_count=1)
    raw = raw_tx("VoteWitnessContract", vote)
    assert reason(raw, by_dest) == policy.WITNESS_NOT_ALLOWED
    assert reason(raw, dataclasses.replace(OPEN, allowed_witnesses=frozenset({DEST}))) == (
        policy.WITNESS_NOT_ALLOWED
    )
    assert reason(raw, dataclasses.replace(OPEN, allowed_witnesses=frozenset({DEST, OTHER}))) is None

    update = contract_pb2.AccountPermissionUpdateContract(owner_address=a(W))
    update.owner.keys.add(address=a(W), weight=1)
    update.actives.add(type=tron_pb2.Permission.Active, id=2, threshold=1).keys.add(
        address=a(OTHER), weight=1
    )
    raw = raw_tx("AccountPermissionUpdateContract", update)
    assert reason(raw, by_dest) == policy.PERMISSION_KEY_NOT_ALLOWED
    assert reason(raw, dataclasses.replace(OPEN, allowed_permission_keys=frozenset({W}))) == (
        policy.PERMISSION_KEY_NOT_ALLOWED
    )
    assert reason(raw, dataclasses.replace(OPEN, allowed_permission_keys=frozenset({W, OTHER}))) is None

    # Owner-only contracts have no counterparty; a type the policy cannot read is refused even if listed.
    withdraw = contract_pb2.WithdrawBalanceContract(owner_address=a(W))
    assert reason(raw_tx("WithdrawBalanceContract", withdraw), by_dest) is None
    create = contract_pb2.AccountCreateContract(owner_address=a(W), account_address=a(DEST))
    assert reason(raw_tx("AccountCreateContract", create), OPEN) == policy.CONTRACT_NOT_ALLOWED


def test_permission_ids() -> None:
    assert reason(transfer(W, DEST, 1, permission_id=2)) == policy.PERMISSION_ID_NOT_ALLOWED
    active = dataclasses.replace(POLICY, allowed_permission_ids=frozenset({2}))
    assert reason(transfer(W, DEST, 1, permission_id=2), active) is None
    assert reason(transfer(W, DEST, 1), active) == policy.PERMISSION_ID_NOT_ALLOWED


def test_multisig_accounts() -> None:
    """A wallet signs for another account only when its policy lists that account (the key itself is
    checked on chain by the servicer) and the permission id is allowed; all other rules still apply."""
    signer = dataclasses.replace(POLICY, allowed_permission_ids=frozenset({2}))
    assert reason(transfer(OTHER, DEST, 1, permission_id=2), signer) == policy.WRONG_OWNER
    cosign = dataclasses.replace(signer, allowed_multisig_accounts=frozenset({OTHER}))
    assert reason(transfer(OTHER, DEST, 1, permission_id=2), cosign) is None
    assert reason(transfer(OTHER, DEST, 1), cosign) == policy.PERMISSION_ID_NOT_ALLOWED
    assert reason(transfer(OTHER, DEST, 100 * TRX + 1, permission_id=2), cosign) == policy.OVER_TX_LIMIT
    assert reason(transfer(FAKE, DEST, 1, permission_id=2), cosign) == policy.WRONG_OWNER


def test_contract_creation() -> None:
    """CreateSmartContract only with allow_contract_creation; TRX sent to the new contract is a spend."""
    new = contract_pb2.SmartContract(origin_address=a(W), bytecode=b"\x60\x80", call_value=5 * TRX, name="R")
    deploy = contract_pb2.CreateSmartContract(owner_address=a(W), new_contract=new)
    raw = raw_tx("CreateSmartContract", deploy, fee_limit=10 * TRX)
    parsed = parse_transaction(raw)
    assert (parsed.contract_type_name, parsed.call_value, parsed.destination) == (
        "CreateSmartContract",
        5 * TRX,
        None,
    )
    assert reason(raw) == policy.CONTRACT_NOT_ALLOWED
    deployer = dataclasses.replace(POLICY, allow_contract_creation=True)
    assert reason(raw, deployer) is None
    assert policy.spends(parsed, deployer) == {"TRX": 5 * TRX}
    deploy.new_contract.call_value = 100 * TRX + 1
    assert reason(raw_tx("CreateSmartContract", deploy), deployer) == policy.OVER_TX_LIMIT


def test_fees_count_as_trx() -> None:
    raw = transfer(W, DEST, 60 * TRX)
    fee = fee_bound(parse_transaction(raw))
    # Bandwidth at 1000 sun/byte for raw_data + framing + one signature + result, plus a new account.
    assert fee == (len(raw) + 4 + 67 + 64) * 1_000 + 1_000_000
    assert reason(raw, spent_today={"TRX": 90 * TRX - fee}) is None
    assert reason(raw, spent_today={"TRX": 90 * TRX - fee + 1}) == policy.OVER_DAILY_LIMIT
    # TriggerSmartContract: its fee_limit is what it can burn in energy.
    usdt = parse_transaction(trc20_transfer(W, USDT, DEST, 5, fee_limit=40 * TRX))
    assert policy.costs(usdt, POLICY) == {USDT: 5, "TRX": 40 * TRX + (len(usdt.raw) + 135) * 1_000}
    big_fee = trc20_transfer(W, USDT, DEST, 5, fee_limit=151 * TRX)
    assert reason(big_fee) == policy.OVER_DAILY_LIMIT
    memo = parse_transaction(transfer(W, DEST, 1, memo=b"x"))
    assert fee_bound(memo) == (len(memo.raw) + 135) * 1_000 + 2_000_000
    update = contract_pb2.AccountPermissionUpdateContract(owner_address=a(W))
    perm = parse_transaction(raw_tx("AccountPermissionUpdateContract", update))
    assert fee_bound(perm) == (len(perm.raw) + 135) * 1_000 + 100 * TRX
    # Fees burn TRX: a wallet whose policy does not list TRX cannot sign even a token transfer.
    usdt_only = dataclasses.replace(POLICY, limits={USDT: AssetLimit()})
    assert reason(trc20_transfer(W, USDT, DEST, 5), usdt_only) == policy.ASSET_NOT_LISTED


def test_destination_allow_list_and_unlisted_assets() -> None:
    pol = WalletPolicy(allowed_destinations=frozenset({USDT}), tokens=frozenset({USDT}))
    assert reason(transfer(W, DEST, 1), pol) == policy.DESTINATION_NOT_ALLOWED
    # For a TRC20 transfer the destination is the token recipient, not the token contract.
    assert reason(trc20_transfer(W, USDT, DEST, 1), pol) == policy.DESTINATION_NOT_ALLOWED
    assert reason(transfer(W, USDT, 1), pol) == policy.ASSET_NOT_LISTED  # TRX has no configured limit
    assert reason(transfer(W, USDT, 1), dataclasses.replace(pol, allow_unlisted_assets=True)) is None


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
    # Proto3 zero values are the strict ones: owner permission only, no unlisted assets, no messages.
    assert (pol.allowed_permission_ids, pol.allow_unlisted_assets, pol.allow_sign_message) == (
        frozenset({0}),
        False,
        False,
    )
    assert (pol.max_fee_limit, pol.tokens) == (None, frozenset({USDT}))


def test_policy_doc_round_trip_and_validation() -> None:
    assert WalletPolicy.from_doc(POLICY.to_doc()) == POLICY
    full = dataclasses.replace(
        OPEN, allowed_permission_ids=frozenset({0, 2}), allowed_witnesses=frozenset({DEST})
    )
    assert WalletPolicy.from_doc(full.to_doc()) == full
    with pytest.raises(ValueError, match="unknown contract"):
        WalletPolicy.from_doc({"allowed_contract_types": ["NopeContract"]})
    assert set(policy.REASONS) >= {"WRONG_OWNER", "CONTRACT_NOT_ALLOWED", "OVER_TX_LIMIT", "WATCH_ONLY"}
