"""Payments end to end on the devnet: created through Envoy, paid by TronWeb (an independent client) and by
signed devnet transactions, detected from tron-client's stream; PAID only after solidification; under, over,
partial, expired and late payments; a fork during CONFIRMING; the unmatched inbox; webhooks per state."""

from __future__ import annotations

import shutil

import grpc
import httpx
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.payment_gateway.v1 import payment_gateway_pb2 as pb

from tests.payment_gateway.conftest import Rig
from tests.payment_gateway.support import (
    STATE,
    TRX,
    USDT,
    Receiver,
    create,
    hex_address,
    payment,
    rid,
    tronweb_pay,
    wait_state,
    wait_until,
)

TERMINAL = (
    STATE.STATE_PAID,
    STATE.STATE_UNDERPAID,
    STATE.STATE_OVERPAID,
    STATE.STATE_EXPIRED,
    STATE.STATE_PAID_LATE,
)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_a_payment_paid_by_tronweb_is_paid_only_once_solidified(rig: Rig) -> None:
    receiver = Receiver("shop-1")
    try:
        auth = rig.edge.auth("operator", subject="alice")
        body = {
            "requestId": rid(),
            "merchantId": "shop-1",
            "orderId": "order-1",
            "asset": "ASSET_USDT",
            "amount": str(12 * USDT),
            "webhookUrl": receiver.url,
            "metadata": {"cart": "42"},
        }
        created = httpx.post(
            f"{rig.edge.rest_url}/api/v1/payments/process", json=body, headers=auth, timeout=30
        )
        assert created.status_code == 200, created.text
        p = created.json()["payment"]
        assert (
            p["state"] == "STATE_PENDING"
            and p["depositAddress"].startswith("T")
            and p["metadata"] == {"cart": "42"}
        )
        # The same order again under another request id is refused; the same request returns the same payment.
        again = httpx.post(
            f"{rig.edge.rest_url}/api/v1/payments/process", json=body, headers=auth, timeout=30
        )
        assert again.json()["payment"]["paymentId"] == p["paymentId"]
        other = httpx.post(
            f"{rig.edge.rest_url}/api/v1/payments/process",
            json={**body, "requestId": rid()},
            headers=auth,
            timeout=30,
        )
        assert other.status_code == 409, other.text

        (txid,) = tronweb_pay(rig.devnet, rig.payer, [("USDT", p["depositAddress"], 12 * USDT)])
        stub = rig.stub()
        seen = wait_state(stub, p["paymentId"], STATE.STATE_CONFIRMING, STATE.STATE_PAID)
        paid = wait_state(stub, p["paymentId"], STATE.STATE_PAID)
        (t,) = paid.transfers
        assert t.txid == txid and t.amount == 12 * USDT and t.state == common_pb2.TRANSFER_STATE_FINAL
        assert paid.amount_received == 12 * USDT and paid.paid_time.seconds > 0
        # Paid means solidified: the devnet's solidified block holds the transfer.
        solid = rig.devnet.post("walletsolidity/getnowblock")["block_header"]["raw_data"]["number"]
        assert solid >= t.block_number
        if seen.state == STATE.STATE_CONFIRMING:
            assert seen.transfers[0].state == common_pb2.TRANSFER_STATE_INCLUDED and seen.amount_received == 0
        rest = httpx.get(f"{rig.edge.rest_url}/api/v1/payments/{p['paymentId']}", headers=auth, timeout=10)
        assert rest.json()["payment"]["state"] == "STATE_PAID"
        # The receiver got each state change once, signed, in sequence.
        events = wait_until(
            lambda: receiver.events(p["paymentId"]), lambda e: any(k == "payment.paid" for _, k in e)
        )
        seqs = [s for s, _ in events]
        assert seqs == sorted(set(seqs)) and seqs[0] == 1 and events[0][1] == "payment.created"
        assert receiver.inner.rejected == 0
    finally:
        receiver.close()


def test_under_over_partial_expired_and_late_payments(rig: Rig) -> None:
    stub = rig.stub()
    asset = common_pb2.ASSET_USDT
    under = create(stub, "shop-2", 10 * USDT, asset=asset, ttl=8)
    over = create(stub, "shop-2", 10 * USDT, asset=asset)
    partial = create(stub, "shop-2", 10 * USDT, asset=asset)
    expired = create(stub, "shop-2", 10 * USDT, asset=asset, ttl=3)
    late = create(stub, "shop-2", 10 * USDT, asset=asset, ttl=3)
    trx = create(stub, "shop-2", 25 * TRX, asset=common_pb2.ASSET_TRX)
    pay = rig.payer
    pay.usdt(under.deposit_address, 4 * USDT)
    pay.usdt(over.deposit_address, 15 * USDT)
    pay.usdt(partial.deposit_address, 4 * USDT)
    pay.trx(trx.deposit_address, 25 * TRX)
    assert wait_state(stub, over.payment_id, STATE.STATE_OVERPAID).amount_received == 15 * USDT
    assert wait_state(stub, trx.payment_id, STATE.STATE_PAID).amount_received == 25 * TRX
    half = wait_until(lambda: payment(stub, partial.payment_id), lambda p: p.amount_received == 4 * USDT)
    assert half.state == STATE.STATE_PENDING  # open until its time is up
    pay.usdt(partial.deposit_address, 6 * USDT)
    two = wait_state(stub, partial.payment_id, STATE.STATE_PAID)
    assert len(two.transfers) == 2 and two.amount_received == 10 * USDT
    assert wait_state(stub, expired.payment_id, STATE.STATE_EXPIRED).amount_received == 0
    assert wait_state(stub, under.payment_id, STATE.STATE_UNDERPAID).amount_received == 4 * USDT
    wait_state(stub, late.payment_id, STATE.STATE_EXPIRED)
    pay.usdt(late.deposit_address, 10 * USDT)
    done = wait_state(stub, late.payment_id, STATE.STATE_PAID_LATE)
    assert done.transfers[0].late and done.amount_received == 10 * USDT
    listed = rig.operator(roles=("operator",)).ListPayments(
        pb.ListPaymentsRequest(merchant_id="shop-2", page_size=2), timeout=10
    )
    assert len(listed.payments) == 2 and listed.next_page_token
    report = rig.operator(roles=("operator",)).GetPaymentReport(
        pb.GetPaymentReportRequest(merchant_id="shop-2"), timeout=30
    )
    (usdt,) = [r for r in report.rows if r.asset == common_pb2.ASSET_USDT]
    assert usdt.payment_count == 5 and usdt.received_amount == (4 + 15 + 10 + 10) * USDT
    assert dict(usdt.state_counts) == {
        "STATE_UNDERPAID": 1,
        "STATE_OVERPAID": 1,
        "STATE_PAID": 1,
        "STATE_EXPIRED": 1,
        "STATE_PAID_LATE": 1,
    }
    assert usdt.success_rate_bps == 6_000 and usdt.median_time_to_paid.seconds >= 0
    states = {p.payment_id: p.state for p in listed.payments}
    assert set(states) <= {
        under.payment_id,
        over.payment_id,
        partial.payment_id,
        expired.payment_id,
        late.payment_id,
        trx.payment_id,
    }


