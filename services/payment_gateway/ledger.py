"""Reconciliation against the chain and the per-merchant report, over the payments and the journal
(services.payment_gateway.journal).

Reconciliation reads the chain at the solidified block and compares, per payment of the period: the payment's
state with the one its transfers give; its final transfers with tron-client's records of the deposit
address; the journal with the final transfers; and the deposit address's ledger balance with its balance on
chain. Each difference is a Discrepancy of a kind."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc

from services.common import context
from services.common.background import BackgroundLoop
from services.common.chain_ops import upstream_error
from services.common.logging import get_logger
from services.common.mongo import Document
from services.common.server import Runtime
from services.common.settings import ServiceName
from services.payment_gateway import metrics
from services.payment_gateway import state as st
from services.payment_gateway.detection import CURSORS, STREAM
from services.payment_gateway.journal import Journal
from services.payment_gateway.payments import PAYMENTS, UNMATCHED, USDT, Payments
from services.payment_gateway.settings import PaymentGatewaySettings

log = get_logger(__name__)

READ_CONCURRENCY = 16
EXPIRY_GRACE = timedelta(seconds=30)  # an open payment just past its time: the expiry pass has not run yet
MISSING_ON_CHAIN, UNRECORDED_ON_CHAIN, AMOUNT_MISMATCH, STATE_MISMATCH, LEDGER_MISMATCH = (
    "MISSING_ON_CHAIN",
    "UNRECORDED_ON_CHAIN",
    "AMOUNT_MISMATCH",
    "STATE_MISMATCH",
    "LEDGER_MISMATCH",
)
KINDS = (MISSING_ON_CHAIN, UNRECORDED_ON_CHAIN, AMOUNT_MISMATCH, STATE_MISMATCH, LEDGER_MISMATCH)


@dataclass(frozen=True, slots=True)
class Found:
    """One discrepancy."""

    kind: str
    payment_id: str
    txid: str = ""
    recorded: int = 0
    chain: int = 0
    detail: str = ""


@dataclass(slots=True)
class Total:
    payments: int = 0
    expected: int = 0
    received: int = 0
    refunded: int = 0
    chain: int = 0


@dataclass(slots=True)
class Reconciliation:
    """A reconciliation's result: totals per asset, payments per state, discrepancies, the block read at."""

    start: datetime
    end: datetime
    block: int = 0
    totals: dict[str, Total] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    found: list[Found] = field(default_factory=list)
    balances: dict[tuple[str, str], int] = field(default_factory=dict)  # the journal's, by (account, asset)


