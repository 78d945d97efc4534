"""Payments: the records, their deposit addresses, and every change of their state.

One document per payment (`payments`), created once: its id derives from (merchant, order id), so a second
request for the same order can never make a second payment. Its deposit address is derived by wallet-manager
(one HD account per merchant, watched by tron-client for this service) before the document is inserted, with
a request id of the payment's own, so a retried creation gets the same address. `addresses` maps each deposit
address to its payment (FerretDB finds documents by `_id` only, so that is the lookup detection uses).

Every change is one guarded write of the whole payment (`version`): the transfers it holds (keyed by transfer
id, each with the stream cursor of its last event, so an event applied again changes nothing), the state
recomputed from them (services.payment_gateway.state), and, when the state moved, the next event for the
webhook outbox (`seq`, `events`, `relay_pending`: services.payment_gateway.webhooks turns them into
deliveries) — so a state change and its event are written together or not at all."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as wm_grpc

from services.common import context, errors
from services.common.background import BackgroundLoop
from services.common.chain_ops import PeerReads, upstream_error
from services.common.logging import get_logger
from services.common.mongo import Document, IndexSpec
from services.common.pagination import NEWEST_FIRST, newest_first
from services.common.server import Runtime
from services.common.settings import ServiceName
from services.payment_gateway import metrics
from services.payment_gateway import state as st
from services.payment_gateway.journal import Journal
from services.payment_gateway.settings import PaymentGatewaySettings

log = get_logger(__name__)

PAYMENTS, ADDRESSES, UNMATCHED = "payments", "addresses", "unmatched"
WATCHER = "payment-gateway"  # tron-client watch list of the deposit addresses
USDT, TRX = "USDT", "TRX"
TRANSFER_STATE = {
    common_pb2.TRANSFER_STATE_INCLUDED: st.INCLUDED,
    common_pb2.TRANSFER_STATE_FINAL: st.FINAL,
    common_pb2.TRANSFER_STATE_REVERTED: st.REVERTED,
}
INDEXES = (
    IndexSpec(PAYMENTS, [("merchant_id", 1), ("order_id", 1)], unique=True),
    IndexSpec(PAYMENTS, [("open", 1), ("expire_at", 1)]),
    IndexSpec(PAYMENTS, [("create_time", -1), ("_id", -1)]),
    IndexSpec(UNMATCHED, [("create_time", -1), ("_id", -1)]),
)
UPDATE_RETRIES = 32
STATE_COUNT_SECONDS = 30.0  # how often the payments-by-state gauge is recounted
EXPIRY_SCAN_SECONDS = 30.0  # how often every open payment's expiry is read again (other replicas', restarts)


def _now() -> datetime:
    return datetime.now(UTC)


def payment_id_of(merchant_id: str, order_id: str, request_id: str) -> str:
    """A payment's id: from (merchant, order id), or from the request id for a payment without an order id."""
    key = f"order\0{merchant_id}\0{order_id}" if order_id else f"request\0{merchant_id}\0{request_id}"
    return "pay_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def transfer_id(txid: str, event_index: int) -> str:
    """tron-client's stable transfer id."""
    return f"{txid}:{event_index}"


def event_data(doc: Mapping[str, Any]) -> Document:
    """What a webhook event says about the payment (amounts as strings, like the REST API's int64)."""
    return {
        "payment_id": doc["_id"],
        "merchant_id": doc["merchant_id"],
        "order_id": doc["order_id"],
        "state": doc["state"],
        "asset": doc["asset"],
        "amount": str(doc["amount"]),
        "amount_received": str(doc.get("received", 0)),
        "amount_refunded": str(doc.get("refunded", 0)),
        "deposit_address": doc["deposit_address"],
        "metadata": dict(doc.get("metadata", {})),
    }


def with_event(doc: Document, changes: Document, event_type: str, at: datetime) -> Document:
    """`changes` plus the next event of the payment (written in the same guarded update)."""
    seq = int(doc.get("seq", 0)) + 1
    merged = {**doc, **changes}
    event = {"seq": seq, "type": event_type, "at": at, "data": event_data(merged)}
    return {**changes, "seq": seq, "events": [*doc.get("events", []), event], "relay_pending": True}