def test_a_fork_during_confirming_takes_the_payment_back(rig: Rig) -> None:
    stub = rig.stub()
    p = create(stub, "shop-3", 5 * USDT, asset=common_pb2.ASSET_USDT)
    to = hex_address(p.deposit_address)
    tx = rig.devnet.trc20_transfer_tx(rig.payer.account, rig.devnet.usdt_hex, to, 5 * USDT)
    rig.devnet.pause()
    try:
        assert rig.devnet.broadcast(tx).get("result")
        rig.devnet.mine(1)
        confirming = wait_state(stub, p.payment_id, STATE.STATE_CONFIRMING)
        assert confirming.transfers[0].state == common_pb2.TRANSFER_STATE_INCLUDED
        rig.devnet.fork(1)  # a branch without the transfer replaces its block
        back = wait_until(
            lambda: payment(stub, p.payment_id),
            lambda x: (
                x.state == STATE.STATE_PENDING and x.transfers[0].state == common_pb2.TRANSFER_STATE_REVERTED
            ),
        )
        assert back.amount_received == 0
        assert rig.devnet.broadcast(tx).get("result")  # the payer sends the same transaction again
    finally:
        rig.devnet.resume()
    paid = wait_state(stub, p.payment_id, STATE.STATE_PAID)
    assert paid.amount_received == 5 * USDT and paid.transfers[0].state == common_pb2.TRANSFER_STATE_FINAL


def test_money_no_open_payment_expects_lands_in_the_inbox_and_can_be_assigned(rig: Rig) -> None:
    stub, ops = rig.stub(), rig.operator(subject="olga", roles=("operator",))
    usdt_payment = create(stub, "shop-4", 3 * USDT, asset=common_pb2.ASSET_USDT)
    trx_payment = create(stub, "shop-4", 7 * TRX, asset=common_pb2.ASSET_TRX)
    txid = rig.payer.trx(usdt_payment.deposit_address, 7 * TRX)  # TRX to a USDT payment's address
    inbox = wait_until(
        lambda: ops.ListUnmatchedDeposits(pb.ListUnmatchedDepositsRequest(merchant_id="shop-4"), timeout=10),
        lambda r: any(
            d.transfer.txid == txid and d.transfer.state == common_pb2.TRANSFER_STATE_FINAL
            for d in r.deposits
        ),
    )
    (item,) = [d for d in inbox.deposits if d.transfer.txid == txid]
    assert item.reason == "ASSET_MISMATCH" and item.address_payment_id == usdt_payment.payment_id
    assert payment(stub, usdt_payment.payment_id).state == STATE.STATE_PENDING
    with pytest.raises(grpc.RpcError) as err:  # another asset than the deposit's
        ops.AssignDeposit(
            pb.AssignDepositRequest(
                request_id=rid(), txid=txid, event_index=-1, payment_id=usdt_payment.payment_id
            ),
            timeout=10,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assigned = ops.AssignDeposit(
        pb.AssignDepositRequest(
            request_id=rid(), txid=txid, event_index=-1, payment_id=trx_payment.payment_id
        ),
        timeout=10,
    ).payment
    assert assigned.state == STATE.STATE_PAID and assigned.amount_received == 7 * TRX
    left = ops.ListUnmatchedDeposits(pb.ListUnmatchedDepositsRequest(merchant_id="shop-4"), timeout=10)
    assert all(d.transfer.txid != txid for d in left.deposits)


def test_bad_requests_are_refused_with_field_violations(rig: Rig) -> None:
    auth = rig.edge.auth("operator", subject="alice")
    base = {"requestId": rid(), "merchantId": "shop-5", "orderId": "o", "asset": "ASSET_USDT", "amount": "5"}
    for change in ({"amount": "0"}, {"asset": "ASSET_TRC20"}, {"webhookUrl": "not a url"}):
        r = httpx.post(
            f"{rig.edge.rest_url}/api/v1/payments/process", json={**base, **change}, headers=auth, timeout=10
        )
        assert r.status_code == 400, (change, r.text)
    missing = httpx.get(f"{rig.edge.rest_url}/api/v1/payments/pay_nope", headers=auth, timeout=10)
    assert missing.status_code == 404
