"""Payouts: records, the rules checked before anything is signed, approvals, cancellation, and the dispatcher
that sends approved payouts on chain through the shared lifecycle (services.common.chain_ops).

Records (collection `payouts`, one document per payout, `_id` = payout id derived from the request_id; batches
in `batches`): PENDING (waiting for approvals) -> APPROVED -> SUBMITTED (claimed by an on-chain batch) ->
CONFIRMED | FAILED, or CANCELLED before SUBMITTED. Every change is one guarded single-document write.

Rules, each refusal FAILED_PRECONDITION naming its rule (ErrorInfo reason), nothing kept. First those of
each payout alone: the router's pause, the wallet's DISBURSER_ROLE, maxPerTx, USDT's blacklist per
recipient, the PRKYC attestation (PAYOUT_KYC_REQUIRED), the cooling-off of a recipient never paid before.
Then the sums, which must hold for concurrent requests too: what the router may still pay today and its
balance (or the wallet's TRX), velocity per recipient and per asset over 24 h. A read-then-insert would let
two concurrent requests both pass, so the payouts are stored first, `held` (invisible to reads, approvals and
the dispatcher), the sums are read counting them, and they are released or deleted. Of any two requests the
later read sees both, so together they never pass a limit; near a limit, contention may refuse both. A
crash leaves held payouts: a retry of the request finishes them, and the dispatcher deletes any an hour old.

On chain: USDT payouts go through the router's disburseBatch (PayoutRouterV0) or disburseBatchKYC (with each
recipient's attestation, PayoutRouterKYC), each with its on-chain id keccak256(payout id), which the router
pays at most once (a second call emits AlreadyPaid and pays nothing); TRX payouts are plain transfers, one
lifecycle operation per payout (its id derives from the payout id, so it is created once). The dispatcher:
  1. picks APPROVED payouts of one wallet and asset (a batch request's only once all of them are stored; at
     most PAYOUT_BATCH_SIZE and the router's maxBatchSize, fewer when the energy estimate would not fit the
     fee-limit cap), names an on-chain batch `pc_<random>`;
  2. claims each payout for it (guarded APPROVED -> SUBMITTED; cancellation is guarded the other way, so
     exactly one wins);
  3. creates the lifecycle operation of that batch (`_id` = the batch name; payouts, router and call kind
     stored in it), which builds, asks the energy broker (PAYOUT_ENERGY_BROKER), has wallet-manager sign,
     stores the signed transaction and broadcasts. Payouts of the multi-signature disburser
     (PAYOUT_MULTISIG_*, multisig.py) are built with its Permission_id and signed by enough of its signer
     wallets for the threshold on chain, all signatures stored before the first broadcast.
A crash between 2 and 3 leaves SUBMITTED payouts whose batch has no operation: the dispatcher creates it
(the same name, the same payouts). When the operation ends, the payouts follow the router's events in the
solidified receipt (Paid / AlreadyPaid with the same recipient and amount -> CONFIRMED, PayoutFailed ->
FAILED with the router's reason); when it ends without a receipt the router's record (payoutOf) decides.
The lifecycle never builds a new transaction after PAYOUT_TIMEOUT (it fails the operation once the current
one provably cannot be included; the payout then FAILS with PAYOUT_TIMEOUT and tronpay_payout_timeouts_total
counts it), so a payout never stays SUBMITTED forever. Fees, energy and bandwidth of a batch are shared out
over its payouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from prometheus_client import Counter, Gauge, Histogram
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm

from services.common import context, errors
from services.common.access import Role
from services.common.audit import AuditEvent
from services.common.chain_ops import (
    SIGNING_KINDS,
    TERMINAL,
    WALLET_CANNOT_SIGN,
    Built,
    BurnEnergy,
    Lifecycle,
    LifecycleConfig,
    Operation,
    OpState,
    Refused,
    StakingBroker,
    operation_id,
)
from services.common.chain_ops import indexes as lifecycle_indexes
from services.common.logging import get_logger
from services.common.mongo import Document, IndexSpec
from services.common.pagination import NEWEST_FIRST, newest_first
from services.common.server import Runtime
from services.payout_router.allowlist import Allowlist
from services.payout_router.chain import (
    DISBURSE_BATCH,
    DISBURSE_BATCH_KYC,
    Chain,
    batch_parameter,
    onchain_id,
    outcomes,
)
from services.payout_router.multisig import MultisigDisburser
from services.payout_router.settings import PayoutRouterSettings

log = get_logger("payout_router.payouts")

PAYOUTS, BATCHES, RECIPIENTS, CHUNKS = "payouts", "batches", "recipients", "chunks"
USDT, TRX = "USDT", "TRX"
PENDING, APPROVED, SUBMITTED, CONFIRMED, FAILED, CANCELLED = (
    "PENDING",
    "APPROVED",
    "SUBMITTED",
    "CONFIRMED",
    "FAILED",
    "CANCELLED",
)
OPEN = (PENDING, APPROVED)
DAY = timedelta(days=1)
#: Payouts stored while their sums are checked; nothing but the request that stored them sees them.
VISIBLE: Document = {"held": {"$exists": False}}
HELD_AT_MOST = timedelta(hours=1)
HELD_SWEEP_SECONDS = 300.0

INDEXES = (
    *lifecycle_indexes(CHUNKS),
    IndexSpec(PAYOUTS, [("state", 1), ("create_time", 1)], name="state_time"),
    IndexSpec(PAYOUTS, [("create_time", -1), ("_id", -1)], name="time"),
    IndexSpec(PAYOUTS, [("recipient_address", 1), ("create_time", -1)], name="recipient_time"),
    IndexSpec(PAYOUTS, [("chunk_id", 1)], name="chunk"),
    IndexSpec(PAYOUTS, [("batch_id", 1)], name="batch"),
    IndexSpec(PAYOUTS, [("held", 1), ("create_time", 1)], name="held"),
    IndexSpec(PAYOUTS, [("reference", 1), ("create_time", -1)], name="reference_time"),
)

_SECONDS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
STATES = Counter("tronpay_payouts_total", "Payouts entering a state.", ["asset", "state"])
TO_CONFIRMED = Histogram(
    "tronpay_payout_seconds_to_confirmed", "Seconds from request to CONFIRMED.", ["asset"], buckets=_SECONDS
)
RECIPIENTS_PER_BATCH = Histogram(
    "tronpay_payout_recipients_per_batch", "Payouts per on-chain batch.", buckets=(1, 5, 10, 25, 50, 100, 200)
)
ENERGY_PER_RECIPIENT = Histogram(
    "tronpay_payout_energy_per_recipient",
    "Energy used per payout of a finished on-chain batch.",
    buckets=(10_000, 20_000, 40_000, 60_000, 100_000, 200_000),
)
BANDWIDTH_PER_RECIPIENT = Histogram(
    "tronpay_payout_bandwidth_per_recipient",
    "Bandwidth bytes per payout of a finished on-chain batch.",
    buckets=(50, 100, 200, 300, 400, 600),
)
TRX_BURNED = Counter("tronpay_payout_trx_burned_sun_total", "TRX burned by payout transactions, in sun.")
REFUSED = Counter(
    "tronpay_payout_refusals_total", "Payout requests refused before signing, by rule.", ["rule"]
)
TIMEOUTS = Counter(
    "tronpay_payout_timeouts_total", "ALERT: payouts failed after PAYOUT_TIMEOUT without confirmation."
)
APPROVALS_WAITING = Gauge("tronpay_payout_approvals_waiting", "Payouts waiting for approvals.")


def refuse(rule: str, message: str, **metadata: object) -> errors.FailedPrecondition:
    """A refusal naming its rule (the ErrorInfo reason), counted."""
    REFUSED.labels(rule).inc()
    return errors.FailedPrecondition(message, reason=rule, metadata={k: str(v) for k, v in metadata.items()})


def payout_id(request_id: str, index: int | None = None) -> str:
    """The id of a payout a request creates (the same request names the same payouts)."""
    return operation_id("po", request_id if index is None else f"{request_id}#{index}")


def batch_id(request_id: str) -> str:
    return operation_id("pb", request_id)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Budget:
    """What the payouts in flight may total, and the rule that refuses more."""

    rule: str
    message: str
    available: int


@dataclass(frozen=True, slots=True)
class Item:
    recipient: str
    amount: int
    reference: str


class Payouts:
    """Records, rules, approvals and the dispatcher."""

    def __init__(self, rt: Runtime[PayoutRouterSettings], chain: Chain, allowlist: Allowlist) -> None:
        s = self._settings = rt.settings
        self._chain = chain
        self._allowlist = allowlist
        self._multisig = MultisigDisburser(s, chain, refuse)
        self._kyc = s.PAYOUT_KYC_REQUIRED
        self._payouts = rt.db.collection(PAYOUTS)
        self._batches = rt.db.collection(BATCHES)
        self._recipients = rt.db.collection(RECIPIENTS)
        self._audit = rt.audit
        cfg = LifecycleConfig(
            "payout",
            CHUNKS,
            max_attempts=s.PAYOUT_MAX_ATTEMPTS,
            poll_seconds=s.PAYOUT_POLL_SECONDS,
            rebroadcast_seconds=s.PAYOUT_REBROADCAST_SECONDS,
            lease_seconds=s.PAYOUT_LEASE_SECONDS,
        )
        energy = StakingBroker(rt.clients) if s.PAYOUT_ENERGY_BROKER else BurnEnergy()
        self.ops = Lifecycle(
            rt.db,
            rt.clients,
            cfg,
            self._build,
            owner=Lifecycle.default_owner(s.port),
            energy=energy,
            on_transition=self._moved,
        )
        self._loop: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._settling: set[str] = set()
        self._held_swept_at = float("-inf")

    def start(self) -> None:
        self.ops.start()
        self._loop = asyncio.create_task(self._dispatch_loop())

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        await self.ops.stop()

    # ---- reads ------------------------------------------------------------------------------------
    async def get(self, pid: str) -> Document:
        query: Document = {"_id": pid, **VISIBLE}
        if (tenant := context.tenant_scope()) is not None:
            query["tenant"] = tenant
        doc = await self._payouts.find_one(query)
        if doc is None:
            raise errors.NotFound("payout not found", reason="PAYOUT_NOT_FOUND", metadata={"payout_id": pid})
        return doc

    async def get_batch(self, bid: str) -> tuple[Document, list[Document]]:
        query: Document = {"_id": bid}
        if (tenant := context.tenant_scope()) is not None:
            query["tenant"] = tenant
        doc = await self._batches.find_one(query)
        if doc is None:
            raise errors.NotFound("batch not found", reason="BATCH_NOT_FOUND", metadata={"batch_id": bid})
        members = [d async for d in self._payouts.find({"batch_id": bid, **VISIBLE}).sort("index", ASCENDING)]
        return doc, members

    async def find(self, filters: Document, after: Any, limit: int) -> list[Document]:
        query = newest_first({**filters, **VISIBLE}, after)
        cursor = self._payouts.find(query).sort(NEWEST_FIRST)
        return [d async for d in cursor.limit(limit)]

    # ---- creating ---------------------------------------------------------------------------------
    async def create(
        self,
        request_id: str,
        fingerprint: str,
        wallet_id: str,
        asset: str,
        items: Sequence[Item],
        reference: str,
        *,
        batch: bool,
    ) -> tuple[Document | None, list[Document]]:
        """Check every rule, then store the payouts (and the batch); a repeated request returns them."""
        bid = batch_id(request_id) if batch else ""
        ids = [payout_id(request_id, i if batch else None) for i in range(len(items))]
        known = await self._replay(bid, ids, fingerprint)
        if known is not None:
            return known
        wallet = await self._source_wallet(wallet_id, asset)
        ctx = context.current()
        tenant = ctx.tenant if ctx else ""
        if tenant and wallet.tenant and wallet.tenant != tenant:
            raise errors.NotFound(
                "wallet not found", reason="WALLET_NOT_FOUND", metadata={"wallet_id": wallet_id}
            )
        budgets = await self._check(wallet.address, asset, items)
        now = _now()
        threshold = (
            self._settings.PAYOUT_APPROVAL_THRESHOLD_USDT
            if asset == USDT
            else self._settings.PAYOUT_APPROVAL_THRESHOLD_TRX
        )
        docs = []
        for i, (pid, item) in enumerate(zip(ids, items, strict=True)):
            required = (
                self._settings.PAYOUT_REQUIRED_APPROVALS if threshold and item.amount >= threshold else 0
            )
            docs.append(
                {
                    "_id": pid,
                    "request_id": request_id,
                    "fingerprint": fingerprint,
                    "batch_id": bid,
                    "index": i,
                    "tenant": tenant,
                    "initiator": ctx.subject if ctx else "",
                    "wallet_id": wallet_id,
                    "source_address": wallet.address,
                    "recipient_address": item.recipient,
                    "asset": asset,
                    "amount": item.amount,
                    "reference": item.reference,
                    "state": PENDING if required else APPROVED,
                    "held": True,
                    "approvals": [],
                    "approval_count": 0,
                    "required_approvals": required,
                    "chunk_id": "",
                    "onchain_id": onchain_id(pid).hex(),
                    "txid": "",
                    "fee_sun": 0,
                    "energy_used": 0,
                    "net_usage": 0,
                    "failure_reason": "",
                    "create_time": now,
                    "update_time": now,
                }
            )
        batch_doc = None
        if batch:
            batch_doc = {
                "_id": bid,
                "request_id": request_id,
                "fingerprint": fingerprint,
                "tenant": tenant,
                "wallet_id": wallet_id,
                "asset": asset,
                "payout_count": len(items),
                "total_amount": sum(i.amount for i in items),
                "reference": reference,
                "complete": False,
                "create_time": now,
                "update_time": now,
            }
            with contextlib.suppress(DuplicateKeyError):  # a retry after a crash: the first insert stands
                await self._batches.insert_one(batch_doc)
        for doc in docs:
            with contextlib.suppress(DuplicateKeyError):
                await self._payouts.insert_one(doc)
        try:
            await self._check_sums(wallet.address, asset, items, budgets)
        except errors.FailedPrecondition:
            await self._payouts.delete_many({"_id": {"$in": ids}, "held": True})
            if batch:
                await self._batches.delete_one({"_id": bid, "complete": False})
            raise
        await self._payouts.update_many({"_id": {"$in": ids}, "held": True}, {"$unset": {"held": ""}})
        for doc in docs:
            STATES.labels(asset, doc["state"]).inc()
        if batch:  # every payout is stored: the dispatcher may take them now
            await self._batches.update_one({"_id": bid}, {"$set": {"complete": True}})
        self._kick.set()
        return await self._replay(bid, ids, fingerprint) or (batch_doc, docs)

    async def _replay(
        self, bid: str, ids: Sequence[str], fingerprint: str
    ) -> tuple[Document | None, list[Document]] | None:
        first = await self._payouts.find_one({"_id": ids[0]})
        if first is None:
            return None
        if first.get("fingerprint") != fingerprint:
            raise errors.FailedPrecondition(
                "request_id was already used for a different request",
                reason="REQUEST_ID_REUSED",
                metadata={"request_id": str(first.get("request_id", ""))},
            )
        if first.get("held"):
            return None  # a crash before its sums were checked: the retry checks them
        if not bid:
            return None, [first]
        batch_doc = await self._batches.find_one({"_id": bid})
        found = {d["_id"]: d async for d in self._payouts.find({"batch_id": bid})}
        if len(found) < len(ids) or any(d.get("held") for d in found.values()):
            return None  # a crash in the middle of storing or checking them: the retry finishes
        if batch_doc is not None and not batch_doc.get("complete"):  # a crash just before it was marked
            await self._batches.update_one({"_id": bid}, {"$set": {"complete": True}})
        return batch_doc, [found[i] for i in ids]

    async def _source_wallet(self, wallet_id: str, asset: str) -> wm.Wallet:
        """The wallet payouts come from: one that signs here, or the multi-signature account's (any kind,
        typically watch-only), whose signer wallets must reach its threshold now."""
        wallet = await self._chain.wallet(wallet_id)
        if self._multisig.pays_for(wallet.address):
            await self._multisig.signers(_CONTRACT[asset])
        elif wallet.kind not in SIGNING_KINDS:
            raise refuse(WALLET_CANNOT_SIGN, "this wallet cannot sign here (watch-only or TronLink)",
                         wallet_id=wallet_id)  # fmt: skip
        return wallet

    # ---- the rules --------------------------------------------------------------------------------
    async def _check(self, source: str, asset: str, items: Sequence[Item]) -> list[Budget]:
        """The rules of each payout alone; returns what the payouts in flight may total, for _check_sums."""
        if asset == TRX:
            balance = (await self._chain.account(source)).balance_sun
            budgets = [
                Budget("INSUFFICIENT_BALANCE", "the wallet's TRX minus payouts in flight is too low", balance)
            ]
        else:
            budgets = await self._check_router(source, items)
        await self._cooling_off(items)
        return budgets

    async def _check_router(self, source: str, items: Sequence[Item]) -> list[Budget]:
        router = self._settings.payout_router
        if not router:
            raise refuse("ROUTER_NOT_CONFIGURED", "no payout router is configured", kyc=self._kyc)
        state, disburser = await asyncio.gather(
            self._chain.router_state(router), self._chain.is_disburser(router, source)
        )
        if state.paused:
            raise refuse("ROUTER_PAUSED", "the payout router is paused", router=router)
        if not disburser:
            raise refuse(
                "NOT_A_DISBURSER",
                "the wallet's address does not hold the router's DISBURSER_ROLE",
                address=source,
                router=router,
            )
        for i, item in enumerate(items):
            if item.amount > state.max_per_tx:
                raise refuse(
                    "OVER_ROUTER_PER_TX_LIMIT",
                    "a payout is above the router's maxPerTx",
                    item=i,
                    amount=item.amount,
                    max_per_tx=state.max_per_tx,
                )
        token = self._settings.USDT_CONTRACT_ADDRESS
        listed = await asyncio.gather(*(self._chain.blacklisted(token, i.recipient) for i in items))
        for i, (item, bad) in enumerate(zip(items, listed, strict=True)):
            if bad:
                raise refuse(
                    "RECIPIENT_BLACKLISTED", "USDT blacklists a recipient", item=i, address=item.recipient
                )
        if self._kyc:
            verdicts = await asyncio.gather(*(self._allowlist.failure(i.recipient) for i in items))
            for i, (item, failure) in enumerate(zip(items, verdicts, strict=True)):
                if failure != "NONE":
                    raise refuse(
                        failure,
                        "a recipient has no valid KYC attestation on the allowlist",
                        item=i,
                        address=item.recipient,
                    )
        return [
            Budget(
                "OVER_ROUTER_DAILY_LIMIT",
                "the payouts exceed what the router may still pay today",
                state.remaining_today,
            ),
            Budget("INSUFFICIENT_ROUTER_BALANCE", "the router's USDT minus payouts in flight is too low",
                   state.balance),
        ]  # fmt: skip

    async def _check_sums(
        self, source: str, asset: str, items: Sequence[Item], budgets: list[Budget]
    ) -> None:
        """The rules on sums, read with these payouts already stored (held), so that concurrent requests
        cannot pass them together: payouts in flight within each budget, then velocity."""
        total = sum(i.amount for i in items)
        in_flight = await self._in_flight(asset, source if asset == TRX else "")
        for b in budgets:
            if in_flight > b.available:
                raise refuse(
                    b.rule, b.message, amount=total, in_flight=in_flight - total, available=b.available
                )
        await self._velocity(asset, items, total)

    async def _in_flight(self, asset: str, source: str) -> int:
        """The sum of this asset's payouts not yet final (from `source` when given), held ones included."""
        query: Document = {"asset": asset, "state": {"$in": [PENDING, APPROVED, SUBMITTED]}}
        if source:
            query["source_address"] = source
        return sum([int(d["amount"]) async for d in self._payouts.find(query, {"amount": 1})])

    async def _velocity(self, asset: str, items: Sequence[Item], total: int) -> None:
        s = self._settings
        per_recipient = (
            s.PAYOUT_RECIPIENT_DAILY_LIMIT_USDT if asset == USDT else s.PAYOUT_RECIPIENT_DAILY_LIMIT_TRX
        )
        per_day = s.PAYOUT_DAILY_LIMIT_USDT if asset == USDT else s.PAYOUT_DAILY_LIMIT_TRX
        if not per_recipient and not per_day:
            return
        since = _now() - DAY
        live = {"asset": asset, "create_time": {"$gte": since}, "state": {"$nin": [FAILED, CANCELLED]}}
        if per_day:
            sent = sum([int(d["amount"]) async for d in self._payouts.find(live, {"amount": 1})])
            if sent > per_day:
                raise refuse(
                    "VELOCITY_DAILY_LIMIT",
                    "the payouts exceed the daily limit of all payouts",
                    asset=asset,
                    sent_24h=sent - total,
                    amount=total,
                    limit=per_day,
                )
        if per_recipient:
            sent_to = dict.fromkeys((i.recipient for i in items), 0)
            query = {**live, "recipient_address": {"$in": list(sent_to)}}
            async for d in self._payouts.find(query, {"amount": 1, "recipient_address": 1}):
                sent_to[d["recipient_address"]] += int(d["amount"])
            for i, item in enumerate(items):
                if sent_to[item.recipient] > per_recipient:
                    raise refuse(
                        "VELOCITY_RECIPIENT_LIMIT",
                        "a recipient would get more than its daily limit",
                        item=i,
                        address=item.recipient,
                        limit=per_recipient,
                    )

    async def _cooling_off(self, items: Sequence[Item]) -> None:
        """A recipient never paid before must have been named at least PAYOUT_COOLING_OFF_SECONDS ago (the
        first request naming it starts the clock)."""
        seconds = self._settings.PAYOUT_COOLING_OFF_SECONDS
        if not seconds:
            return
        now = _now()
        for i, item in enumerate(items):
            doc = await self._recipients.find_one_and_update(
                {"_id": item.recipient},
                {"$setOnInsert": {"first_seen": now, "paid": False}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            if (
                doc is not None
                and not doc.get("paid")
                and doc["first_seen"] + timedelta(seconds=seconds) > now
            ):
                until = doc["first_seen"] + timedelta(seconds=seconds)
                raise refuse(
                    "COOLING_OFF",
                    "a recipient never paid before is in its cooling-off period",
                    item=i,
                    address=item.recipient,
                    until=until.isoformat(),
                )

    # ---- approvals and cancellation ---------------------------------------------------------------
    async def approve(self, pid: str, approver_id: str, comment: str) -> Document:
        ctx = context.current()
        subject = ctx.subject if ctx else ""
        if not subject or approver_id != subject:
            raise errors.PermissionDenied(
                "approver_id must be the authenticated caller's subject", reason="APPROVER_NOT_CALLER"
            )
        if ctx is None or not ctx.roles & {Role.APPROVER, Role.ADMIN}:
            raise errors.PermissionDenied("approving needs the approver role", reason="NOT_AN_APPROVER")
        approvers = self._settings.approvers
        if approvers and subject not in approvers:
            raise errors.PermissionDenied(
                "not on the approver list (PAYOUT_APPROVERS)", reason="NOT_AN_APPROVER"
            )
        for _ in range(5):
            doc = await self.get(pid)
            if subject == doc.get("initiator"):
                raise errors.PermissionDenied(
                    "the initiator cannot approve its own payout", reason="INITIATOR_CANNOT_APPROVE"
                )
            if any(a["approver_id"] == subject for a in doc["approvals"]):
                raise errors.AlreadyExists("this approver already approved", reason="ALREADY_APPROVED")
            if doc["state"] != PENDING:
                raise errors.FailedPrecondition(
                    f"the payout is {doc['state']}, not PENDING",
                    reason="PAYOUT_NOT_PENDING",
                    metadata={"state": doc["state"]},
                )
            n = int(doc["approval_count"])
            now = _now()
            change: Document = {"approval_count": n + 1, "update_time": now}
            if n + 1 >= int(doc["required_approvals"]):
                change["state"] = APPROVED
            new = await self._payouts.find_one_and_update(
                {"_id": pid, "state": PENDING, "approval_count": n},
                {
                    "$set": change,
                    "$push": {"approvals": {"approver_id": subject, "comment": comment, "approve_time": now}},
                },
                return_document=ReturnDocument.AFTER,
            )
            if new is None:
                continue  # another approval or a cancellation won: read again
            if new["state"] == APPROVED:
                STATES.labels(new["asset"], APPROVED).inc()
                self._kick.set()
            await self._audit.append(
                AuditEvent.PAYOUT_APPROVED,
                resource=f"payouts/{pid}",
                details={
                    "approvals": n + 1,
                    "required": int(doc["required_approvals"]),
                    "state": new["state"],
                },
            )
            return new
        raise errors.Aborted("the payout changed concurrently; retry", reason="CONFLICT")

    async def cancel(self, pid: str, reason: str) -> Document:
        await self.get(pid)  # NOT_FOUND (also for another tenant's payout)
        new = await self._payouts.find_one_and_update(
            {"_id": pid, "state": {"$in": list(OPEN)}},
            {"$set": {"state": CANCELLED, "failure_reason": reason or "cancelled", "update_time": _now()}},
            return_document=ReturnDocument.AFTER,
        )
        if new is None:
            doc = await self.get(pid)
            if doc["state"] == CANCELLED:
                return doc
            raise errors.FailedPrecondition(
                f"the payout is {doc['state']}: only a payout not yet submitted can be cancelled",
                reason="PAYOUT_ALREADY_SUBMITTED",
                metadata={"state": doc["state"]},
            )
        STATES.labels(new["asset"], CANCELLED).inc()
        await self._audit.append(
            AuditEvent.PAYOUT_CANCELLED, resource=f"payouts/{pid}", details={"from": "open"}
        )
        return new

    # ---- the dispatcher ---------------------------------------------------------------------------
    async def _dispatch_loop(self) -> None:
        while True:
            try:
                await self.recover()
                while await self.dispatch_once():
                    pass
                APPROVALS_WAITING.set(await self._payouts.count_documents({"state": PENDING, **VISIBLE}))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dependency is away: the next round tries again
                log.warning("dispatch failed: %s: %s", type(exc).__name__, exc)
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self._settings.PAYOUT_DISPATCH_SECONDS)

    async def dispatch_once(self) -> bool:
        """Send one on-chain batch of approved payouts; False when there is none. Payouts of a batch request
        wait until all of them are stored (the batch record's `complete`), so one request is never split by
        the order in which its payouts were inserted."""
        limit = self._settings.PAYOUT_BATCH_SIZE
        candidates = [
            d
            async for d in self._payouts.find({"state": APPROVED, **VISIBLE})
            .sort("create_time", ASCENDING)
            .limit(2 * limit)
        ]
        pending = {d["batch_id"] for d in candidates if d["batch_id"]}
        if pending:
            ready = {
                b["_id"]
                async for b in self._batches.find(
                    {"_id": {"$in": list(pending)}, "complete": True}, {"_id": 1}
                )
            }
            candidates = [d for d in candidates if not d["batch_id"] or d["batch_id"] in ready]
        if not candidates:
            return False
        first = candidates[0]
        if first["asset"] == TRX:
            await self._submit([first])
            return True
        router = self._settings.payout_router
        on_chain = (await self._chain.router_state(router)).max_batch_size if router else limit
        limit = max(1, min(limit, on_chain))
        group = [d for d in candidates if d["asset"] == USDT and d["wallet_id"] == first["wallet_id"]][:limit]
        group = await self._fit(first["source_address"], group)
        await self._submit(group)
        return True

    async def _fit(self, source: str, group: list[Document]) -> list[Document]:
        """The largest prefix (halving) whose estimated energy fits the fee-limit cap."""
        cap = await self._cap()
        while len(group) > 1:
            try:
                call = await self._call(self._settings.payout_router, self._kyc, "estimate", _triples(group))
                energy, price = await self._chain.estimate(source, self._settings.payout_router, *call)
            except errors.FailedPrecondition:
                return group  # the builder refuses it with the reason, for the payouts to show
            if self._fee_limit(energy, price) <= cap:
                return group
            group = group[: len(group) // 2]
        return group

    async def _cap(self) -> int:
        network = await self._chain.max_fee_limit()
        return min(
            self._settings.PAYOUT_MAX_FEE_LIMIT_SUN, network or self._settings.PAYOUT_MAX_FEE_LIMIT_SUN
        )

    def _fee_limit(self, energy: int, price: int) -> int:
        return -(-energy * price * (100 + self._settings.PAYOUT_FEE_LIMIT_MARGIN_PERCENT) // 100)

    async def _call(
        self, router: str, kyc: bool, name: str, triples: list[tuple[str, str, int]]
    ) -> tuple[str, bytes]:
        """The router function and its parameters: disburseBatch, or disburseBatchKYC with each recipient's
        attestation from the allowlist (FailedPrecondition KYC_MISSING / KYC_EXPIRED without one)."""
        if not kyc:
            return DISBURSE_BATCH, batch_parameter(name, triples)
        words = await self._allowlist.attestations([to for _, to, _ in triples])
        return DISBURSE_BATCH_KYC, batch_parameter(name, triples, words)

    async def _submit(self, group: list[Document]) -> None:
        asset = group[0]["asset"]
        chunk = f"pt_{group[0]['_id'][3:]}" if asset == TRX else f"pc_{uuid.uuid4().hex[:24]}"
        now = _now()
        claimed = []
        for d in group:
            won = await self._payouts.find_one_and_update(
                {"_id": d["_id"], "state": APPROVED, "chunk_id": ""},
                {"$set": {"state": SUBMITTED, "chunk_id": chunk, "submit_time": now, "update_time": now}},
                return_document=ReturnDocument.AFTER,
            )
            if won is not None:
                claimed.append(won)
                STATES.labels(asset, SUBMITTED).inc()
        if claimed:
            await self._create_op(chunk, claimed)

    async def _create_op(self, chunk: str, members: list[Document]) -> None:
        first = members[0]
        fields = {
            "asset": first["asset"],
            "router": self._settings.payout_router,
            "kyc": self._kyc,
            "payouts": [
                {"id": d["_id"], "to": d["recipient_address"], "amount": d["amount"]} for d in members
            ],
        }
        try:
            await self.ops.create(
                chunk,
                request_id=chunk,
                fingerprint=chunk,
                wallet_id=first["wallet_id"],
                signer_address=first["source_address"],
                fields=fields,
            )
        except (errors.FailedPrecondition, errors.PermissionDenied, errors.NotFound) as exc:
            # Refused before anything was signed: the payouts fail with the reason (nothing was sent).
            for d in members:
                await self._finish(
                    d["_id"], chunk, FAILED, {"failure_reason": f"{exc.reason}: {exc.message}"}
                )
            return
        RECIPIENTS_PER_BATCH.observe(len(members))

    async def recover(self) -> None:
        """SUBMITTED payouts: create the operation of a batch a crash left without one; settle those whose
        operation has ended. Payouts a crash left held, an hour old and never retried, are deleted."""
        if time.monotonic() >= self._held_swept_at + HELD_SWEEP_SECONDS:  # rare: not every dispatch round
            self._held_swept_at = time.monotonic()
            await self._payouts.delete_many({"held": True, "create_time": {"$lt": _now() - HELD_AT_MOST}})
        chunks: dict[str, list[Document]] = {}
        async for d in self._payouts.find({"state": SUBMITTED}):
            chunks.setdefault(d["chunk_id"], []).append(d)
        for chunk, members in chunks.items():
            op = await self.ops.get(chunk)
            if op is None:
                log.warning(
                    "creating the operation of a batch left by a crash", extra={"fields": {"op": chunk}}
                )
                await self._create_op(chunk, members)
            elif op.state in TERMINAL:
                await self.settle(op)

    # ---- building (the lifecycle's Builder) -------------------------------------------------------
    async def _build(self, op: Operation, attempt: int) -> Built:
        s = self._settings
        if attempt > 1 and (_now() - op.create_time).total_seconds() > s.PAYOUT_TIMEOUT:
            raise Refused("PAYOUT_TIMEOUT", f"not confirmed within PAYOUT_TIMEOUT ({s.PAYOUT_TIMEOUT} s)")
        members = op.doc["payouts"]
        asset = op.doc["asset"]
        try:
            # A multi-signature account: its permission and signers as the chain has them now.
            multisig = self._multisig.pays_for(op.signer_address)
            signers = await self._multisig.signers(_CONTRACT[asset]) if multisig else []
            permission_id = self._multisig.permission_id if multisig else 0
            if asset == TRX:
                (p,) = members
                tx = await self._chain.build_transfer(
                    op.signer_address, p["to"], p["amount"], s.PAYOUT_TX_EXPIRATION_SECONDS, permission_id
                )
                return Built(tx, signers=signers)
            triples = [(p["id"], p["to"], int(p["amount"])) for p in members]
            router = op.doc["router"]
            signature, parameter = await self._call(router, bool(op.doc.get("kyc")), op.id, triples)
            state = await self._chain.router_state(router)
            if state.paused:
                raise Refused("ROUTER_PAUSED", "the payout router is paused")
            energy, price = await self._chain.estimate(op.signer_address, router, signature, parameter)
            fee_limit = min(await self._cap(), self._fee_limit(energy, price))
            tx = await self._chain.build_call(
                op.signer_address,
                router,
                signature,
                parameter,
                fee_limit,
                s.PAYOUT_TX_EXPIRATION_SECONDS,
                permission_id,
            )
        except errors.DomainError as exc:
            if isinstance(exc, errors.FailedPrecondition):
                raise Refused(exc.reason, exc.message, exc.metadata) from None
            raise
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
                raise Refused(
                    "BUILD_REFUSED", f"tron-client cannot build the transaction: {exc.details()}"
                ) from None
            raise
        return Built(tx, energy, {"energy_price_sun": price}, signers)

    # ---- settling ---------------------------------------------------------------------------------
    async def _moved(self, op: Operation, old: OpState) -> None:
        if op.state in TERMINAL:
            await self.settle(op)

    async def settle(self, op: Operation) -> None:
        """The payouts of an ended operation follow the chain (idempotent; the dispatcher repeats it)."""
        if op.id in self._settling:
            return
        self._settling.add(op.id)
        try:
            await self._settle(op)
        finally:
            self._settling.discard(op.id)

    async def _settle(self, op: Operation) -> None:
        members = op.doc["payouts"]
        n = len(members)
        info = await self._chain.info(op.current.txid) if op.state is OpState.CONFIRMED else None
        fee = op.receipt.fee_sun if op.receipt else 0
        energy = op.receipt.energy_used if op.receipt else 0
        net = int(info.net_usage) if info is not None else 0
        shares = {
            "fee_sun": fee // n,
            "energy_used": energy // n,
            "net_usage": net // n,
            "txid": op.current.txid,
        }
        if op.receipt is not None:
            TRX_BURNED.inc(fee)
            ENERGY_PER_RECIPIENT.observe(energy / n)
            BANDWIDTH_PER_RECIPIENT.observe(net / n)
        if op.doc["asset"] == TRX:
            (p,) = members
            if op.state is OpState.CONFIRMED:
                await self._finish(p["id"], op.id, CONFIRMED, {**shares, "confirm_time": op.confirm_time})
            else:
                await self._failed(p["id"], op, shares)
            return
        events = outcomes(info, op.doc["router"]) if info is not None else {}
        for p in members:
            ev = events.get(onchain_id(p["id"]))
            if ev is not None and ev.event in ("Paid", "AlreadyPaid"):
                if ev.recipient == p["to"] and ev.amount == int(p["amount"]):
                    await self._finish(
                        p["id"],
                        op.id,
                        CONFIRMED,
                        {**shares, "confirm_time": op.confirm_time, "onchain_event": ev.event},
                    )
                else:
                    why = f"ALREADY_PAID_DIFFERENTLY: the router recorded {ev.amount} to {ev.recipient}"
                    await self._finish(p["id"], op.id, FAILED, {**shares, "failure_reason": why})
            elif ev is not None:
                await self._finish(
                    p["id"], op.id, FAILED, {**shares, "failure_reason": f"ROUTER_{ev.reason}"}
                )
            else:
                await self._failed(p["id"], op, shares)

    async def _failed(self, pid: str, op: Operation, shares: Mapping[str, Any]) -> None:
        """No event for the payout: the router's own record decides (it may have been paid by an earlier
        transaction whose record was lost)."""
        doc = await self._payouts.find_one({"_id": pid})
        if doc is None:
            return
        if doc["asset"] == USDT:
            record = await self._chain.paid(op.doc["router"], pid)
            if record is not None and record == (doc["recipient_address"], int(doc["amount"])):
                await self._finish(
                    pid, op.id, CONFIRMED, {**shares, "confirm_time": _now(), "onchain_event": "payoutOf"}
                )
                return
        reason = op.failure_reason or f"{op.state.value}: not paid"
        if reason.startswith("PAYOUT_TIMEOUT"):
            TIMEOUTS.inc()
            log.error("ALERT payout timed out", extra={"fields": {"payout": pid, "op": op.id}})
        await self._finish(pid, op.id, FAILED, {**shares, "failure_reason": reason})

    async def _finish(self, pid: str, chunk: str, state: str, changes: Mapping[str, Any]) -> None:
        new = await self._payouts.find_one_and_update(
            {"_id": pid, "state": SUBMITTED, "chunk_id": chunk},
            {"$set": {**changes, "state": state, "update_time": _now()}},
            return_document=ReturnDocument.AFTER,
        )
        if new is None:
            return
        STATES.labels(new["asset"], state).inc()
        if state == CONFIRMED:
            TO_CONFIRMED.labels(new["asset"]).observe((_now() - new["create_time"]).total_seconds())
            await self._recipients.update_one(
                {"_id": new["recipient_address"]},
                {"$set": {"paid": True}, "$setOnInsert": {"first_seen": _now()}},
                upsert=True,
            )


# The contract type of an asset's payout transaction (a multi-signature permission must allow it).
_CONTRACT = {TRX: "TransferContract", USDT: "TriggerSmartContract"}


def _triples(group: Sequence[Document]) -> list[tuple[str, str, int]]:
    return [(d["_id"], d["recipient_address"], int(d["amount"])) for d in group]
