"""Wiring of payment-gateway: its servicer, settings, the background jobs (detection, expiry, refunds,
sweeps, reconciliation, the webhook relay and deliveries; each from start-up to shutdown) and the indexes its
collections need."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.chain_ops import indexes as lifecycle_indexes
from services.common.server import Runtime, ServiceSpec
from services.common.settings import ServiceName
from services.payment_gateway import journal, payments, refunds, sweeps, webhooks
from services.payment_gateway.detection import Detection
from services.payment_gateway.journal import Journal
from services.payment_gateway.ledger import Ledger
from services.payment_gateway.payments import Payments
from services.payment_gateway.refunds import Refunds
from services.payment_gateway.sending import TRX_SENDS, Sender
from services.payment_gateway.servicer import PaymentGatewayServicer
from services.payment_gateway.settings import PaymentGatewaySettings
from services.payment_gateway.sweeps import Sweeps
from services.payment_gateway.webhooks import Webhooks


async def build(rt: Runtime[PaymentGatewaySettings]) -> Sequence[object]:
    """The servicer of tronpay.payment_gateway.v1, with its jobs started."""
    book = Journal(rt)
    records = Payments(rt, book)
    sender = Sender(rt)
    hooks = Webhooks(rt.db, rt.settings)
    records.on_event = hooks.wake
    refunder = Refunds(rt, records, book, sender)
    sweeper = Sweeps(rt, book, sender)
    ledger = Ledger(rt, records, book)
    detection = Detection(rt, records)
    jobs = (sender.ops, hooks, records, detection, refunder, sweeper, ledger)
    for job in jobs:
        job.start()
        rt.on_stop(job.stop)
    return [PaymentGatewayServicer(rt, records, refunder, ledger, hooks, sweeper)]


INDEXES = (
    *payments.INDEXES,
    *journal.INDEXES,
    *refunds.INDEXES,
    *sweeps.INDEXES,
    *webhooks.INDEXES,
    *lifecycle_indexes(TRX_SENDS),
)
SERVICE = ServiceSpec(ServiceName.PAYMENT_GATEWAY, PaymentGatewaySettings, build, INDEXES)
