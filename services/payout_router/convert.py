"""Stored payout and batch documents as the contract's Payout and PayoutBatch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tronpay.common.v1 import common_pb2
from tronpay.payout_router.v1 import payout_router_pb2 as pb

from services.common.timestamps import timestamp

ASSET_PB = {"TRX": common_pb2.ASSET_TRX, "USDT": common_pb2.ASSET_USDT}
ASSET_OF = {v: k for k, v in ASSET_PB.items()}
STATE_PB = {
    "PENDING": pb.Payout.STATE_PENDING,
    "APPROVED": pb.Payout.STATE_APPROVED,
    "SUBMITTED": pb.Payout.STATE_SUBMITTED,
    "CONFIRMED": pb.Payout.STATE_CONFIRMED,
    "FAILED": pb.Payout.STATE_FAILED,
    "CANCELLED": pb.Payout.STATE_CANCELLED,
}
STATE_OF = {v: k for k, v in STATE_PB.items()}


def payout_pb(d: Mapping[str, Any]) -> pb.Payout:
    return pb.Payout(
        payout_id=d["_id"],
        batch_id=d.get("batch_id", ""),
        wallet_id=d["wallet_id"],
        source_address=d["source_address"],
        recipient_address=d["recipient_address"],
        asset=ASSET_PB[d["asset"]],
        amount=int(d["amount"]),
        reference=d.get("reference", ""),
        state=STATE_PB[d["state"]],
        approvals=[
            pb.PayoutApproval(
                approver_id=a["approver_id"],
                comment=a.get("comment", ""),
                approve_time=timestamp(a.get("approve_time")),
            )
            for a in d.get("approvals", [])
        ],
        required_approvals=int(d.get("required_approvals", 0)),
        txid=d.get("txid", ""),
        onchain_batch_id=d.get("chunk_id", ""),
        fee_sun=int(d.get("fee_sun", 0)),
        failure_reason=d.get("failure_reason", ""),
        create_time=timestamp(d.get("create_time")),
        update_time=timestamp(d.get("update_time")),
        submit_time=timestamp(d.get("submit_time")),
        confirm_time=timestamp(d.get("confirm_time")),
    )


def batch_pb(b: Mapping[str, Any], members: Sequence[Mapping[str, Any]]) -> pb.PayoutBatch:
    counts: dict[str, int] = {}
    chunks: list[str] = []
    for d in members:
        name = pb.Payout.State.Name(STATE_PB[d["state"]])
        counts[name] = counts.get(name, 0) + 1
        if d.get("chunk_id") and d["chunk_id"] not in chunks:
            chunks.append(d["chunk_id"])
    last = max((d["update_time"] for d in members), default=b["update_time"])
    return pb.PayoutBatch(
        batch_id=b["_id"],
        wallet_id=b["wallet_id"],
        asset=ASSET_PB[b["asset"]],
        payout_count=int(b["payout_count"]),
        total_amount=int(b["total_amount"]),
        onchain_batch_ids=chunks,
        state_counts=counts,
        reference=b.get("reference", ""),
        create_time=timestamp(b["create_time"]),
        update_time=timestamp(max(last, b["update_time"])),
    )
