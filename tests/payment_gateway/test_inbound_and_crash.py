"""The incoming webhook through Envoy (valid, unsigned, forged, replayed, naming a transaction that does not
exist), and kill -9 of the gateway while 100 payments are being paid: every payment ends in its right state,
no transfer counts twice, no webhook event is lost."""

from __future__ import annotations

import json
import time

import httpx
from tronpay.common.v1 import common_pb2
from tronpay.payment_gateway.v1 import payment_gateway_pb2 as pb

from services.payment_gateway.signing import signature_header
from tests.payment_gateway.conftest import INBOUND_SECRET, Rig
from tests.payment_gateway.support import STATE, USDT, Receiver, create, payment, wait_state, wait_until

WEBHOOK = "/api/v1/payments/webhook"


def post(rig: Rig, body: bytes, signature: str | None, source: str = "notifier") -> httpx.Response:
    headers = {**rig.edge.auth("service", subject="notifier-svc"), "content-type": "application/json"}
    if signature is not None:
        headers["x-tronpay-signature"] = signature
    return httpx.post(
        f"{rig.edge.rest_url}{WEBHOOK}?source={source}", content=body, headers=headers, timeout=30
    )


def test_the_incoming_webhook_is_verified_and_never_trusted(rig: Rig) -> None:
    p = create(rig.stub(), "shop-in", 6 * USDT, asset=common_pb2.ASSET_USDT)
    txid = rig.payer.usdt(p.deposit_address, 6 * USDT)
    rig.devnet.wait_for_tx(txid)
    body = json.dumps(
        {"event_id": "evt-1", "txid": txid, "address": p.deposit_address, "amount": "999"}
    ).encode()
    now = int(time.time())
    valid = signature_header([INBOUND_SECRET], now, body)
    assert post(rig, body, None).status_code == 401  # unsigned
    assert (
        post(rig, body, signature_header(["not-the-secret-at-all"], now, body)).status_code == 401
    )  # forged
    assert post(rig, body, signature_header([INBOUND_SECRET], now - 3600, body)).status_code == 401  # stale
    assert post(rig, body, valid, source="stranger").status_code == 401  # a source with no secret
    ok = post(rig, body, valid)
    assert ok.status_code == 200 and ok.json() == {"accepted": True, "eventId": "evt-1"}, ok.text
    assert post(rig, body, valid).status_code == 401  # the same signed message again: a replay
    again = post(rig, body, signature_header([INBOUND_SECRET], now + 1, body))  # re-signed: a duplicate
    assert again.status_code == 200 and again.json().get("accepted", False) is False
    # The amount it names is never used: the payment counts what the chain says.
    paid = wait_state(rig.stub(), p.payment_id, STATE.STATE_PAID)
    assert paid.amount_received == 6 * USDT
    missing = json.dumps({"event_id": "evt-2", "txid": "ab" * 32, "address": p.deposit_address}).encode()
    nope = post(rig, missing, signature_header([INBOUND_SECRET], now, missing))
    assert nope.status_code == 400 and "TRANSACTION_NOT_ON_CHAIN" in nope.text, nope.text
    garbage = b"not json"
    assert post(rig, garbage, signature_header([INBOUND_SECRET], now, garbage)).status_code == 400


def test_kill_9_while_100_payments_are_paid_loses_and_doubles_nothing(rig: Rig) -> None:
    receiver = Receiver("shop-k9")
    try:
        stub = rig.stub()
        payments = [
            create(stub, "shop-k9", (i + 1) * USDT, asset=common_pb2.ASSET_USDT, webhook_url=receiver.url)
            for i in range(100)
        ]
        gateway = rig.gateway
        for i, p in enumerate(payments):
            rig.payer.usdt(p.deposit_address, (i + 1) * USDT)
            if i in (30, 70):
                assert gateway.process is not None
                gateway.process.kill()  # kill -9, mid-stream
                gateway.process.wait()
                gateway.start()
        stub = rig.stub()
        done = {p.payment_id: wait_state(stub, p.payment_id, STATE.STATE_PAID, timeout=180) for p in payments}
        for i, p in enumerate(payments):
            got = done[p.payment_id]
            assert len(got.transfers) == 1 and got.amount_received == (i + 1) * USDT, got

        # Every event of every payment arrives (at least once; receivers dedupe by id and sequence).
        # An attempt the killed process had claimed is sent again once its lease (timeout + 30 s) runs out.
        def complete() -> bool:
            return all(
                {k for _, k in receiver.events(p.payment_id)} >= {"payment.created", "payment.paid"}
                and sorted({s for s, _ in receiver.events(p.payment_id)})
                == list(range(1, max(s for s, _ in receiver.events(p.payment_id)) + 1))
                for p in payments
            )

        wait_until(complete, bool, timeout=180)
        for p in payments:
            seqs = sorted({s for s, _ in receiver.events(p.payment_id)})
            assert seqs == list(range(1, len(seqs) + 1)), (p.payment_id, seqs)  # none missing
        deliveries = rig.operator(roles=("operator",)).ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(payment_id=payments[0].payment_id), timeout=10
        )
        assert {d.state for d in deliveries.deliveries} == {pb.WebhookDelivery.STATE_DELIVERED}
        assert payment(stub, payments[-1].payment_id).state == STATE.STATE_PAID
    finally:
        receiver.close()
