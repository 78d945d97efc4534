"""Stake 2.0 operations through the real service on the devnet (unstake wait 9 s, maintenance 1 min): what
each does on chain, read directly from the devnet over HTTP, and what the status and rewards report."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.trx_staking.v1 import trx_staking_pb2 as pb

from services.common.chain_ops import operation_id
from services.trx_staking.operations import PREFIX
from tests.trx_staking.conftest import Rig
from tests.trx_staking.support import (
    BANDWIDTH,
    ENERGY,
    OP,
    TRX,
    Wallet,
    confirmed,
    hex_address,
    new_key,
    new_wallet,
    reason,
    rid,
    staking_policy,
    wait_until,
)


@pytest.fixture
def user(rig: Rig) -> Wallet:
    """A fresh wallet with 20,000 TRX whose policy lets trx-staking sign every staking contract."""
    receivers = [a for _, a in rig.hot]
    return new_wallet(
        rig.devnet, rig.stubs.wallets(), staking_policy(receivers, [rig.witness]), trx=20_000 * TRX
    )


def stake(
    rig: Rig, w: Wallet, amount: int, resource: common_pb2.ResourceType.ValueType = ENERGY, **fields: Any
) -> pb.StakingOperation:
    req = pb.StakeRequest(
        request_id=rid(), wallet_id=w.wallet_id, amount_sun=amount, resource=resource, **fields
    )
    return rig.stubs.staking().Stake(req, timeout=30).operation


def status(rig: Rig, address: str) -> pb.StakingStatus:
    return (
        rig.stubs.staking().GetStakingStatus(pb.GetStakingStatusRequest(address=address), timeout=30).status
    )


def test_stake_shows_in_the_status_as_the_chain_has_it(rig: Rig, user: Wallet) -> None:
    req = pb.StakeRequest(request_id=rid(), wallet_id=user.wallet_id, amount_sun=3_000 * TRX, resource=ENERGY)
    first = rig.stubs.staking().Stake(req, timeout=30).operation
    assert first.kind == OP.KIND_STAKE and first.owner_address == user.address and first.origin == "request"
    assert first.state in (OP.STATE_SIGNED, OP.STATE_BROADCAST) and len(first.txid) == 64
    # The same request is the same operation; the same request_id with another body is refused.
    assert rig.stubs.staking().Stake(req, timeout=30).operation.operation_id == first.operation_id
    other = pb.StakeRequest(
        request_id=req.request_id, wallet_id=user.wallet_id, amount_sun=TRX, resource=ENERGY
    )
    with pytest.raises(grpc.RpcError) as err:
        rig.stubs.staking().Stake(other, timeout=30)
    assert reason(err.value) == "REQUEST_ID_REUSED"
    done = confirmed(rig.stubs.staking_operator(), first.operation_id)
    assert done.block_number > 0 and done.confirm_time.seconds > 0
    confirmed(rig.stubs.staking_operator(), stake(rig, user, 1_000 * TRX, BANDWIDTH).operation_id)

    got, chain, account = (
        status(rig, user.address),
        rig.node.resource(user.address),
        rig.node.account(user.address),
    )
    assert {s.resource: s.amount_sun for s in got.staked} == {ENERGY: 3_000 * TRX, BANDWIDTH: 1_000 * TRX}
    assert (
        got.total_staked_sun
        == 4_000 * TRX
        == rig.node.frozen(user.address) + rig.node.frozen(user.address, "BANDWIDTH")
    )
    assert got.energy_limit == chain["EnergyLimit"] > 0
    assert got.bandwidth_limit == chain["NetLimit"] + chain["freeNetLimit"]
    assert got.tron_power == chain["tronPowerLimit"] == 4_000 and got.tron_power_used == 0
    assert got.balance_sun == account["balance"] and got.available_unstake_count == 32

    # Staking with a receiver delegates the stake once it is confirmed.
    receiver = rig.hot[4][1]
    rig.devnet.wait_for_tx(rig.devnet.faucet(receiver, trx=10 * TRX)[0])
    op = stake(rig, user, 500 * TRX, ENERGY, receiver_address=receiver)
    done = wait_until(
        lambda: (
            rig.stubs.staking_operator()
            .GetStakingOperation(pb.GetStakingOperationRequest(operation_id=op.operation_id), timeout=10)
            .operation
        ),
        lambda o: o.delegation_operation_id != "",
    )
    assert done.state == OP.STATE_CONFIRMED and done.receiver_address == receiver
    delegation = confirmed(rig.stubs.staking_operator(), done.delegation_operation_id)
    assert delegation.kind == OP.KIND_DELEGATE and delegation.amount_sun == 500 * TRX
    (record,) = rig.node.delegated(user.address, receiver)
    assert int(record["frozen_balance_for_energy"]) == 500 * TRX
    (out,) = status(rig, user.address).delegated_out
    assert (out.to_address, out.resource, out.amount_sun) == (receiver, ENERGY, 500 * TRX)
    assert not out.HasField("lock_expire_time")
    (inbound,) = [d for d in status(rig, receiver).delegated_in if d.from_address == user.address]
    assert inbound.amount_sun == 500 * TRX


def test_unstake_waits_then_withdraws(rig: Rig, user: Wallet) -> None:
    confirmed(rig.stubs.staking_operator(), stake(rig, user, 2_000 * TRX).operation_id)
    unstake = pb.UnstakeRequest(
        request_id=rid(), wallet_id=user.wallet_id, amount_sun=1_500 * TRX, resource=ENERGY
    )
    op = confirmed(
        rig.stubs.staking_operator(), rig.stubs.staking().Unstake(unstake, timeout=30).operation.operation_id
    )
    (entry,) = rig.node.account(user.address)["unfrozenV2"]
    assert op.withdrawable_time.ToMilliseconds() == entry["unfreeze_expire_time"]
    (pending,) = status(rig, user.address).pending_unstakes
    assert pending.amount_sun == 1_500 * TRX and pending.withdrawable_time == op.withdrawable_time

    withdraw = pb.WithdrawRequest(request_id=rid(), wallet_id=user.wallet_id, kind=pb.WITHDRAW_KIND_UNSTAKED)
    wait_until(rig.node.head_ms, lambda now: now >= op.withdrawable_time.ToMilliseconds(), timeout=30)
    assert status(rig, user.address).withdrawable_sun == 1_500 * TRX
    before = rig.node.balance(user.address)
    done = confirmed(
        rig.stubs.staking_operator(),
        rig.stubs.staking().Withdraw(withdraw, timeout=30).operation.operation_id,
    )
    assert done.kind == OP.KIND_WITHDRAW_UNSTAKED and done.amount_sun == 1_500 * TRX
    assert rig.node.balance(user.address) == before + 1_500 * TRX - done.fee_sun
    after = status(rig, user.address)
    assert after.withdrawable_sun == 0 and not after.pending_unstakes


def test_votes_earn_rewards_that_are_claimed_once_a_day(rig: Rig, user: Wallet) -> None:
    confirmed(rig.stubs.staking_operator(), stake(rig, user, 1_000 * TRX).operation_id)
    vote = pb.VoteWitnessesRequest(
        request_id=rid(),
        wallet_id=user.wallet_id,
        votes=[pb.WitnessVote(witness_address=rig.witness, vote_count=1_000)],
    )
    voted = confirmed(
        rig.stubs.staking_operator(),
        rig.stubs.staking_operator().VoteWitnesses(vote, timeout=30).operation.operation_id,
    )
    assert [(v.witness_address, v.vote_count) for v in voted.votes] == [(rig.witness, 1_000)]
    assert rig.node.account(user.address)["votes"] == [{"vote_address": rig.witness, "vote_count": 1_000}]

    first = wait_until(lambda: rig.node.reward(user.address), lambda r: r > 0)
    per_block = wait_until(lambda: rig.node.reward(user.address), lambda r: r > first) - first
    # Enough accrued that what accrues after the claim (until it is confirmed) stays below it.
    wait_until(lambda: rig.node.reward(user.address), lambda r: r >= 10 * per_block)
    rewards = rig.stubs.staking().GetStakingRewards(
        pb.GetStakingRewardsRequest(address=user.address), timeout=30
    )
    assert rewards.unclaimed_reward_sun > 0 and rewards.claimed_reward_sun == 0
    assert [(v.witness_address, v.vote_count) for v in rewards.votes] == [(rig.witness, 1_000)]
    assert rewards.estimated_reward_per_day_sun > 0 and not rewards.HasField("last_claim_time")

    before = rig.node.balance(user.address)
    claim = pb.WithdrawRequest(request_id=rid(), wallet_id=user.wallet_id, kind=pb.WITHDRAW_KIND_REWARDS)
    done = confirmed(
        rig.stubs.staking_operator(), rig.stubs.staking().Withdraw(claim, timeout=30).operation.operation_id
    )
    info = rig.node.tx_info(done.txid)
    assert done.kind == OP.KIND_CLAIM_REWARDS and done.amount_sun == info["withdraw_amount"] > 0
    assert rig.node.balance(user.address) == before + done.amount_sun - done.fee_sun
    # The unclaimed reward started again from 0 in the claim's block.
    assert rig.node.reward(user.address) < done.amount_sun
    after = rig.stubs.staking().GetStakingRewards(
        pb.GetStakingRewardsRequest(address=user.address), timeout=30
    )
    assert after.claimed_reward_sun == done.amount_sun
    assert after.next_claim_time.seconds - after.last_claim_time.seconds == 86_400

    again = pb.WithdrawRequest(request_id=rid(), wallet_id=user.wallet_id, kind=pb.WITHDRAW_KIND_REWARDS)
    with pytest.raises(grpc.RpcError) as err:
        rig.stubs.staking().Withdraw(again, timeout=30)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(err.value) == "CLAIM_TOO_SOON"


def test_a_crash_during_a_stake_stakes_once(rig: Rig, user: Wallet) -> None:
    """kill -9 while the signed freeze is stored but dropped by the node; the restarted process sends the same
    transaction again: one freeze on chain, the operation CONFIRMED."""
    proc = rig.cluster["trx_staking"]
    rig.devnet.set_faults(drop_broadcast_rate=1.0, paths=["/wallet/broadcast"])
    try:
        op = stake(rig, user, 777 * TRX)
        wait_until(
            lambda: rig.devnet.get("devnet/faults")["counts"]["dropped"],
            lambda dropped: dropped >= 1,
            timeout=20,
        )
    finally:
        assert proc.process is not None
        proc.process.kill()
        proc.process.wait(timeout=10)
        rig.devnet.clear_faults()
    proc.stop()
    proc.start()
    done = confirmed(rig.stubs.staking_operator(), op.operation_id)
    assert done.txid == op.txid  # the stored transaction, not a new one
    assert rig.node.frozen(user.address) == 777 * TRX


def test_each_chain_rule_is_refused_before_anything_is_signed(rig: Rig, user: Wallet) -> None:
    staking, operator = rig.stubs.staking(), rig.stubs.staking_operator()
    confirmed(operator, stake(rig, user, 100 * TRX).operation_id)
    locked_to = rig.hot[5][1]
    rig.devnet.wait_for_tx(rig.devnet.faucet(locked_to, trx=10 * TRX)[0])
    w, inactive = user.wallet_id, new_key()[1]

    def delegate(receiver: str, amount: int, lock: int = 0) -> pb.DelegateResourceRequest:
        return pb.DelegateResourceRequest(
            wallet_id=w,
            receiver_address=receiver,
            amount_sun=amount,
            resource=ENERGY,
            lock_period_blocks=lock,
        )

    def undelegate(receiver: str, amount: int) -> pb.UndelegateResourceRequest:
        return pb.UndelegateResourceRequest(
            wallet_id=w, receiver_address=receiver, amount_sun=amount, resource=ENERGY
        )

    def vote(witness: str, count: int) -> pb.VoteWitnessesRequest:
        return pb.VoteWitnessesRequest(
            wallet_id=w, votes=[pb.WitnessVote(witness_address=witness, vote_count=count)]
        )

    lock = delegate(locked_to, 10 * TRX, 1_000)
    lock.request_id = rid()
    confirmed(operator, operator.DelegateResource(lock, timeout=30).operation.operation_id)

    cases: list[tuple[str, Any, Any]] = [
        (
            "INSUFFICIENT_BALANCE",
            staking.Stake,
            pb.StakeRequest(wallet_id=w, amount_sun=10**6 * TRX, resource=ENERGY),
        ),
        (
            "INSUFFICIENT_STAKE",
            staking.Unstake,
            pb.UnstakeRequest(wallet_id=w, amount_sun=500 * TRX, resource=ENERGY),
        ),
        (
            "NOTHING_TO_WITHDRAW",
            staking.Withdraw,
            pb.WithdrawRequest(wallet_id=w, kind=pb.WITHDRAW_KIND_UNSTAKED),
        ),
        ("NO_REWARD", staking.Withdraw, pb.WithdrawRequest(wallet_id=w, kind=pb.WITHDRAW_KIND_REWARDS)),
        ("AMOUNT_BELOW_MINIMUM", operator.DelegateResource, delegate(locked_to, TRX // 2)),
        ("INSUFFICIENT_DELEGATABLE_STAKE", operator.DelegateResource, delegate(locked_to, 95 * TRX)),
        ("RECEIVER_NOT_ACTIVATED", operator.DelegateResource, delegate(inactive, TRX)),
        ("LOCK_PERIOD_TOO_LONG", operator.DelegateResource, delegate(locked_to, TRX, 10**7)),
        ("LOCK_SHORTER_THAN_REMAINING", operator.DelegateResource, delegate(locked_to, TRX, 10)),
        ("DELEGATION_LOCKED", operator.UndelegateResource, undelegate(locked_to, TRX)),
        ("NO_DELEGATION", operator.UndelegateResource, undelegate(rig.hot[6][1], TRX)),
        ("INSUFFICIENT_DELEGATED", operator.UndelegateResource, undelegate(locked_to, 11 * TRX)),
        ("VOTES_EXCEED_TRON_POWER", operator.VoteWitnesses, vote(rig.witness, 101)),
        ("NOT_A_WITNESS", operator.VoteWitnesses, vote(locked_to, 1)),
    ]
    for want, call, req in cases:
        req.request_id = rid()
        with pytest.raises(grpc.RpcError) as err:
            call(req, timeout=30)
        assert (err.value.code(), reason(err.value)) == (grpc.StatusCode.FAILED_PRECONDITION, want), want
        # Nothing was stored, so nothing was signed or sent: the request's operation does not exist.
        assert "not found" in _lookup(rig, req.request_id)

    # Below 1 TRX is the contract's own rule for Stake: a field violation before any chain read.
    with pytest.raises(grpc.RpcError) as err:
        staking.Stake(
            pb.StakeRequest(request_id=rid(), wallet_id=w, amount_sun=TRX - 1, resource=ENERGY), timeout=30
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # The 33rd pending unstake: 32 unstakes sent directly to the devnet first (they stay pending 9 s).
    ref = rig.devnet.ref_block()
    for i in range(32):
        value = {"owner_address": hex_address(user.address), "unfreeze_balance": i + 1, "resource": "ENERGY"}
        tx = rig.devnet.sign(rig.devnet.make_tx("UnfreezeBalanceV2Contract", value, ref), user.key)
        assert rig.devnet.broadcast(tx)["result"], tx
    rig.devnet.wait_for_tx(tx["txID"])
    req = pb.UnstakeRequest(request_id=rid(), wallet_id=w, amount_sun=TRX, resource=ENERGY)
    with pytest.raises(grpc.RpcError) as err:
        staking.Unstake(req, timeout=30)
    assert reason(err.value) == "UNSTAKE_LIMIT_REACHED"
    assert status(rig, user.address).available_unstake_count == 0


def _lookup(rig: Rig, request_id: str) -> str:
    """The answer of GetStakingOperation for every operation id a request_id could name."""
    answers = set()
    for prefix in PREFIX.values():
        try:
            rig.stubs.staking_operator().GetStakingOperation(
                pb.GetStakingOperationRequest(operation_id=operation_id(prefix, request_id)), timeout=10
            )
            answers.add("found")
        except grpc.RpcError as exc:
            answers.add((exc.details() or "").lower())
    return " ".join(answers)
