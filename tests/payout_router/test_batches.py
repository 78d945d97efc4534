"""Batches through the real Envoy edge: 250 payouts in one POST /api/v1/payouts/batch go out as three on-chain
batches of at most PAYOUT_BATCH_SIZE=100, and tronpy (an independent client) sees every recipient credited
exactly once, with one Paid event per payout; a TRX payout is a plain transfer."""

from __future__ import annotations

from typing import Any

from tronpay.payout_router.v1 import payout_router_pb2 as pb

from tests.edge.http import Reply, call
from tests.payout_router.conftest import Rig
from tests.payout_router.support import (
    STATE,
    TRX,
    USDT,
    fresh_address,
    rid,
    wait_final,
)


def rest(
    rig: Rig, method: str, path: str, body: dict[str, Any] | None = None, role: str = "operator"
) -> Reply:
    return call(rig.edge.rest_url, method, path, body=body, headers=rig.edge.auth(role))


def ok(reply: Reply) -> dict[str, Any]:
    assert reply.status == 200, (reply.status, reply.body)
    data: dict[str, Any] = reply.json()
    return data


def test_250_payouts_in_one_request_are_three_onchain_batches_each_paid_once(rig: Rig) -> None:
    recipients = [fresh_address() for _ in range(250)]
    amounts = [(1 + i % 7) * USDT + i for i in range(250)]
    router = rig.router.contract_address
    router_before = rig.chain.balance(router)
    body = {
        "requestId": rid(),
        "walletId": rig.disburser.wallet_id,
        "asset": "ASSET_USDT",
        "reference": "june",
        "items": [
            {"recipientAddress": to, "amount": str(a), "reference": f"inv-{i}"}
            for i, (to, a) in enumerate(zip(recipients, amounts, strict=True))
        ],
    }
    created = ok(rest(rig, "POST", "/api/v1/payouts/batch", body))
    batch = created["batch"]
    assert batch["payoutCount"] == 250 and int(batch["totalAmount"]) == sum(amounts)
    ids = [p["payoutId"] for p in created["payouts"]]
    assert len(set(ids)) == 250 and [p["recipientAddress"] for p in created["payouts"]] == recipients
    # The same request again is the same batch.
    again = ok(rest(rig, "POST", "/api/v1/payouts/batch", body))
    assert [p["payoutId"] for p in again["payouts"]] == ids

    stub = rig.stubs.payouts()
    done = wait_final(stub, ids, timeout=240)
    assert {STATE.State.Name(p.state) for p in done.values()} == {"STATE_CONFIRMED"}, {
        p.payout_id: p.failure_reason for p in done.values() if p.failure_reason
    }
    chunks = {p.onchain_batch_id for p in done.values()}
    assert len(chunks) == 3
    sizes = sorted(sum(1 for p in done.values() if p.onchain_batch_id == c) for c in chunks)
    assert sizes == [50, 100, 100]
    txids = {p.txid for p in done.values()}
    assert len(txids) == 3 and all(p.fee_sun > 0 for p in done.values())
    # Independent client: every recipient got exactly its amount, the router paid exactly the sum, one Paid
    # event per payout.
    for to, amount in zip(recipients, amounts, strict=True):
        assert rig.chain.balance(to) == amount
    assert router_before - rig.chain.balance(router) == sum(amounts)
    paid = rig.chain.paid_events(router, txids)
    assert len(paid) == 250 and set(paid.values()) == {1}

    # The batch through the operator's GetPayoutBatch; history by batch through the edge.
    got = rig.stubs.operator().GetPayoutBatch(pb.GetPayoutBatchRequest(batch_id=batch["batchId"]), timeout=10)
    assert sorted(got.batch.onchain_batch_ids) == sorted(chunks)
    assert dict(got.batch.state_counts) == {"STATE_CONFIRMED": 250}
    seen: list[str] = []
    token = ""
    while True:
        page = ok(
            rest(
                rig,
                "GET",
                f"/api/v1/payouts/history?batchId={batch['batchId']}&pageSize=100"
                + (f"&pageToken={token}" if token else ""),
            )
        )
        seen += [p["payoutId"] for p in page.get("payouts", [])]
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert sorted(seen) == sorted(ids)


def test_trx_payout_is_a_plain_transfer(rig: Rig) -> None:
    to = fresh_address()
    body = {
        "requestId": rid(),
        "walletId": rig.disburser.wallet_id,
        "recipientAddress": to,
        "asset": "ASSET_TRX",
        "amount": str(3 * TRX),
        "reference": "refund 7",
    }
    created = ok(rest(rig, "POST", "/api/v1/payouts/initiate", body))["payout"]
    assert created["state"] == "STATE_APPROVED" and created["sourceAddress"] == rig.disburser.address
    done = wait_final(rig.stubs.payouts(), [created["payoutId"]])[created["payoutId"]]
    assert done.state == STATE.STATE_CONFIRMED, done.failure_reason
    assert rig.chain.trx(to) == 3 * TRX
    got = ok(rest(rig, "GET", f"/api/v1/payouts/{created['payoutId']}", role="viewer"))["payout"]
    assert got["state"] == "STATE_CONFIRMED" and got["txid"] == done.txid and got["reference"] == "refund 7"
    # Another tenant's token sees neither the payout nor it in the history.
    other = rig.edge.auth("viewer", tenant="m2")
    hidden = call(rig.edge.rest_url, "GET", f"/api/v1/payouts/{created['payoutId']}", headers=other)
    assert hidden.status == 404
    listed = call(rig.edge.rest_url, "GET", f"/api/v1/payouts/history?recipientAddress={to}", headers=other)
    assert listed.status == 200 and listed.json().get("payouts", []) == []


def test_history_filters_by_reference(rig: Rig) -> None:
    """GET /api/v1/payouts/history?reference=: the payouts whose own reference (an initiated payout's or a
    batch item's) is exactly that one."""
    tag = rid()  # no other test uses these references
    single = {
        "requestId": rid(), "walletId": rig.disburser.wallet_id, "recipientAddress": fresh_address(),
        "asset": "ASSET_TRX", "amount": str(TRX), "reference": f"{tag}-a",
    }  # fmt: skip
    first = ok(rest(rig, "POST", "/api/v1/payouts/initiate", single))["payout"]["payoutId"]
    batch = {
        "requestId": rid(), "walletId": rig.disburser.wallet_id, "asset": "ASSET_TRX",
        "reference": f"{tag}-a",  # the batch's own reference: not what the filter matches
        "items": [
            {"recipientAddress": fresh_address(), "amount": str(TRX), "reference": ref}
            for ref in (f"{tag}-b", f"{tag}-a")
        ],
    }  # fmt: skip
    items = [p["payoutId"] for p in ok(rest(rig, "POST", "/api/v1/payouts/batch", batch))["payouts"]]
    listed = ok(rest(rig, "GET", f"/api/v1/payouts/history?reference={tag}-a", role="viewer"))
    assert sorted(p["payoutId"] for p in listed["payouts"]) == sorted([first, items[1]])
    assert {p["reference"] for p in listed["payouts"]} == {f"{tag}-a"}
    only_b = ok(rest(rig, "GET", f"/api/v1/payouts/history?reference={tag}-b", role="viewer"))
    assert [p["payoutId"] for p in only_b["payouts"]] == [items[0]]
    none = ok(rest(rig, "GET", f"/api/v1/payouts/history?reference={tag}", role="viewer"))
    assert none.get("payouts", []) == []  # exact match, not a prefix
    wait_final(rig.stubs.payouts(), [first, *items])
