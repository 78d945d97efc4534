"""Rules checked before anything is signed, approvals and cancellation, against the real services, devnet and
Envoy: every refusal names its rule (ErrorInfo reason), stores no payout and pays nothing (tronpy sees the
recipient's balance unchanged)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.payout_router.v1 import payout_router_pb2 as pb
from tronpay.payout_router.v1 import payout_router_pb2_grpc as pb_grpc

from tests.edge.http import Reply, call
from tests.harness.services import ServiceProcess
from tests.payout_router.conftest import APPROVAL_THRESHOLD, PER_TX, RECIPIENT_DAILY_LIMIT, SERVICES, Rig, env
from tests.payout_router.support import STATE, USDT, fresh_address, payout_of, reason, rid, wait_final


def rest(rig: Rig, method: str, path: str, body: dict[str, Any] | None = None, **token: Any) -> Reply:
    roles = token.pop("roles", ("operator",))
    return call(rig.edge.rest_url, method, path, body=body, headers=rig.edge.auth(*roles, **token))


def error_reason(reply: Reply) -> str:
    (info,) = [d for d in reply.json()["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    return str(info["reason"])


def initiate(rig: Rig, to: str, amount: int, **extra: Any) -> Reply:
    body = {
        "requestId": rid(),
        "walletId": rig.disburser.wallet_id,
        "recipientAddress": to,
        "asset": "ASSET_USDT",
        "amount": str(amount),
        **extra,
    }
    return rest(rig, "POST", "/api/v1/payouts/initiate", body, subject="alice")


def nothing_for(rig: Rig, to: str) -> None:
    """No payout stored for `to`, and its USDT balance is still 0."""
    history = rest(rig, "GET", f"/api/v1/payouts/history?recipientAddress={to}")
    assert history.status == 200 and history.json().get("payouts", []) == []
    assert rig.chain.balance(to) == 0


def approve(stub: pb_grpc.PayoutRouterServiceStub, payout_id: str, approver: str) -> pb.Payout:
    req = pb.ApprovePayoutRequest(request_id=rid(), payout_id=payout_id, approver_id=approver, comment="ok")
    return stub.ApprovePayout(req, timeout=10).payout


def test_above_the_threshold_waits_for_two_distinct_approvers_never_the_initiator(rig: Rig) -> None:
    to = fresh_address()
    created = initiate(rig, to, APPROVAL_THRESHOLD + 5 * USDT)
    assert created.status == 200, created.body
    payout = created.json()["payout"]
    assert payout["state"] == "STATE_PENDING" and payout["requiredApprovals"] == 2
    pid = payout["payoutId"]

    with pytest.raises(grpc.RpcError) as own:  # the initiator (token subject "alice") cannot approve
        approve(rig.stubs.operator(subject="alice"), pid, "alice")
    assert (
        own.value.code() == grpc.StatusCode.PERMISSION_DENIED
        and reason(own.value) == "INITIATOR_CANNOT_APPROVE"
    )
    with pytest.raises(grpc.RpcError) as other:  # the approver id is the authenticated subject, nothing else
        approve(rig.stubs.operator(subject="bob"), pid, "carol")
    assert reason(other.value) == "APPROVER_NOT_CALLER"
    with pytest.raises(grpc.RpcError) as role:  # an operator without the approver role
        approve(rig.stubs.operator(subject="dave", roles=("operator",)), pid, "dave")
    assert reason(role.value) == "NOT_AN_APPROVER"

    first = approve(rig.stubs.operator(subject="bob"), pid, "bob")
    assert first.state == STATE.STATE_PENDING and [a.approver_id for a in first.approvals] == ["bob"]
    with pytest.raises(grpc.RpcError) as twice:
        approve(rig.stubs.operator(subject="bob"), pid, "bob")
    assert twice.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert payout_of(rig.stubs.payouts(), pid).state == STATE.STATE_PENDING
    assert rig.chain.balance(to) == 0  # nothing is sent while approvals are missing

    second = approve(rig.stubs.operator(subject="carol"), pid, "carol")
    assert second.state in (STATE.STATE_APPROVED, STATE.STATE_SUBMITTED)
    done = wait_final(rig.stubs.payouts(), [pid])[pid]
    assert done.state == STATE.STATE_CONFIRMED, done.failure_reason
    assert [a.approver_id for a in done.approvals] == ["bob", "carol"]
    assert rig.chain.balance(to) == APPROVAL_THRESHOLD + 5 * USDT


def test_below_the_threshold_goes_straight_through(rig: Rig) -> None:
    to = fresh_address()
    created = initiate(rig, to, APPROVAL_THRESHOLD - 1)
    assert created.status == 200 and created.json()["payout"]["state"] == "STATE_APPROVED"
    assert created.json()["payout"]["requiredApprovals"] == 0
    pid = created.json()["payout"]["payoutId"]
    assert wait_final(rig.stubs.payouts(), [pid])[pid].state == STATE.STATE_CONFIRMED
    assert rig.chain.balance(to) == APPROVAL_THRESHOLD - 1


def test_cancel_before_submission_works_and_after_is_refused(rig: Rig) -> None:
    to = fresh_address()
    pending = initiate(rig, to, APPROVAL_THRESHOLD).json()["payout"]
    cancel = {"requestId": rid(), "payoutId": pending["payoutId"], "reason": "duplicate invoice"}
    cancelled = rest(rig, "POST", "/api/v1/payouts/cancel", cancel, roles=("approver",))
    assert cancelled.status == 200, cancelled.body
    assert cancelled.json()["payout"]["state"] == "STATE_CANCELLED"
    assert cancelled.json()["payout"]["failureReason"] == "duplicate invoice"
    with pytest.raises(grpc.RpcError) as late:  # an approval after cancellation changes nothing
        approve(rig.stubs.operator(subject="bob"), pending["payoutId"], "bob")
    assert (
        late.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        and reason(late.value) == "PAYOUT_NOT_PENDING"
    )
    assert payout_of(rig.stubs.payouts(), pending["payoutId"]).txid == ""

    sent = initiate(rig, fresh_address(), 2 * USDT).json()["payout"]
    wait_final(rig.stubs.payouts(), [sent["payoutId"]])
    refused = rest(rig, "POST", "/api/v1/payouts/cancel", {"requestId": rid(), "payoutId": sent["payoutId"]})
    assert refused.status == 400 and error_reason(refused) == "PAYOUT_ALREADY_SUBMITTED"
    missing = rest(rig, "POST", "/api/v1/payouts/cancel", {"requestId": rid(), "payoutId": "po_nothing"})
    assert missing.status == 404
    assert rig.chain.balance(to) == 0


def test_blacklisted_recipient_is_refused(rig: Rig) -> None:
    to = fresh_address()
    rig.chain.send(rig.chain.usdt, rig.chain.usdt_owner, "addBlackList", to)
    bad = initiate(rig, to, 3 * USDT)
    assert bad.status == 400 and error_reason(bad) == "RECIPIENT_BLACKLISTED"
    batch = {
        "requestId": rid(),
        "walletId": rig.disburser.wallet_id,
        "asset": "ASSET_USDT",
        "items": [
            {"recipientAddress": fresh_address(), "amount": "1"},
            {"recipientAddress": to, "amount": "1"},
        ],
    }
    refused = rest(rig, "POST", "/api/v1/payouts/batch", batch)
    assert refused.status == 400 and error_reason(refused) == "RECIPIENT_BLACKLISTED"
    assert refused.json()["details"][0]["metadata"]["item"] == "1"
    nothing_for(rig, to)


def test_over_the_router_limit_and_velocity_are_refused(rig: Rig) -> None:
    to = fresh_address()
    over = initiate(rig, to, PER_TX + 1)
    assert over.status == 400 and error_reason(over) == "OVER_ROUTER_PER_TX_LIMIT"
    nothing_for(rig, to)
    # Velocity: one recipient, at most RECIPIENT_DAILY_LIMIT per 24 h (payouts in flight count).
    first = initiate(rig, to, RECIPIENT_DAILY_LIMIT - 1_000 * USDT)
    assert first.status == 200
    second = initiate(rig, to, 1_000 * USDT + 1)
    assert second.status == 400 and error_reason(second) == "VELOCITY_RECIPIENT_LIMIT"
    rest(
        rig,
        "POST",
        "/api/v1/payouts/cancel",
        {"requestId": rid(), "payoutId": first.json()["payout"]["payoutId"]},
    )
    # Bad input is INVALID_ARGUMENT with the field named.
    bad = initiate(rig, "T" + "1" * 33, 1)
    assert bad.status == 400 and error_reason(bad) in ("INVALID_ADDRESS", "INVALID_ARGUMENT")


def test_concurrent_requests_never_pass_a_velocity_limit_together(rig: Rig) -> None:
    """Eight requests at once, each 60% of a recipient's daily limit: at most one passes (each request's sums
    count the others' stored payouts), the refused leave nothing, and what still fits passes afterwards."""
    to = fresh_address()
    amount = RECIPIENT_DAILY_LIMIT * 6 // 10
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: initiate(rig, to, amount), range(8)))
    passed = [r for r in replies if r.status == 200]
    assert len(passed) <= 1, [r.status for r in replies]
    assert {error_reason(r) for r in replies if r.status != 200} == {"VELOCITY_RECIPIENT_LIMIT"}
    history = rest(rig, "GET", f"/api/v1/payouts/history?recipientAddress={to}")
    assert len(history.json().get("payouts", [])) == len(passed)
    rest_of_day = initiate(rig, to, RECIPIENT_DAILY_LIMIT - amount * len(passed))
    assert rest_of_day.status == 200, rest_of_day.body
    over = initiate(rig, to, 1)
    assert over.status == 400 and error_reason(over) == "VELOCITY_RECIPIENT_LIMIT"


