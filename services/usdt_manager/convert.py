"""Stored operations (services.common.chain_ops.Operation) as the contract's Transfer and Approval."""

from __future__ import annotations

from tronpay.usdt_manager.v1 import usdt_manager_pb2 as pb

from services.common.chain_ops import Operation, OpState
from services.common.timestamps import timestamp, timestamp_ms

STATE_PB = {
    OpState.PENDING: pb.OPERATION_STATE_PENDING,
    OpState.SIGNED: pb.OPERATION_STATE_SIGNED,
    OpState.BROADCAST: pb.OPERATION_STATE_BROADCAST,
    OpState.INCLUDED: pb.OPERATION_STATE_INCLUDED,
    OpState.CONFIRMED: pb.OPERATION_STATE_CONFIRMED,
    OpState.FAILED: pb.OPERATION_STATE_FAILED,
    OpState.EXPIRED: pb.OPERATION_STATE_EXPIRED,
}


def attempts(op: Operation) -> list[pb.TransactionAttempt]:
    return [
        pb.TransactionAttempt(
            attempt_number=a.number,
            txid=a.txid,
            expiration_time=timestamp_ms(a.expiration_ms),
            broadcast_count=a.broadcasts,
            first_broadcast_time=timestamp(a.first_broadcast_time),
            last_broadcast_time=timestamp(a.last_broadcast_time),
            expired=a.expired,
            fee_limit_sun=a.fee_limit_sun,
            energy_estimate=a.energy_estimate,
            energy_source=a.energy_source,
        )
        for a in op.attempts
    ]


def _common(op: Operation) -> dict[str, object]:
    """The fields Transfer and Approval share, by name."""
    cur, r, quote = op.current, op.receipt, op.doc.get("quote", {})
    return {
        "wallet_id": op.wallet_id, "amount": op.doc["amount"], "token_address": op.doc["token_address"],
        "state": STATE_PB[op.state], "txid": cur.txid, "failure_reason": op.failure_reason,
        "fee_limit_sun": cur.fee_limit_sun, "energy_estimate": cur.energy_estimate,
        "fee_limit_cap_sun": quote.get("fee_limit_cap_sun", 0),
        "energy_price_sun": quote.get("energy_price_sun", 0),
        "energy_source": cur.energy_source, "block_number": op.block_number,
        "fee_sun": r.fee_sun if r else 0, "energy_used": r.energy_used if r else 0,
        "energy_fee_sun": r.energy_fee_sun if r else 0, "net_fee_sun": r.net_fee_sun if r else 0,
        "broadcast_count": cur.broadcasts, "expiration_time": timestamp_ms(cur.expiration_ms),
        "create_time": timestamp(op.create_time), "update_time": timestamp(op.update_time),
        "include_time": timestamp(op.include_time), "confirm_time": timestamp(op.confirm_time),
        "attempts": attempts(op),
    }  # fmt: skip


def transfer_pb(op: Operation) -> pb.Transfer:
    d = op.doc
    return pb.Transfer(
        transfer_id=op.id, from_address=d["from_address"], to_address=d["to_address"],
        reference=d.get("reference", ""), **_common(op),  # type: ignore[arg-type]
    )  # fmt: skip


def approval_pb(op: Operation) -> pb.Approval:
    d = op.doc
    return pb.Approval(
        approval_id=op.id, owner_address=d["owner_address"], spender_address=d["spender_address"],
        **_common(op),  # type: ignore[arg-type]
    )  # fmt: skip