class Ledger(BackgroundLoop):
    """Reconciliation and reports over the payments, the journal and the chain."""

    def __init__(self, rt: Runtime[PaymentGatewaySettings], payments: Payments, journal: Journal) -> None:
        self._settings = rt.settings
        self._clients = rt.clients
        self._payments = payments
        self._journal = journal
        self.journal = journal.entries
        self._payments_col = rt.db.collection(PAYMENTS)
        self._unmatched = rt.db.collection(UNMATCHED)
        self._cursors = rt.db.collection(CURSORS)

    @property
    def _tron(self) -> tc_grpc.TronClientServiceStub:
        return self._clients.stub(ServiceName.TRON_CLIENT, tc_grpc.TronClientServiceStub)

    # ---- reconciliation ---------------------------------------------------------------------------
    async def reconcile(self, start: datetime, end: datetime, merchant: str = "") -> Reconciliation:
        query: Document = {"create_time": {"$gte": start, "$lt": end}}
        if merchant:
            query["merchant_id"] = merchant
        if (tenant := context.tenant_scope()) is not None:
            query["tenant"] = tenant
        out = Reconciliation(start, end)
        try:
            solid = (await self._tron.GetNetworkHeight(tc.GetNetworkHeightRequest())).solidified_block_number
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the solidified block") from None
        # Valid at the last block whose final transfers detection has applied (never beyond the solidified);
        # read before the payments, so they hold every final transfer up to it.
        cursor = await self._cursors.find_one({"_id": STREAM}) or {}
        out.block = min(int(solid), int(cursor.get("final_block", 0)))
        docs = [d async for d in self._payments_col.find(query, {"events": 0}).sort("_id", 1)]
        entries = await self._entries([d["_id"] for d in docs])
        out.balances = await self.balances(merchant)
        gate = asyncio.Semaphore(READ_CONCURRENCY)

        async def one(d: Document) -> list[Found]:
            async with gate:
                return await self._check(d, entries.get(d["_id"], []), out)

        results = await asyncio.gather(*(one(d) for d in docs))
        for d, found in zip(docs, results, strict=True):
            out.states[d["state"]] = out.states.get(d["state"], 0) + 1
            out.found.extend(found)
        return out

    async def _entries(self, pids: Sequence[str]) -> dict[str, list[Document]]:
        by_payment: dict[str, list[Document]] = {}
        for i in range(0, len(pids), 500):
            async for e in self.journal.find({"payment_id": {"$in": list(pids[i : i + 500])}}):
                by_payment.setdefault(e["payment_id"], []).append(e)
        return by_payment

    async def _check(self, d: Document, entries: list[Document], out: Reconciliation) -> list[Found]:
        pid, address, asset = d["_id"], d["deposit_address"], d["asset"]
        found: list[Found] = []
        total = out.totals.setdefault(asset, Total())
        total.payments += 1
        total.expected += int(d["amount"])
        total.received += int(d.get("received", 0))
        total.refunded += int(d.get("refunded", 0))
        expected = self._payments.recomputed_state(d)
        just_expired = d["state"] in st.OPEN and datetime.now(UTC) - d["expire_at"] < EXPIRY_GRACE
        if expected != d["state"] and not just_expired:  # (the expiry pass runs every PAYMENT_POLL_SECONDS)
            found.append(
                Found(STATE_MISMATCH, pid, detail=f"state {d['state']}, its transfers give {expected}")
            )
        ours = {t["id"]: t for t in d["transfers"]}
        chain, later = await self._incoming(address, asset, out.block)
        inbox = {u["_id"] async for u in self._unmatched.find({"to": address}, {"_id": 1})}
        for tid, t in chain.items():
            mine = ours.get(tid)
            if mine is None and tid not in inbox:
                found.append(
                    Found(
                        UNRECORDED_ON_CHAIN,
                        pid,
                        t.txid,
                        0,
                        int(t.amount),
                        "a final transfer to the deposit address is not on the payment",
                    )
                )
            elif mine is not None and int(mine["amount"]) != int(t.amount):
                found.append(
                    Found(
                        AMOUNT_MISMATCH,
                        pid,
                        t.txid,
                        int(mine["amount"]),
                        int(t.amount),
                        "recorded and on-chain amounts differ",
                    )
                )
        for tid, t in ours.items():
            if t["state"] == st.FINAL and tid not in chain and int(t["block"]) <= out.block:
                found.append(
                    Found(
                        MISSING_ON_CHAIN,
                        pid,
                        t["txid"],
                        int(t["amount"]),
                        0,
                        "a transfer recorded final is not a final transfer on chain",
                    )
                )
        posted = {e["_id"]: e for e in entries}
        for t in d["transfers"]:
            if t["state"] != st.FINAL:
                continue
            if t.get("assigned"):
                entry = posted.get(f"je_asgn_{t['id']}")
                amount = _credit(entry, f"merchant:{d['merchant_id']}")
            else:
                entry = posted.get(f"je_rcpt_{t['id']}")
                amount = _credit(entry, self._journal.receipt_account(d, t))
            if amount != int(t["amount"]):
                found.append(
                    Found(
                        LEDGER_MISMATCH,
                        pid,
                        t["txid"],
                        amount,
                        int(t["amount"]),
                        "the final transfer's receipt is missing from the journal"
                        if entry is None
                        else "the receipt's amount differs",
                    )
                )
        ledger_balance = out.balances.get((f"deposit:{address}", asset), 0)
        chain_balance = await self._balance(address, d.get("token", ""), asset)
        total.chain += chain_balance
        # The balance is read at the solidified block: compare it only when nothing moved since out.block.
        settled = not later and all(t["state"] != st.INCLUDED for t in d["transfers"])
        if settled and ledger_balance != chain_balance:
            found.append(
                Found(
                    LEDGER_MISMATCH,
                    pid,
                    "",
                    ledger_balance,
                    chain_balance,
                    f"the ledger holds {ledger_balance} at {address}, the chain {chain_balance}",
                )
            )
        return found

    async def balances(self, merchant: str = "") -> dict[tuple[str, str], int]:
        """(account, asset) -> balance (debits minus credits) of every account in the journal (one pass)."""
        out: dict[tuple[str, str], int] = {}
        query = {"merchant_id": merchant} if merchant else {}
        async for e in self.journal.find(query, {"lines": 1, "asset": 1}):
            for x in e["lines"]:
                key = (x["account"], e["asset"])
                out[key] = out.get(key, 0) + int(x["debit"]) - int(x["credit"])
        return out

    async def _incoming(self, address: str, asset: str, block: int) -> tuple[dict[str, tc.Transfer], bool]:
        """tron-client's final incoming transfers of the asset at an address up to `block`, by transfer id,
        and whether any transfer of the asset touched the address after it."""
        want = common_pb2.ASSET_USDT if asset == USDT else common_pb2.ASSET_TRX
        out: dict[str, tc.Transfer] = {}
        later = False
        token = ""
        try:
            while True:
                page = await self._tron.ListTransfers(
                    tc.ListTransfersRequest(address=address, page_size=1000, page_token=token, asset=want)
                )
                for t in page.transfers:
                    if t.state == common_pb2.TRANSFER_STATE_REVERTED:
                        continue
                    if t.block.number > block:
                        later = True
                    elif t.to_address == address and t.state == common_pb2.TRANSFER_STATE_FINAL:
                        out[t.transfer_id] = t
                if not (token := page.next_page_token):
                    return out, later
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to list transfers") from None

    async def _balance(self, address: str, token: str, asset: str) -> int:
        try:
            if asset == USDT:
                answer = await self._tron.GetTokenBalance(
                    tc.GetTokenBalanceRequest(address=address, token_address=token, solidified=True)
                )
                return int(answer.balance)
            account = await self._tron.GetAccount(tc.GetAccountRequest(address=address))
            return int(account.account.balance_sun)
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read a balance") from None

    async def run(self) -> None:
        """The continuous job: the last day, every PAYMENT_RECONCILE_SECONDS, into the metrics."""
        while True:
            await asyncio.sleep(self._settings.PAYMENT_RECONCILE_SECONDS)
            try:
                now = datetime.now(UTC)
                result = await self.reconcile(now - timedelta(days=1), now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # retried next period; the metric keeps its last value
                log.warning("reconciliation failed", extra={"fields": {"error": str(exc)}})
                continue
            for kind in KINDS:
                metrics.DISCREPANCIES.labels(kind).set(sum(f.kind == kind for f in result.found))
            metrics.RECONCILED_BLOCK.set(result.block)
            if result.found:
                log.warning(
                    "reconciliation found discrepancies",
                    extra={"fields": {"count": len(result.found), "block": result.block}},
                )

    # ---- report -----------------------------------------------------------------------------------
    async def report(self, start: datetime, end: datetime, merchant: str = "") -> list[Document]:
        """Rows per (merchant, day, asset): counts and amounts by state, success rate, time to PAID."""
        query: Document = {"create_time": {"$gte": start, "$lt": end}}
        if merchant:
            query["merchant_id"] = merchant
        if (tenant := context.tenant_scope()) is not None:
            query["tenant"] = tenant
        rows: dict[tuple[str, str, str], Document] = {}
        fields = {
            "merchant_id": 1,
            "asset": 1,
            "state": 1,
            "amount": 1,
            "received": 1,
            "refunded": 1,
            "create_time": 1,
            "paid_time": 1,
        }
        async for d in self._payments_col.find(query, fields):
            key = (d["merchant_id"], d["create_time"].strftime("%Y-%m-%d"), d["asset"])
            row = rows.setdefault(
                key,
                {"count": 0, "states": {}, "amounts": {}, "received": 0, "refunded": 0, "paid_seconds": []},
            )
            row["count"] += 1
            row["states"][d["state"]] = row["states"].get(d["state"], 0) + 1
            row["amounts"][d["state"]] = row["amounts"].get(d["state"], 0) + int(d["amount"])
            row["received"] += int(d.get("received", 0))
            row["refunded"] += int(d.get("refunded", 0))
            if d.get("paid_time"):
                row["paid_seconds"].append((d["paid_time"] - d["create_time"]).total_seconds())
        out = []
        for (m, day, asset), row in sorted(rows.items()):
            closed = row["count"] - sum(row["states"].get(s, 0) for s in st.OPEN)
            succeeded = sum(row["states"].get(s, 0) for s in st.SUCCESS)
            paid = sorted(row["paid_seconds"])
            out.append(
                {
                    "merchant_id": m,
                    "day": day,
                    "asset": asset,
                    **row,
                    "success_rate_bps": succeeded * 10_000 // closed if closed else 0,
                    "median_paid": statistics.median(paid) if paid else 0.0,
                    "p99_paid": paid[min(len(paid) - 1, int(len(paid) * 0.99))] if paid else 0.0,
                }
            )
        return out


def _debit(entry: Mapping[str, Any] | None, account: str) -> int:
    return sum(int(x["debit"]) for x in _lines(entry, account))


def _credit(entry: Mapping[str, Any] | None, account: str) -> int:
    return sum(int(x["credit"]) for x in _lines(entry, account))


def _lines(entry: Mapping[str, Any] | None, account: str) -> Iterable[Mapping[str, Any]]:
    return (x for x in (entry or {}).get("lines", ()) if x["account"] == account)