def test_paused_router_refuses(rig: Rig) -> None:
    to = fresh_address()
    rig.chain.send(rig.router, rig.admin, "pause")
    try:
        refused = initiate(rig, to, 1 * USDT)
        assert refused.status == 400 and error_reason(refused) == "ROUTER_PAUSED"
    finally:
        rig.chain.send(rig.router, rig.admin, "unpause")
    nothing_for(rig, to)


@pytest.fixture
def cooling_router(rig: Rig) -> Iterator[ServiceProcess]:
    """A second payout-router (own database) with a one-hour cooling-off, on the rig's other services."""
    ports = {f"{n.upper()}_PORT": str(rig.cluster[n].port) for n in SERVICES if n != "payout_router"}
    extra = env(rig.devnet, rig.router.contract_address, PAYOUT_COOLING_OFF_SECONDS="3600", **ports)
    cluster = rig.factory.start("payout_router", node_url=rig.devnet.url, env=extra)
    yield cluster["payout_router"]
    cluster.stop()


def test_cooling_off_refuses_a_recipient_never_paid_before(rig: Rig, cooling_router: ServiceProcess) -> None:
    stub = rig.stubs.payouts(cooling_router)
    to = fresh_address()
    for _ in range(2):  # the first request starts the clock; asking again does not restart or skip it
        req = pb.InitiatePayoutRequest(
            request_id=rid(),
            wallet_id=rig.disburser.wallet_id,
            recipient_address=to,
            asset=common_pb2.ASSET_USDT,
            amount=USDT,
        )
        with pytest.raises(grpc.RpcError) as refused:
            stub.InitiatePayout(req, timeout=20)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(refused.value) == "COOLING_OFF"
    listed = stub.ListPayouts(pb.ListPayoutsRequest(recipient_address=to), timeout=10)
    assert list(listed.payouts) == [] and rig.chain.balance(to) == 0