class Payments(BackgroundLoop):
    """Payment records: creation, reads, and the guarded state changes detection and refunds make."""

    def __init__(self, rt: Runtime[PaymentGatewaySettings], journal: Journal) -> None:
        self._settings = rt.settings
        self._journal = journal
        self._clients = rt.clients
        self._fee_address = ""  # the sweeps' TRX top-ups come from it (not deposits)
        self.payments = rt.db.collection(PAYMENTS)
        self.addresses = rt.db.collection(ADDRESSES)
        self.unmatched = rt.db.collection(UNMATCHED)
        self.policy = journal.policy
        self.on_event: Callable[[str], None] = lambda pid: None  # the webhook relay's wake-up
        self._expiring: list[tuple[datetime, str]] = []  # (expire_at, payment id), a heap
        self._queued: set[str] = set()
        self._scan_at = 0.0

    @property
    def _wallets(self) -> wm_grpc.WalletManagerServiceStub:
        return self._clients.stub(ServiceName.WALLET_MANAGER, wm_grpc.WalletManagerServiceStub)

    # ---- creating ---------------------------------------------------------------------------------
    async def create(self, fields: Document, ttl: timedelta) -> Document:
        """Create a payment (fields: request_id, merchant_id, order_id, asset, token, amount, description,
        webhook_url, metadata); the existing one when the same request created it already."""
        merchant = fields["merchant_id"]
        tenant = context.tenant_scope()
        if tenant is not None and merchant != tenant:
            raise errors.PermissionDenied(
                "a token of one tenant creates payments for that merchant only",
                reason="MERCHANT_NOT_IN_TENANT",
                metadata={"merchant_id": merchant},
            )
        pid = payment_id_of(merchant, fields["order_id"], fields["request_id"])
        existing = await self.payments.find_one({"_id": pid})
        if existing is not None:
            return self._same_request(existing, fields)
        derived = await self._derive(pid, merchant)
        now = _now()
        doc: Document = {
            "_id": pid,
            **fields,
            "tenant": tenant or merchant,
            "deposit_address": derived.address,
            "wallet_id": derived.wallet_id,
            "derivation_path": derived.derivation_path,
            "state": st.PENDING,
            "open": True,
            "received": 0,
            "confirming": 0,
            "refunded": 0,
            "reserved": 0,
            "transfers": [],
            "refund_holds": {},
            "expire_at": now + ttl,
            "create_time": now,
            "update_time": now,
            "version": 0,
            "seq": 0,
            "events": [],
            "relay_pending": False,
            "relayed_seq": 0,
        }
        doc.update(with_event(doc, {}, "payment.created", now))
        with contextlib.suppress(DuplicateKeyError):  # a retry of a creation that got this far
            await self.addresses.insert_one(
                {"_id": derived.address, "payment_id": pid, "merchant_id": merchant, "asset": fields["asset"]}
            )
        try:
            await self.payments.insert_one(doc)
        except DuplicateKeyError:
            # The same id (a concurrent retry) or the same (merchant, order id) under another id.
            existing = await self.payments.find_one({"_id": pid})
            if existing is None:
                raise self._order_exists(merchant, fields["order_id"]) from None
            return self._same_request(existing, fields)
        metrics.PAYMENTS_CREATED.labels(fields["asset"]).inc()
        self.expires(pid, doc["expire_at"])
        self.on_event(pid)
        return doc

    def _same_request(self, existing: Document, fields: Document) -> Document:
        if existing["request_id"] != fields["request_id"]:
            raise self._order_exists(existing["merchant_id"], existing["order_id"], existing["_id"])
        return existing

    @staticmethod
    def _order_exists(merchant: str, order_id: str, pid: str = "") -> errors.AlreadyExists:
        return errors.AlreadyExists(
            "the merchant has a payment for this order id already",
            reason="ORDER_EXISTS",
            metadata={"merchant_id": merchant, "order_id": order_id, "payment_id": pid},
        )

    async def _derive(self, pid: str, merchant: str) -> wm.DerivedAddress:
        request = wm.DeriveAddressRequest(
            request_id=f"pg-{pid}", owner_id=merchant, label=pid, watcher=WATCHER
        )
        try:
            return (await self._wallets.DeriveAddress(request)).derived_address
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise errors.Unavailable(
                    "no deposit address can be derived now; retry with the same request_id",
                    reason="DEPOSIT_ADDRESS_UNAVAILABLE",
                ) from None
            raise upstream_error(exc, "wallet-manager", "to derive a deposit address") from None

    # ---- reads ------------------------------------------------------------------------------------
    async def get(self, pid: str) -> Document:
        doc = await self.payments.find_one({"_id": pid})
        tenant = context.tenant_scope()
        if doc is None or (tenant is not None and doc.get("tenant") != tenant):
            raise errors.NotFound(
                "payment not found", reason="PAYMENT_NOT_FOUND", metadata={"payment_id": pid}
            )
        return doc

    async def find(self, filters: Document, after: Any, limit: int) -> list[Document]:
        query = newest_first(filters, after)
        cursor = self.payments.find(query, {"events": 0}).sort(NEWEST_FIRST)
        return [d async for d in cursor.limit(limit)]

    # ---- changing ---------------------------------------------------------------------------------
    async def change(
        self, pid: str, edit: Callable[[Document], Document | None], event: str = ""
    ) -> Document:
        """Apply `edit` (the doc -> its $set fields, or None for no change) as one guarded write, then
        recompute the state from the result; repeated on a lost race. `event` names an event to emit with an
        edit that changed something, besides the state change's own."""
        for _ in range(UPDATE_RETRIES):
            doc = await self.payments.find_one({"_id": pid})
            if doc is None:
                raise errors.NotFound(
                    "payment not found", reason="PAYMENT_NOT_FOUND", metadata={"payment_id": pid}
                )
            edited = edit(doc)
            changes = self._restate(doc, edited or {})
            if not changes:
                return doc
            if edited and event:
                changes = {**changes, **with_event({**doc, **changes}, {}, event, _now())}
            changes["update_time"] = _now()
            changes["version"] = int(doc["version"]) + 1
            new = await self.payments.find_one_and_update(
                {"_id": pid, "version": doc["version"]},
                {"$set": changes},
                return_document=ReturnDocument.AFTER,
            )
            if new is not None:
                self._observe(doc, new)
                return new
        raise errors.Aborted("the payment changed concurrently too often; retry", reason="CONCURRENT_CHANGE")

    def recomputed_state(self, doc: Mapping[str, Any]) -> str:
        """The state a stored payment's record gives now (reconciliation compares it with the stored one)."""
        holds = doc.get("refund_holds", {}).values()
        refunded = sum(int(h["amount"]) for h in holds if h["confirmed"])
        return st.compute(
            int(doc["amount"]), doc["expire_at"], _now(), doc["transfers"], refunded, self.policy
        ).state

    def _restate(self, doc: Document, changes: Document) -> Document:
        """`changes` plus the recomputed state and sums, and the event when the state moved."""
        merged = {**doc, **changes}
        now = _now()
        holds = merged.get("refund_holds", {}).values()
        refunded = sum(int(h["amount"]) for h in holds if h["confirmed"])
        totals = st.compute(
            int(merged["amount"]), merged["expire_at"], now, merged["transfers"], refunded, self.policy
        )
        derived: Document = {
            "received": totals.received,
            "confirming": totals.confirming,
            "refunded": refunded,
            "reserved": sum(int(h["amount"]) for h in holds),
        }
        if totals.state != doc["state"]:
            derived["state"] = totals.state
            derived["open"] = totals.state in st.OPEN
            if totals.state in st.SUCCESS and not doc.get("paid_time"):
                derived["paid_time"] = now
        derived = {k: v for k, v in derived.items() if doc.get(k) != v}
        changes = {**changes, **derived}
        if not changes:
            return {}
        if "state" in derived:
            return with_event(doc, changes, "payment." + totals.state.lower(), now)
        return changes

    def _observe(self, old: Document, new: Document) -> None:
        if new["seq"] != old["seq"]:
            self.on_event(new["_id"])
        if new["state"] == old["state"]:
            return
        metrics.PAYMENT_TRANSITIONS.labels(new["asset"], new["state"]).inc()
        if new["state"] in st.SUCCESS and not old.get("paid_time"):
            metrics.SECONDS_TO_PAID.observe((new["paid_time"] - new["create_time"]).total_seconds())

    # ---- transfers --------------------------------------------------------------------------------
    async def apply(self, transfer: tc.Transfer, cursor: int) -> None:
        """Apply one transfer event of the stream (idempotent: a transfer's record keeps the cursor of its
        last event, so an event already applied changes nothing)."""
        owner = await self.addresses.find_one({"_id": transfer.to_address})
        if owner is None:
            return  # outgoing from a deposit address (a sweep or refund): the ledger records those
        if transfer.from_address == await self._fee_payer():
            return  # a sweep's TRX top-up: the sweep records it
        tid = transfer_id(transfer.txid, transfer.event_index)
        inbox = await self.unmatched.find_one({"_id": tid}, {"assigned_payment_id": 1, "cursor": 1})
        if inbox is not None and not inbox.get("assigned_payment_id"):
            await self._to_inbox(transfer, cursor, owner, inbox_reason="")
            return
        pid = inbox["assigned_payment_id"] if inbox is not None else owner["payment_id"]
        doc = await self.payments.find_one({"_id": pid}, {"asset": 1, "token": 1, "state": 1, "transfers": 1})
        reason = self._mismatch(doc, transfer) if inbox is None else ""
        if reason and not any(t["id"] == tid for t in (doc or {}).get("transfers", [])):
            await self._to_inbox(transfer, cursor, owner, inbox_reason=reason)
            return
        doc = await self.change(
            pid, lambda d: self._with_transfer(d, transfer, cursor, assigned=inbox is not None)
        )
        await self._journal.receipts(doc)
        metrics.DETECTED.labels(TRANSFER_STATE.get(transfer.state, "UNKNOWN")).inc()

    async def _fee_payer(self) -> str:
        """The address of PAYMENT_SWEEP_FEE_WALLET_ID ("" when none), read from wallet-manager once."""
        wallet_id = self._settings.PAYMENT_SWEEP_FEE_WALLET_ID
        if wallet_id and not self._fee_address:
            self._fee_address = (await PeerReads(self._clients).wallet(wallet_id)).address
        return self._fee_address

    @staticmethod
    def _mismatch(doc: Document | None, transfer: tc.Transfer) -> str:
        if doc is None:
            return "NO_PAYMENT"
        asset = USDT if transfer.asset == common_pb2.ASSET_USDT else TRX
        if transfer.asset not in (common_pb2.ASSET_USDT, common_pb2.ASSET_TRX) or asset != doc["asset"]:
            return "ASSET_MISMATCH"
        if asset == USDT and transfer.token_address != doc["token"]:
            return "ASSET_MISMATCH"
        if doc["state"] == st.REFUNDED:
            return "PAYMENT_REFUNDED"
        return ""

    def _with_transfer(
        self, doc: Document, t: tc.Transfer, cursor: int, *, assigned: bool
    ) -> Document | None:
        tid = transfer_id(t.txid, t.event_index)
        transfers = list(doc["transfers"])
        index = next((i for i, x in enumerate(transfers) if x["id"] == tid), None)
        if index is not None and int(transfers[index]["cursor"]) >= cursor:
            return None  # applied already
        block_time = t.block.block_time.ToDatetime(tzinfo=UTC)
        record = {
            "id": tid,
            "txid": t.txid,
            "event_index": t.event_index,
            "from": t.from_address,
            "to": t.to_address,
            "amount": int(t.amount),
            "block": int(t.block.number),
            "block_time": block_time,
            "state": TRANSFER_STATE.get(t.state, st.REVERTED),
            "cursor": cursor,
            "late": block_time > doc["expire_at"],
            "assigned": assigned,
            "detect_time": transfers[index]["detect_time"] if index is not None else _now(),
        }
        if index is None:
            transfers.append(record)
        else:
            transfers[index] = record
        return {"transfers": transfers}

    async def _to_inbox(self, t: tc.Transfer, cursor: int, owner: Document, *, inbox_reason: str) -> None:
        tid = transfer_id(t.txid, t.event_index)
        fields = {
            "state": TRANSFER_STATE.get(t.state, st.REVERTED),
            "cursor": cursor,
            "block": int(t.block.number),
            "block_time": t.block.block_time.ToDatetime(tzinfo=UTC),
        }
        updated = await self.unmatched.find_one_and_update(
            {"_id": tid, "cursor": {"$lt": cursor}}, {"$set": fields}, return_document=ReturnDocument.AFTER
        )
        if updated is not None:
            await self._journal.unmatched(updated)
            return
        doc = {
            "_id": tid,
            **fields,
            "txid": t.txid,
            "event_index": t.event_index,
            "asset": USDT
            if t.asset == common_pb2.ASSET_USDT
            else TRX
            if t.asset == common_pb2.ASSET_TRX
            else "",
            "token": t.token_address,
            "from": t.from_address,
            "to": t.to_address,
            "amount": int(t.amount),
            "merchant_id": owner["merchant_id"],
            "tenant": owner["merchant_id"],
            "address_payment_id": owner["payment_id"],
            "reason": inbox_reason or "NO_OPEN_PAYMENT",
            "assigned_payment_id": "",
            "assigned_by": "",
            "create_time": _now(),
        }
        with contextlib.suppress(DuplicateKeyError):  # a newer event got there first
            await self.unmatched.insert_one(doc)
            await self._journal.unmatched(doc)
            log.warning(
                "deposit matched no open payment",
                extra={"fields": {"transfer": tid, "address": t.to_address, "reason": doc["reason"]}},
            )

    async def assign(self, tid: str, pid: str, by: str) -> Document:
        """Credit an unmatched deposit to a payment of the same merchant and asset (once)."""
        item = await self.unmatched.find_one({"_id": tid})
        tenant = context.tenant_scope()
        if item is None or (tenant is not None and item.get("tenant") != tenant):
            raise errors.NotFound(
                "no such unmatched deposit", reason="DEPOSIT_NOT_FOUND", metadata={"transfer_id": tid}
            )
        payment = await self.get(pid)
        if item["assigned_payment_id"] not in ("", pid):
            raise errors.FailedPrecondition(
                "the deposit is assigned to another payment already",
                reason="DEPOSIT_ASSIGNED",
                metadata={"payment_id": item["assigned_payment_id"]},
            )
        if (
            payment["merchant_id"] != item["merchant_id"]
            or payment["asset"] != item["asset"]
            or (item["asset"] == USDT and payment["token"] != item["token"])
        ):
            raise errors.FailedPrecondition(
                "the deposit's merchant or asset differs from the payment's",
                reason="DEPOSIT_DOES_NOT_FIT",
                metadata={"payment_id": pid},
            )
        if not item["assigned_payment_id"]:
            await self.unmatched.update_one(
                {"_id": tid, "assigned_payment_id": ""},
                {"$set": {"assigned_payment_id": pid, "assigned_by": by, "assign_time": _now()}},
            )
            return await self.assign(tid, pid, by)  # re-read: the winner's assignment is what counts
        t = tc.Transfer(
            txid=item["txid"],
            event_index=item["event_index"],
            from_address=item["from"],
            to_address=item["to"],
            amount=item["amount"],
            block=tc.BlockRef(number=item["block"]),
            state={v: k for k, v in TRANSFER_STATE.items()}[item["state"]],
        )
        t.block.block_time.FromDatetime(item["block_time"])
        doc = await self.change(pid, lambda d: self._with_transfer(d, t, int(item["cursor"]), assigned=True))
        await self._journal.receipts(doc)
        return doc

    async def find_unmatched(self, filters: Document, after: Any, limit: int) -> list[Document]:
        query = newest_first(filters, after)
        cursor = self.unmatched.find(query).sort(NEWEST_FIRST)
        return [d async for d in cursor.limit(limit)]

    # ---- expiry -----------------------------------------------------------------------------------
    async def expire_due(self) -> int:
        """Recompute the open payments whose time is up (they become EXPIRED or UNDERPAID unless money is on
        its way); returns how many changed. Expiry times come from a heap in memory: those this replica
        created, and every open payment found by the full scan each EXPIRY_SCAN_SECONDS (other replicas'
        payments, and all of them after a restart), so the database is not scanned every tick."""
        if time.monotonic() >= self._scan_at:
            self._scan_at = time.monotonic() + EXPIRY_SCAN_SECONDS
            async for d in self.payments.find({"open": True}, {"_id": 1, "expire_at": 1}):
                self.expires(d["_id"], d["expire_at"])
        now, changed = _now(), 0
        while self._expiring and self._expiring[0][0] <= now:
            _, pid = heapq.heappop(self._expiring)
            self._queued.discard(pid)
            old = await self.payments.find_one({"_id": pid}, {"state": 1})
            if old is not None and old["state"] in st.OPEN:
                new = await self.change(pid, lambda _: None)
                changed += new["state"] != old["state"]
        return changed

    def expires(self, pid: str, at: datetime) -> None:
        """Recompute payment `pid` once `at` has passed."""
        if pid not in self._queued:
            self._queued.add(pid)
            heapq.heappush(self._expiring, (at, pid))

    async def run(self) -> None:
        counted_at = 0.0
        while True:
            try:
                await self.expire_due()
                if time.monotonic() - counted_at >= STATE_COUNT_SECONDS:
                    await self._count_states()
                    counted_at = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop outlives a Mongo outage; logged, retried next tick
                log.warning("expiry pass failed", extra={"fields": {"error": str(exc)}})
            await asyncio.sleep(self._settings.PAYMENT_POLL_SECONDS)

    async def _count_states(self) -> None:
        counts: dict[str, int] = dict.fromkeys(st.STATES, 0)
        async for row in await self.payments.aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}]):
            counts[row["_id"]] = int(row["n"])
        for name, n in counts.items():
            metrics.PAYMENTS_BY_STATE.labels(name).set(n)
        metrics.UNMATCHED.set(await self.unmatched.count_documents({"assigned_payment_id": ""}))


def refundable(doc: Mapping[str, Any]) -> int:
    """What a payment has left to refund: received (final) minus what refunds hold (sent or on their way)."""
    return int(doc.get("received", 0)) - int(doc.get("reserved", 0))


def states_of(docs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in docs:
        out[d["state"]] = out.get(d["state"], 0) + 1
    return out
