"""Refunds, sweeps and reconciliation on the devnet: refunds never exceed what was received, partial then
full, above the threshold only after two distinct approvers, confirmed on chain (tronpy reads the recipient);
a sweep moves a deposit address's USDT to the collection address and posts the journal; reconciliation is
clean after the flows and names the right kind for an injected discrepancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.payment_gateway.v1 import payment_gateway_pb2 as pb
from tronpy import Tron
from tronpy.providers import HTTPProvider

from tests.payment_gateway.conftest import REFUND_APPROVAL_THRESHOLD, SWEEP_MERCHANT, Rig
from tests.payment_gateway.support import (
    STATE,
    USDT,
    create,
    fresh_address,
    payment,
    rid,
    wait_state,
    wait_until,
)
from tests.payout_router.support import reason

REFUND = pb.Refund
DISCREPANCY = pb.Discrepancy


def usdt_balance(rig: Rig, address: str) -> int:
    client = Tron(HTTPProvider(rig.devnet.url))
    try:
        return int(client.get_contract(rig.devnet.usdt).functions.balanceOf(address))
    finally:
        client.provider.sess.close()


def refund(rig: Rig, payment_id: str, amount: int, to: str) -> pb.RefundPaymentResponse:
    req = pb.RefundPaymentRequest(
        request_id=rid(), payment_id=payment_id, amount=amount, to_address=to, reason="customer asked"
    )
    return rig.stub(subject="alice").RefundPayment(req, timeout=30)


def wait_refund(rig: Rig, payment_id: str, refund_id: str, state: int) -> pb.Refund:
    def get() -> pb.Refund:
        (r,) = [r for r in payment(rig.stub(), payment_id).refunds if r.refund_id == refund_id]
        return r

    return wait_until(get, lambda r: r.state in (state, REFUND.STATE_FAILED), timeout=90)


def test_refunds_partial_then_full_never_more_than_received(rig: Rig) -> None:
    stub = rig.stub()
    p = create(stub, "shop-r", 30 * USDT, asset=common_pb2.ASSET_USDT)
    rig.payer.usdt(p.deposit_address, 30 * USDT)
    wait_state(stub, p.payment_id, STATE.STATE_PAID)
    customer = fresh_address()
    with pytest.raises(grpc.RpcError) as over:
        refund(rig, p.payment_id, 31 * USDT, customer)
    assert (
        over.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(over.value) == "OVER_REFUNDABLE"
    )
    first = refund(rig, p.payment_id, 10 * USDT, customer)
    assert first.refund.state in (REFUND.STATE_PENDING, REFUND.STATE_SUBMITTED)
    done = wait_refund(rig, p.payment_id, first.refund.refund_id, REFUND.STATE_CONFIRMED)
    assert done.state == REFUND.STATE_CONFIRMED and done.txid
    assert usdt_balance(rig, customer) == 10 * USDT
    after = payment(stub, p.payment_id)
    assert after.state == STATE.STATE_PAID and after.amount_refunded == 10 * USDT
    rest = refund(rig, p.payment_id, 0, customer)  # 0: all that is left
    assert rest.refund.amount == 20 * USDT
    wait_refund(rig, p.payment_id, rest.refund.refund_id, REFUND.STATE_CONFIRMED)
    full = wait_state(stub, p.payment_id, STATE.STATE_REFUNDED)
    assert full.amount_refunded == 30 * USDT and usdt_balance(rig, customer) == 30 * USDT
    with pytest.raises(grpc.RpcError) as nothing:
        refund(rig, p.payment_id, 1, customer)
    assert reason(nothing.value) == "NOTHING_TO_REFUND"


def test_a_large_refund_waits_for_two_distinct_approvers(rig: Rig) -> None:
    stub = rig.stub()
    amount = REFUND_APPROVAL_THRESHOLD + 1 * USDT
    p = create(stub, "shop-r", amount, asset=common_pb2.ASSET_USDT)
    rig.payer.usdt(p.deposit_address, amount)
    wait_state(stub, p.payment_id, STATE.STATE_PAID)
    customer = fresh_address()
    r = refund(rig, p.payment_id, amount, customer).refund
    assert r.state == REFUND.STATE_PENDING and r.approvals_missing == 2 and r.initiator == "alice"

    def approve(subject: str) -> pb.Refund:
        req = pb.ApproveRefundRequest(request_id=rid(), refund_id=r.refund_id)
        return rig.operator(subject).ApproveRefund(req, timeout=30).refund

    with pytest.raises(grpc.RpcError) as initiator:
        approve("alice")
    assert reason(initiator.value) == "INITIATOR_CANNOT_APPROVE"
    once = approve("bob")
    assert once.state == REFUND.STATE_PENDING and once.approvals_missing == 1
    with pytest.raises(grpc.RpcError) as twice_by_one:
        approve("bob")
    assert reason(twice_by_one.value) == "ALREADY_APPROVED"
    assert usdt_balance(rig, customer) == 0
    twice = approve("carol")
    assert twice.approvers == ["bob", "carol"] and twice.state != REFUND.STATE_PENDING
    wait_refund(rig, p.payment_id, r.refund_id, REFUND.STATE_CONFIRMED)
    assert usdt_balance(rig, customer) == amount


def reconcile(rig: Rig, merchant: str) -> pb.GetReconciliationResponse:
    return rig.stub().GetReconciliation(pb.GetReconciliationRequest(merchant_id=merchant), timeout=60)


def covering(rig: Rig, merchant: str, block: int) -> pb.GetReconciliationResponse:
    """A reconciliation valid at `block` or later (detection saves how far it applied about every second)."""
    return wait_until(lambda: reconcile(rig, merchant), lambda r: r.block_number >= block)


def test_a_sweep_moves_deposits_to_the_collection_address_and_reconciles(rig: Rig) -> None:
    stub = rig.stub()
    payments = [create(stub, SWEEP_MERCHANT, 25 * USDT, asset=common_pb2.ASSET_USDT) for _ in range(2)]
    for p in payments:
        rig.payer.usdt(p.deposit_address, 25 * USDT)
    for p in payments:
        wait_state(stub, p.payment_id, STATE.STATE_PAID)
    ops = rig.operator(roles=("operator",))
    sweeps = wait_until(
        lambda: ops.ListSweeps(pb.ListSweepsRequest(merchant_id=SWEEP_MERCHANT), timeout=10).sweeps,
        lambda s: (
            len(s) >= 2 and all(x.state in (pb.Sweep.STATE_CONFIRMED, pb.Sweep.STATE_FAILED) for x in s)
        ),
        timeout=120,
    )
    assert {x.state for x in sweeps} == {pb.Sweep.STATE_CONFIRMED}, sweeps
    assert {x.from_address for x in sweeps} == {p.deposit_address for p in payments}
    assert all(
        x.to_address == rig.collection and x.amount == 25 * USDT and x.trigger == "THRESHOLD" for x in sweeps
    )
    assert {pid for x in sweeps for pid in x.payment_ids} == {p.payment_id for p in payments}
    assert usdt_balance(rig, rig.collection) == 50 * USDT
    inbox = ops.ListUnmatchedDeposits(pb.ListUnmatchedDepositsRequest(merchant_id=SWEEP_MERCHANT), timeout=10)
    assert list(inbox.deposits) == []  # the TRX top-ups for the sweeps' fees are not deposits
    assert all(usdt_balance(rig, p.deposit_address) == 0 for p in payments)
    paid_blocks = [payment(stub, p.payment_id).transfers[0].block_number for p in payments]
    clean = covering(rig, SWEEP_MERCHANT, max(paid_blocks))
    assert list(clean.discrepancies) == [] and clean.block_number > 0
    (usdt,) = [t for t in clean.totals if t.asset == common_pb2.ASSET_USDT]
    assert usdt.received_amount == 50 * USDT and usdt.chain_amount == 0


def test_reconciliation_names_injected_discrepancies(rig: Rig) -> None:
    stub = rig.stub()
    p = create(stub, "shop-x", 8 * USDT, asset=common_pb2.ASSET_USDT)
    txid = rig.payer.usdt(p.deposit_address, 8 * USDT)
    paid = wait_state(stub, p.payment_id, STATE.STATE_PAID)
    clean = covering(rig, "shop-x", paid.transfers[0].block_number)
    assert list(clean.discrepancies) == []
    db = rig.database()
    # A ledger entry deleted: the receipt is missing and the address's ledger balance is short.
    assert db["payment_gateway_journal"].delete_one({"txid": txid, "kind": "RECEIPT"}).deleted_count == 1
    kinds = {d.kind for d in reconcile(rig, "shop-x").discrepancies}
    assert kinds == {DISCREPANCY.KIND_LEDGER_MISMATCH}
    # A transfer the gateway never recorded (as if detection had missed it): on chain, not on the payment.
    db["payment_gateway_payments"].update_one({"_id": p.payment_id}, {"$set": {"transfers": []}})
    found = reconcile(rig, "shop-x").discrepancies
    assert {d.kind for d in found} >= {DISCREPANCY.KIND_UNRECORDED_ON_CHAIN, DISCREPANCY.KIND_STATE_MISMATCH}
    (unrecorded,) = [d for d in found if d.kind == DISCREPANCY.KIND_UNRECORDED_ON_CHAIN]
    assert (
        unrecorded.txid == txid
        and unrecorded.chain_amount == 8 * USDT
        and unrecorded.payment_id == p.payment_id
    )


def test_kill_9_during_refunds_refunds_each_once(rig: Rig) -> None:
    stub = rig.stub()
    p = create(stub, "shop-r9", 40 * USDT, asset=common_pb2.ASSET_USDT)
    rig.payer.usdt(p.deposit_address, 40 * USDT)
    wait_state(stub, p.payment_id, STATE.STATE_PAID)
    customer = fresh_address()
    requests = [
        pb.RefundPaymentRequest(
            request_id=rid(), payment_id=p.payment_id, amount=10 * USDT, to_address=customer
        )
        for _ in range(4)
    ]
    for req in requests[:2]:
        rig.stub(subject="alice").RefundPayment(req, timeout=30)
    gateway = rig.gateway
    assert gateway.process is not None
    gateway.process.kill()  # kill -9 with two refunds on their way and two not asked yet
    gateway.process.wait()
    gateway.start()
    refunds = [rig.stub(subject="alice").RefundPayment(req, timeout=30).refund for req in requests * 2]
    assert len({r.refund_id for r in refunds}) == 4  # a repeated request is the same refund
    for r in refunds[:4]:
        assert (
            wait_refund(rig, p.payment_id, r.refund_id, REFUND.STATE_CONFIRMED).state
            == REFUND.STATE_CONFIRMED
        )
    done = wait_state(stub, p.payment_id, STATE.STATE_REFUNDED)
    assert done.amount_refunded == 40 * USDT and len(done.refunds) == 4
    assert usdt_balance(rig, customer) == 40 * USDT  # tronpy: paid exactly once each


def test_kill_9_during_sweeps_sweeps_and_tops_up_once(rig: Rig) -> None:
    """kill -9 with sweeps under way (TRX top-ups for their fees, then the USDT): after a restart every
    deposit is swept once, the collection address gets exactly what was paid, and the ledger agrees with the
    chain (a top-up sent twice would leave TRX on a deposit address that no entry explains)."""
    stub, ops = rig.stub(), rig.operator(roles=("operator",))
    earlier: set[str] = set()  # the sweeps of other tests

    def sweeps() -> list[pb.Sweep]:
        listed = ops.ListSweeps(pb.ListSweepsRequest(merchant_id=SWEEP_MERCHANT, page_size=100), timeout=10)
        return [s for s in listed.sweeps if s.sweep_id not in earlier]

    earlier.update(s.sweep_id for s in sweeps())
    before = usdt_balance(rig, rig.collection)
    payments = [create(stub, SWEEP_MERCHANT, 30 * USDT, asset=common_pb2.ASSET_USDT) for _ in range(3)]
    for p in payments:
        rig.payer.usdt(p.deposit_address, 30 * USDT)
    for p in payments:
        wait_state(stub, p.payment_id, STATE.STATE_PAID)
    final = (pb.Sweep.STATE_CONFIRMED, pb.Sweep.STATE_FAILED)
    wait_until(sweeps, lambda s: any(x.state not in final for x in s), timeout=60)
    gateway = rig.gateway
    assert gateway.process is not None
    gateway.process.kill()  # kill -9 with sweeps on their way
    gateway.process.wait()
    gateway.start()
    done = wait_until(sweeps, lambda s: len(s) >= 3 and all(x.state in final for x in s), timeout=180)
    assert {x.state for x in done} == {pb.Sweep.STATE_CONFIRMED}, done
    assert sorted(x.from_address for x in done) == sorted(p.deposit_address for p in payments)
    assert usdt_balance(rig, rig.collection) - before == 90 * USDT
    assert all(usdt_balance(rig, p.deposit_address) == 0 for p in payments)
    paid_blocks = [payment(stub, p.payment_id).transfers[0].block_number for p in payments]
    swept = wait_until(
        lambda: covering(rig, SWEEP_MERCHANT, max(paid_blocks)),
        lambda r: not r.discrepancies,
        timeout=60,
    )
    assert list(swept.discrepancies) == []


def test_a_lock_left_by_a_crash_between_lock_and_sweep_does_not_block_the_address(rig: Rig) -> None:
    """The state kill -9 leaves between a sweep's lock and the sweep itself (the kill test above hits it only
    sometimes): a lock naming no sweep. Once it is old enough it goes, and the address is swept."""
    stub = rig.stub()
    p = create(stub, SWEEP_MERCHANT, 21 * USDT, asset=common_pb2.ASSET_USDT)
    rig.database()["payment_gateway_sweep_locks"].insert_one(
        {"_id": f"{p.deposit_address}:USDT", "sweep_id": "sw_never_inserted",
         "create_time": datetime.now(UTC) - timedelta(minutes=5)}
    )  # fmt: skip
    before = usdt_balance(rig, rig.collection)
    rig.payer.usdt(p.deposit_address, 21 * USDT)
    wait_state(stub, p.payment_id, STATE.STATE_PAID)
    ops = rig.operator(roles=("operator",))
    swept = wait_until(
        lambda: [
            s
            for s in ops.ListSweeps(pb.ListSweepsRequest(merchant_id=SWEEP_MERCHANT), timeout=10).sweeps
            if s.from_address == p.deposit_address
        ],
        lambda s: any(x.state == pb.Sweep.STATE_CONFIRMED for x in s),
        timeout=120,
    )
    assert [x.state for x in swept] == [pb.Sweep.STATE_CONFIRMED]
    assert usdt_balance(rig, rig.collection) - before == 21 * USDT
