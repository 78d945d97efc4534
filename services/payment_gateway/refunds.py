"""Refunds: never more than a payment received minus what earlier refunds hold, each sent once.

A refund is a document of its own (`refunds`, id from the request id) and a hold on its payment
(`refund_holds[refund id]`, written with the payment's guard), so two concurrent refunds can never together
exceed what was received: the second one's hold fails the guard's re-check. The order of writes makes a crash
harmless: the refund document first (PENDING, not held), then the hold, then `held` on the refund; the
driver finishes a hold a crash interrupted (or fails the refund if the money is no longer there). A refund is
sent (services.payment_gateway.sending, keyed by the refund id) only once it is held and approved; its state
follows its transfer; a FAILED refund releases its hold, a CONFIRMED one confirms it (and the payment becomes
REFUNDED once confirmed refunds cover what it received) and posts its journal entry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.common import context, errors
from services.common.background import BackgroundLoop
from services.common.chain_ops import PeerReads, operation_id
from services.common.logging import get_logger
from services.common.mongo import Document, IndexSpec
from services.common.server import Runtime
from services.payment_gateway import metrics
from services.payment_gateway.journal import Journal, line
from services.payment_gateway.payments import USDT, Payments, refundable
from services.payment_gateway.sending import CONFIRMED, FAILED, SUBMITTED, Sender
from services.payment_gateway.settings import PaymentGatewaySettings

log = get_logger(__name__)

REFUNDS = "refunds"
PENDING = "PENDING"
INDEXES = (IndexSpec(REFUNDS, [("state", 1)]),)


def _now() -> datetime:
    return datetime.now(UTC)


def _refused(reason: str, message: str, **metadata: object) -> errors.FailedPrecondition:
    return errors.FailedPrecondition(
        message, reason=reason, metadata={k: str(v) for k, v in metadata.items()}
    )


class Refunds(BackgroundLoop):
    """Creating, approving and driving refunds."""

    def __init__(
        self, rt: Runtime[PaymentGatewaySettings], payments: Payments, journal: Journal, sender: Sender
    ) -> None:
        self._settings = rt.settings
        self._payments = payments
        self._journal = journal
        self._sender = sender
        self._reads = PeerReads(rt.clients)
        self.refunds = rt.db.collection(REFUNDS)
        self._kick = asyncio.Event()

    # ---- reads ------------------------------------------------------------------------------------
    async def get(self, rid: str) -> Document:
        doc = await self.refunds.find_one({"_id": rid})
        tenant = context.tenant_scope()
        if doc is None or (tenant is not None and doc.get("tenant") != tenant):
            raise errors.NotFound("refund not found", reason="REFUND_NOT_FOUND", metadata={"refund_id": rid})
        return doc

    async def of_payment(self, payment: Document) -> list[Document]:
        ids = sorted(payment.get("refund_holds", {}))
        return (
            [d async for d in self.refunds.find({"_id": {"$in": ids}}).sort("create_time", 1)] if ids else []
        )

    # ---- creating ---------------------------------------------------------------------------------
    async def create(
        self, request_id: str, fingerprint: str, pid: str, amount: int, to: str, reason: str
    ) -> Document:
        """A refund of `amount` (0: all that is left) of payment `pid` to `to`; sent at once unless it waits
        for approvals."""
        rid = operation_id("rf", request_id)
        if (existing := await self.refunds.find_one({"_id": rid})) is not None:
            if existing["fingerprint"] != fingerprint:
                raise _refused("REQUEST_ID_REUSED", "request_id was already used for a different refund")
            return existing
        payment = await self._payments.get(pid)
        left = refundable(payment)
        amount = amount or left
        if left <= 0:
            raise _refused("NOTHING_TO_REFUND", "the payment has nothing left to refund", payment_id=pid)
        if amount > left:
            raise _refused(
                "OVER_REFUNDABLE",
                "the amount is more than received minus refunded",
                payment_id=pid,
                refundable=left,
            )
        wallet_id = self._settings.PAYMENT_REFUND_WALLET_ID
        if not wallet_id:
            raise _refused(
                "REFUND_WALLET_NOT_CONFIGURED", "no refund wallet is configured (PAYMENT_REFUND_WALLET_ID)"
            )
        wallet = await self._reads.signing_wallet(wallet_id, _refused)
        s = self._settings
        threshold = (
            s.PAYMENT_REFUND_APPROVAL_THRESHOLD_USDT
            if payment["asset"] == USDT
            else s.PAYMENT_REFUND_APPROVAL_THRESHOLD_TRX
        )
        ctx = context.current()
        now = _now()
        doc: Document = {
            "_id": rid,
            "request_id": request_id,
            "fingerprint": fingerprint,
            "payment_id": pid,
            "merchant_id": payment["merchant_id"],
            "tenant": payment["tenant"],
            "asset": payment["asset"],
            "token": payment.get("token", ""),
            "amount": amount,
            "to": to,
            "reason": reason,
            "wallet_id": wallet_id,
            "from": wallet.address,
            "state": PENDING,
            "held": False,
            "required_approvals": s.PAYMENT_REFUND_REQUIRED_APPROVALS
            if threshold and amount >= threshold
            else 0,
            "approvers": [],
            "initiator": ctx.subject if ctx else "",
            "handle": "",
            "txid": "",
            "fee_sun": 0,
            "failure_reason": "",
            "create_time": now,
            "update_time": now,
        }
        try:
            await self.refunds.insert_one(doc)
        except DuplicateKeyError:  # the same request, concurrently
            return await self.get(rid)
        metrics.REFUNDS.labels(doc["asset"], PENDING).inc()
        doc = await self._hold(doc)
        if doc["state"] == FAILED:
            raise _refused(
                doc["failure_reason"], "the amount is more than received minus refunded", payment_id=pid
            )
        return await self._advance(doc)

    async def _hold(self, doc: Document) -> Document:
        """Hold the amount on the payment (once), then mark the refund held; FAILED if it no longer fits."""
        rid, amount = doc["_id"], int(doc["amount"])
        fits = True

        def hold(p: Document) -> Document | None:
            nonlocal fits
            if rid in p.get("refund_holds", {}):
                return None
            if refundable(p) < amount:
                fits = False
                return None
            return {
                "refund_holds": {**p.get("refund_holds", {}), rid: {"amount": amount, "confirmed": False}}
            }

        await self._payments.change(doc["payment_id"], hold, event="payment.refund_pending")
        if not fits:
            return await self._move(doc, FAILED, failure_reason="OVER_REFUNDABLE")
        held = await self.refunds.find_one_and_update(
            {"_id": rid, "held": False},
            {"$set": {"held": True, "update_time": _now()}},
            return_document=ReturnDocument.AFTER,
        )
        return held or await self.get(rid)

    # ---- approving --------------------------------------------------------------------------------
    async def approve(self, rid: str) -> Document:
        ctx = context.current()
        subject = ctx.subject if ctx else ""
        doc = await self.get(rid)
        if not subject:
            raise errors.PermissionDenied("an approval needs an authenticated subject", reason="NO_SUBJECT")
        if doc["state"] != PENDING or not doc["required_approvals"]:
            raise _refused("NOT_AWAITING_APPROVAL", "the refund waits for no approval", refund_id=rid)
        if subject == doc["initiator"]:
            raise _refused(
                "INITIATOR_CANNOT_APPROVE", "the refund's initiator cannot approve it", refund_id=rid
            )
        if subject in doc["approvers"]:
            raise _refused("ALREADY_APPROVED", "this subject approved the refund already", refund_id=rid)
        new = await self.refunds.find_one_and_update(
            {"_id": rid, "state": PENDING, "approvers": {"$ne": subject}},
            {"$push": {"approvers": subject}, "$set": {"update_time": _now()}},
            return_document=ReturnDocument.AFTER,
        )
        if new is None:
            return await self.approve(rid)  # moved meanwhile: answer from the new state
        return await self._advance(new)

    # ---- driving ----------------------------------------------------------------------------------
    async def _advance(self, doc: Document) -> Document:
        """One step: send a held, approved refund; follow a submitted one."""
        if doc["state"] == PENDING and not doc["held"]:
            return await self._hold(doc)
        if doc["state"] == PENDING and len(doc["approvers"]) >= doc["required_approvals"]:
            sent = await self._sender.send(
                doc["_id"],
                asset=doc["asset"],
                token=doc["token"],
                wallet_id=doc["wallet_id"],
                from_address=doc["from"],
                to=doc["to"],
                amount=int(doc["amount"]),
            )
            if sent.state == FAILED:
                return await self._failed(doc, sent.reason)
            doc = await self._move(doc, SUBMITTED, handle=sent.handle, txid=sent.txid)
        if doc["state"] == SUBMITTED:
            sent = await self._sender.status(doc["asset"], doc["handle"])
            if sent.txid != doc["txid"]:
                doc = await self._move(doc, SUBMITTED, txid=sent.txid)
            if sent.state == CONFIRMED:
                return await self._confirmed(doc, sent.fee_sun)
            if sent.state == FAILED:
                return await self._failed(doc, sent.reason)
        return doc

    async def _move(self, doc: Document, state: str, **fields: Any) -> Document:
        new = await self.refunds.find_one_and_update(
            {"_id": doc["_id"], "state": doc["state"]},
            {"$set": {"state": state, **fields, "update_time": _now()}},
            return_document=ReturnDocument.AFTER,
        )
        if new is None:
            return await self.get(doc["_id"])
        if state != doc["state"]:
            metrics.REFUNDS.labels(doc["asset"], state).inc()
        return new

    async def _failed(self, doc: Document, reason: str) -> Document:
        doc = await self._move(doc, FAILED, failure_reason=reason)
        rid = doc["_id"]

        def release(p: Document) -> Document | None:
            holds = p.get("refund_holds", {})
            return {"refund_holds": {k: v for k, v in holds.items() if k != rid}} if rid in holds else None

        await self._payments.change(doc["payment_id"], release, event="payment.refund_failed")
        return doc

    async def _confirmed(self, doc: Document, fee_sun: int) -> Document:
        rid, amount, m = doc["_id"], int(doc["amount"]), doc["merchant_id"]
        await self._journal.post(
            f"je_rfnd_{rid}",
            "REFUND",
            m,
            doc["asset"],
            [line(f"merchant:{m}", debit=amount), line(f"hot:{doc['from']}", credit=amount)],
            payment_id=doc["payment_id"],
            txid=doc["txid"],
            ref=rid,
        )
        if fee_sun:
            await self._journal.post(
                f"je_rfee_{rid}",
                "FEE",
                m,
                "TRX",
                [line(f"fees:{m}", debit=fee_sun), line(f"hot:{doc['from']}", credit=fee_sun)],
                payment_id=doc["payment_id"],
                txid=doc["txid"],
                ref=rid,
            )

        def confirm(p: Document) -> Document | None:
            holds = p.get("refund_holds", {})
            if rid not in holds or holds[rid]["confirmed"]:
                return None
            return {"refund_holds": {**holds, rid: {"amount": amount, "confirmed": True}}}

        await self._payments.change(doc["payment_id"], confirm, event="payment.refund_confirmed")
        return await self._move(doc, CONFIRMED, fee_sun=fee_sun)

    async def run(self) -> None:
        while True:
            try:
                async for doc in self.refunds.find({"state": {"$in": [PENDING, SUBMITTED]}}):
                    await self._advance(doc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a peer or Mongo out of reach: the next pass retries
                log.warning("refund step failed", extra={"fields": {"error": str(exc)}})
            await asyncio.sleep(self._settings.PAYMENT_POLL_SECONDS)
