"""Stored operations (services.common.chain_ops.Operation) as the contract's StakingOperation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tronpay.trx_staking.v1 import trx_staking_pb2 as pb

from services.common.chain_ops import Operation, OpState
from services.common.timestamps import timestamp, timestamp_ms
from services.trx_staking.rules import Kind

Op = pb.StakingOperation
STATE_PB = {
    OpState.PENDING: Op.STATE_PENDING,
    OpState.SIGNED: Op.STATE_SIGNED,
    OpState.BROADCAST: Op.STATE_BROADCAST,
    OpState.INCLUDED: Op.STATE_INCLUDED,
    OpState.CONFIRMED: Op.STATE_CONFIRMED,
    OpState.FAILED: Op.STATE_FAILED,
    OpState.EXPIRED: Op.STATE_EXPIRED,
}
KIND_PB = {
    Kind.STAKE: Op.KIND_STAKE,
    Kind.UNSTAKE: Op.KIND_UNSTAKE,
    Kind.WITHDRAW_UNSTAKED: Op.KIND_WITHDRAW_UNSTAKED,
    Kind.CLAIM_REWARDS: Op.KIND_CLAIM_REWARDS,
    Kind.DELEGATE: Op.KIND_DELEGATE,
    Kind.UNDELEGATE: Op.KIND_UNDELEGATE,
    Kind.VOTE: Op.KIND_VOTE,
}


def operation_pb(op: Operation, settled: Mapping[str, Any] | None = None) -> pb.StakingOperation:
    """The operation, with what it did once settled (the amount a withdrawal or claim actually moved, an
    unstake's withdrawable time, a stake's delegation)."""
    d, cur = {**op.doc, **(settled or {})}, op.current
    return pb.StakingOperation(
        operation_id=op.id, kind=KIND_PB[Kind(d["op_kind"])], state=STATE_PB[op.state],
        wallet_id=op.wallet_id, owner_address=op.signer_address, amount_sun=int(d.get("amount_sun", 0)),
        resource=int(d.get("resource", 0)),  # type: ignore[arg-type]
        receiver_address=d.get("receiver_address", ""), txid=cur.txid, failure_reason=op.failure_reason,
        withdrawable_time=timestamp_ms(int(d.get("withdrawable_ms", 0))),
        create_time=timestamp(op.create_time), update_time=timestamp(op.update_time),
        lock_period_blocks=int(d.get("lock_period_blocks", 0)),
        votes=[pb.WitnessVote(witness_address=v["witness_address"], vote_count=v["vote_count"])
               for v in d.get("votes", ())],
        block_number=op.block_number, fee_sun=op.receipt.fee_sun if op.receipt else 0,
        confirm_time=timestamp(op.confirm_time), delegation_operation_id=d.get("delegation_operation_id", ""),
        origin=d.get("origin", ""), broadcast_count=cur.broadcasts,
    )  # fmt: skip
