"""Stored payment, refund, inbox and sweep documents as the contract's messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from google.protobuf import duration_pb2
from tronpay.common.v1 import common_pb2
from tronpay.payment_gateway.v1 import payment_gateway_pb2 as pb

from services.common.timestamps import timestamp
from services.payment_gateway import state as st

ASSET_PB = {"TRX": common_pb2.ASSET_TRX, "USDT": common_pb2.ASSET_USDT}
ASSET_OF = {v: k for k, v in ASSET_PB.items()}
STATE_PB = {name: pb.Payment.State.Value(f"STATE_{name}") for name in st.STATES}
STATE_OF = {v: k for k, v in STATE_PB.items()}
TRANSFER_STATE_PB = {
    st.INCLUDED: common_pb2.TRANSFER_STATE_INCLUDED,
    st.FINAL: common_pb2.TRANSFER_STATE_FINAL,
    st.REVERTED: common_pb2.TRANSFER_STATE_REVERTED,
}
REFUND_STATE_PB = {
    name: pb.Refund.State.Value(f"STATE_{name}") for name in ("PENDING", "SUBMITTED", "CONFIRMED", "FAILED")
}
SWEEP_STATE_PB = {
    name: pb.Sweep.State.Value(f"STATE_{name}") for name in ("PENDING", "SUBMITTED", "CONFIRMED", "FAILED")
}


def transfer_pb(t: Mapping[str, Any]) -> pb.PaymentTransfer:
    return pb.PaymentTransfer(
        txid=t["txid"],
        event_index=int(t["event_index"]),
        from_address=t["from"],
        amount=int(t["amount"]),
        block_number=int(t["block"]),
        state=TRANSFER_STATE_PB[t["state"]],
        detect_time=timestamp(t.get("detect_time") or t.get("create_time")),
        late=bool(t.get("late", False)),
    )


def refund_pb(d: Mapping[str, Any]) -> pb.Refund:
    return pb.Refund(
        refund_id=d["_id"],
        payment_id=d["payment_id"],
        amount=int(d["amount"]),
        to_address=d["to"],
        state=REFUND_STATE_PB[d["state"]],
        txid=d.get("txid", ""),
        reason=d.get("reason", ""),
        failure_reason=d.get("failure_reason", ""),
        create_time=timestamp(d["create_time"]),
        update_time=timestamp(d["update_time"]),
        approvals_missing=max(0, int(d["required_approvals"]) - len(d["approvers"]))
        if d["state"] == "PENDING"
        else 0,
        approvers=list(d["approvers"]),
        initiator=d.get("initiator", ""),
    )


def payment_pb(d: Mapping[str, Any], refunds: Sequence[Mapping[str, Any]] = ()) -> pb.Payment:
    return pb.Payment(
        payment_id=d["_id"],
        merchant_id=d["merchant_id"],
        order_id=d["order_id"],
        asset=ASSET_PB[d["asset"]],
        amount=int(d["amount"]),
        amount_received=int(d.get("received", 0)),
        amount_refunded=int(d.get("refunded", 0)),
        deposit_address=d["deposit_address"],
        state=STATE_PB[d["state"]],
        description=d.get("description", ""),
        webhook_url=d.get("webhook_url", ""),
        metadata=dict(d.get("metadata", {})),
        transfers=[transfer_pb(t) for t in d.get("transfers", ())],
        refunds=[refund_pb(r) for r in refunds],
        expire_time=timestamp(d["expire_at"]),
        create_time=timestamp(d["create_time"]),
        update_time=timestamp(d["update_time"]),
        paid_time=timestamp(d.get("paid_time")),
    )


def unmatched_pb(d: Mapping[str, Any]) -> pb.UnmatchedDeposit:
    return pb.UnmatchedDeposit(
        transfer=transfer_pb(d),
        to_address=d["to"],
        asset=ASSET_PB.get(d["asset"], common_pb2.ASSET_TRC20),
        merchant_id=d["merchant_id"],
        address_payment_id=d.get("address_payment_id", ""),
        reason=d["reason"],
        assigned_payment_id=d.get("assigned_payment_id", ""),
        assigned_by=d.get("assigned_by", ""),
        create_time=timestamp(d["create_time"]),
    )


def sweep_pb(d: Mapping[str, Any]) -> pb.Sweep:
    return pb.Sweep(
        sweep_id=d["_id"],
        merchant_id=d["merchant_id"],
        asset=ASSET_PB[d["asset"]],
        from_address=d["from"],
        to_address=d["to"],
        amount=int(d["amount"]),
        state=SWEEP_STATE_PB[d["state"]],
        txid=d.get("txid", ""),
        payment_ids=list(d.get("payment_ids", ())),
        fee_sun=int(d.get("fee_sun", 0)),
        trigger=d.get("trigger", ""),
        failure_reason=d.get("failure_reason", ""),
        create_time=timestamp(d["create_time"]),
        update_time=timestamp(d["update_time"]),
    )


def duration(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(timedelta(seconds=seconds))
    return out
