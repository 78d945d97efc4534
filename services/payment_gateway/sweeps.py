"""Sweeping: funds on deposit addresses move to the merchant's collection address.

Each pass (every PAYMENT_SWEEP_INTERVAL_SECONDS) reads the deposit addresses' balances from the journal (what
final receipts put there minus what sweeps took) and sweeps an address whose balance reached the threshold
(THRESHOLD), whose oldest unswept receipt is older than the age limit (AGE), or, with a zero threshold, every
funded address at each pass (WINDOW). One sweep per address and asset is open at a time: a lock document
(`sweep_locks`, `_id` address:asset) names it, inserted once (before the sweep), removed when the sweep ends;
a lock a crash left without its sweep is removed once it is ORPHAN_LOCK_AGE old.

A USDT sweep's sender is the deposit address itself, which holds no TRX: the fee wallet
(PAYMENT_SWEEP_FEE_WALLET_ID) first sends it TRX for bandwidth (which also activates it), then trx-staking's
energy broker delegates the transfer's energy (PAYMENT_SWEEP_ENERGY_BROKER), so the sweep burns no TRX for
energy where the stake covers it; when the broker refuses, a second top-up covers the energy to burn. The
USDT transfer itself goes through usdt-manager, whose pre-checks refuse a blacklisted sender or recipient
before anything is signed (the sweep then ends FAILED with that reason). Every step is keyed by the sweep id
(`<id>`, `<id>-fee`, `<id>-burn`), so a pass after a crash continues the same sends instead of paying again.
A confirmed sweep posts its journal entries (the move, and the fees)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import orjson
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc
from tronpay.trx_staking.v1 import trx_staking_pb2 as ts
from tronpay.trx_staking.v1 import trx_staking_pb2_grpc as ts_grpc

from services.common import errors
from services.common.background import BackgroundLoop
from services.common.chain_ops import PeerReads, upstream_error
from services.common.logging import get_logger
from services.common.mongo import Document, IndexSpec
from services.common.pagination import NEWEST_FIRST, newest_first
from services.common.server import Runtime
from services.common.settings import ServiceName
from services.common.tron.abi import encode_args
from services.payment_gateway import metrics
from services.payment_gateway.journal import Journal, line
from services.payment_gateway.payments import ADDRESSES, PAYMENTS, TRX, USDT
from services.payment_gateway.sending import CONFIRMED, FAILED, SUBMITTED, Sender
from services.payment_gateway.settings import PaymentGatewaySettings

log = get_logger(__name__)

SWEEPS, LOCKS = "sweeps", "sweep_locks"
PENDING = "PENDING"
INDEXES = (IndexSpec(SWEEPS, [("create_time", -1), ("_id", -1)]), IndexSpec(SWEEPS, [("state", 1)]))
BANDWIDTH_RESERVE_SUN = (
    1_000_000  # TRX kept for a USDT sweep's bandwidth (about 345 bytes burned at 1,000 sun)
)
#: A lock this old names a sweep that exists, or one a crash kept from being inserted (_drop_orphan_lock).
ORPHAN_LOCK_AGE = timedelta(seconds=30)
TRX_SWEEP_RESERVE_SUN = 300_000  # what a TRX sweep leaves for its own bandwidth when it has none free
ENERGY_MARGIN_PERCENT = 20


def _now() -> datetime:
    return datetime.now(UTC)


class Sweeps(BackgroundLoop):
    """The sweep pass and the driver of open sweeps."""

    def __init__(self, rt: Runtime[PaymentGatewaySettings], journal: Journal, sender: Sender) -> None:
        self._settings = rt.settings
        self._clients = rt.clients
        self._journal = journal
        self._sender = sender
        self._reads = PeerReads(rt.clients)
        self.sweeps = rt.db.collection(SWEEPS)
        self._locks = rt.db.collection(LOCKS)
        self._payments = rt.db.collection(PAYMENTS)
        self._addresses = rt.db.collection(ADDRESSES)
        self._collection = {
            k: str(v) for k, v in orjson.loads(rt.settings.PAYMENT_COLLECTION_ADDRESSES).items()
        }

    @property
    def _tron(self) -> tc_grpc.TronClientServiceStub:
        return self._clients.stub(ServiceName.TRON_CLIENT, tc_grpc.TronClientServiceStub)

    @property
    def _staking(self) -> ts_grpc.TrxStakingServiceStub:
        return self._clients.stub(ServiceName.TRX_STAKING, ts_grpc.TrxStakingServiceStub)

    def start(self) -> None:
        if self._settings.PAYMENT_SWEEP_ENABLED:
            super().start()

    def collection_address(self, merchant: str) -> str:
        return self._collection.get(merchant, self._settings.PAYMENT_DEFAULT_COLLECTION_ADDRESS)

    async def find(self, filters: Document, after: Any, limit: int) -> list[Document]:
        query = newest_first(filters, after)
        cursor = self.sweeps.find(query).sort(NEWEST_FIRST)
        return [d async for d in cursor.limit(limit)]

    # ---- deciding ---------------------------------------------------------------------------------
    async def funded(self) -> dict[tuple[str, str], Document]:
        """(deposit address, asset) -> {balance, oldest receipt time, payments} from the journal."""
        out: dict[tuple[str, str], Document] = {}
        async for e in self._journal.entries.find({"lines.class": "deposit"}):
            for x in e["lines"]:
                if x["class"] != "deposit":
                    continue
                key = (x["account"].partition(":")[2], e["asset"])
                row = out.setdefault(key, {"balance": 0, "oldest": None, "payments": set(), "merchant": ""})
                row["balance"] += int(x["debit"]) - int(x["credit"])
                row["merchant"] = e["merchant_id"]
                if x["debit"] and e["kind"] == "RECEIPT":
                    row["payments"].add(e.get("payment_id", ""))
                    if row["oldest"] is None or e["create_time"] < row["oldest"]:
                        row["oldest"] = e["create_time"]
        return {k: v for k, v in out.items() if v["balance"] > 0}

    async def pass_once(self) -> int:
        """Open a sweep for each funded address a trigger selects; drive the open ones. Returns how many
        sweeps it opened."""
        s = self._settings
        opened = 0
        funded = await self.funded()
        for asset in (USDT, TRX):
            metrics.SWEEP_QUEUE.labels(asset).set(sum(1 for (_, a) in funded if a == asset))
        for (address, asset), row in funded.items():
            threshold = s.PAYMENT_SWEEP_THRESHOLD_USDT if asset == USDT else s.PAYMENT_SWEEP_THRESHOLD_TRX
            old = row["oldest"] is not None and _now() - row["oldest"].replace(tzinfo=UTC) >= timedelta(
                seconds=s.PAYMENT_SWEEP_MAX_AGE_SECONDS
            )
            trigger = (
                "WINDOW"
                if threshold == 0
                else "THRESHOLD"
                if row["balance"] >= threshold
                else "AGE"
                if old
                else ""
            )
            to = self.collection_address(row["merchant"])
            if not trigger or not to or (asset == USDT and not s.PAYMENT_SWEEP_FEE_WALLET_ID):
                continue
            opened += await self._open(address, asset, row, to, trigger)
        async for doc in self.sweeps.find({"state": {"$in": [PENDING, SUBMITTED]}}):
            try:
                await self.advance(doc)
            except Exception as exc:  # a peer out of reach: the next pass continues the same sends
                log.warning("sweep step failed", extra={"fields": {"sweep": doc["_id"], "error": str(exc)}})
        return opened

    async def _open(self, address: str, asset: str, row: Mapping[str, Any], to: str, trigger: str) -> int:
        owner = await self._addresses.find_one({"_id": address})
        payment = owner and await self._payments.find_one(
            {"_id": owner["payment_id"]}, {"wallet_id": 1, "token": 1, "tenant": 1}
        )
        if payment is None:
            return 0
        sid = "sw_" + uuid.uuid4().hex[:24]
        try:
            await self._locks.insert_one(
                {"_id": f"{address}:{asset}", "sweep_id": sid, "create_time": _now()}
            )
        except DuplicateKeyError:
            await self._drop_orphan_lock(f"{address}:{asset}")  # the next pass opens it then
            return 0  # a sweep of this address is open
        now = _now()
        amount = int(row["balance"])
        if asset == TRX:
            amount -= await self._trx_reserve(address)
            if amount <= 0:
                await self._locks.delete_one({"_id": f"{address}:{asset}", "sweep_id": sid})
                return 0
        await self.sweeps.insert_one(
            {
                "_id": sid,
                "merchant_id": row["merchant"],
                "tenant": payment.get("tenant", row["merchant"]),
                "asset": asset,
                "token": payment.get("token", ""),
                "wallet_id": payment["wallet_id"],
                "from": address,
                "to": to,
                "amount": amount,
                "payment_ids": sorted(p for p in row["payments"] if p),
                "trigger": trigger,
                "state": PENDING,
                "fee_sun": 0,
                "txid": "",
                "handle": "",
                "failure_reason": "",
                "create_time": now,
                "update_time": now,
            }
        )
        metrics.SWEEPS.labels(asset, PENDING).inc()
        return 1

    async def _drop_orphan_lock(self, key: str) -> None:
        """A crash between inserting a lock and its sweep leaves a lock naming no sweep, which would keep the
        address from ever being swept: such a lock, old enough that no `_open` can still be between its two
        inserts, is removed."""
        lock = await self._locks.find_one({"_id": key, "create_time": {"$lt": _now() - ORPHAN_LOCK_AGE}})
        if lock is None or await self.sweeps.find_one({"_id": lock["sweep_id"]}, {"_id": 1}) is not None:
            return
        await self._locks.delete_one({"_id": key, "sweep_id": lock["sweep_id"]})
        log.warning("removed a sweep lock a crash left without its sweep", extra={"fields": {"lock": key}})

    async def _trx_reserve(self, address: str) -> int:
        try:
            res = await self._tron.GetAccountResource(tc.GetAccountResourceRequest(address=address))
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the address's bandwidth") from None
        free = int(res.resource.free_net_limit) - int(res.resource.free_net_used)
        return 0 if free >= 300 else TRX_SWEEP_RESERVE_SUN

    # ---- driving ----------------------------------------------------------------------------------
    async def advance(self, doc: Document) -> Document:
        sid = doc["_id"]
        if doc["state"] == PENDING:
            if await self._locks.find_one({"_id": f"{doc['from']}:{doc['asset']}", "sweep_id": sid}) is None:
                return await self._end(
                    doc, FAILED, failure_reason="SUPERSEDED"
                )  # a crash left it half-opened
            if doc["asset"] == USDT and not await self._fees_ready(doc):
                return doc
            sent = await self._sender.send(
                sid,
                asset=doc["asset"],
                token=doc["token"],
                wallet_id=doc["wallet_id"],
                from_address=doc["from"],
                to=doc["to"],
                amount=int(doc["amount"]),
            )
            if sent.state == FAILED:
                return await self._end(doc, FAILED, failure_reason=sent.reason)
            doc = await self._move(doc, SUBMITTED, handle=sent.handle, txid=sent.txid)
        if doc["state"] == SUBMITTED:
            sent = await self._sender.status(doc["asset"], doc["handle"])
            if sent.state == CONFIRMED:
                await self._post(doc, sent.txid, sent.fee_sun)
                return await self._end(
                    doc, CONFIRMED, txid=sent.txid, fee_sun=int(doc["fee_sun"]) + sent.fee_sun
                )
            if sent.state == FAILED:
                return await self._end(doc, FAILED, failure_reason=sent.reason, txid=sent.txid)
        return doc

    async def _fees_ready(self, doc: Document) -> bool:
        """TRX for bandwidth at the deposit address, then the energy from the broker (or TRX to burn)."""
        s = self._settings
        topped = await self._top_up(doc, "fee", BANDWIDTH_RESERVE_SUN)
        if not topped:
            return False
        parameter = encode_args(["address", "uint256"], [doc["to"], int(doc["amount"])])
        try:
            estimate = await self._tron.EstimateEnergy(
                tc.EstimateEnergyRequest(
                    owner_address=doc["from"],
                    contract_address=doc["token"],
                    function_selector="transfer(address,uint256)",
                    parameter=parameter,
                )
            )
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to estimate the sweep's energy") from None
        energy = int(estimate.energy_required)
        if s.PAYMENT_SWEEP_ENERGY_BROKER:
            answer = await self._staking.RequestEnergy(
                ts.RequestEnergyRequest(
                    request_id=f"{doc['_id']}-energy-{doc.get('energy_asks', 0)}",
                    address=doc["from"],
                    energy=energy,
                )
            )
            if answer.outcome in (
                ts.RequestEnergyResponse.OUTCOME_AVAILABLE,
                ts.RequestEnergyResponse.OUTCOME_DELEGATED,
            ):
                return True
            if answer.outcome == ts.RequestEnergyResponse.OUTCOME_PENDING:
                await self.sweeps.update_one({"_id": doc["_id"]}, {"$inc": {"energy_asks": 1}})
                return False
        burn = energy * int(estimate.energy_price_sun) * (100 + ENERGY_MARGIN_PERCENT) // 100
        return await self._top_up(doc, "burn", BANDWIDTH_RESERVE_SUN + burn)

    async def _top_up(self, doc: Document, step: str, need: int) -> bool:
        """Whether the deposit address holds `need` sun, after (once) sending it the difference."""
        key = f"{doc['_id']}-{step}"
        sent_handle = doc.get("topups", {}).get(step)
        if sent_handle is None:
            account = (await self._tron.GetAccount(tc.GetAccountRequest(address=doc["from"]))).account
            missing = need - int(account.balance_sun)
            if missing <= 0:
                return True
            fee_wallet = self._settings.PAYMENT_SWEEP_FEE_WALLET_ID
            payer = await self._reads.signing_address(fee_wallet, "", "PAYMENT_SWEEP_FEE_WALLET_ID", _refuse)
            sent = await self._sender.send(
                key,
                asset=TRX,
                token="",
                wallet_id=fee_wallet,
                from_address=payer,
                to=doc["from"],
                amount=missing,
            )
            await self.sweeps.update_one(
                {"_id": doc["_id"]},
                {
                    "$set": {
                        f"topups.{step}": sent.handle,
                        f"topup_amounts.{step}": missing,
                        "fee_payer": payer,
                    }
                },
            )
            if sent.state == FAILED:
                await self._end(doc, FAILED, failure_reason=f"TOP_UP_{sent.reason}")
                return False
            sent_handle = sent.handle
        status = await self._sender.status(TRX, sent_handle)
        if status.state == FAILED:
            await self._end(doc, FAILED, failure_reason=f"TOP_UP_{status.reason}")
            return False
        if status.state != CONFIRMED:
            return False
        await self._post_top_up(doc, step, status.txid, status.fee_sun)
        return True

    async def _post_top_up(self, doc: Document, step: str, txid: str, fee: int) -> None:
        fresh = await self.sweeps.find_one({"_id": doc["_id"]}) or doc
        amount, payer, m = int(fresh["topup_amounts"][step]), fresh["fee_payer"], doc["merchant_id"]
        lines = [line(f"deposit:{doc['from']}", debit=amount), line(f"hot:{payer}", credit=amount)]
        if fee:
            lines += [line(f"fees:{m}", debit=fee), line(f"hot:{payer}", credit=fee)]
        await self._journal.post(
            f"je_swtop_{doc['_id']}_{step}", "FEE", m, TRX, lines, txid=txid, ref=doc["_id"]
        )

    async def _post(self, doc: Document, txid: str, fee: int) -> None:
        amount, m, frm = int(doc["amount"]), doc["merchant_id"], doc["from"]
        await self._journal.post(
            f"je_swp_{doc['_id']}",
            "SWEEP",
            m,
            doc["asset"],
            [line(f"collection:{doc['to']}", debit=amount), line(f"deposit:{frm}", credit=amount)],
            txid=txid,
            ref=doc["_id"],
        )
        if fee:  # burned by the deposit address itself (its TRX: the top-ups, or a TRX payment's own)
            await self._journal.post(
                f"je_swfee_{doc['_id']}",
                "FEE",
                m,
                TRX,
                [line(f"fees:{m}", debit=fee), line(f"deposit:{frm}", credit=fee)],
                txid=txid,
                ref=doc["_id"],
            )

    async def _move(self, doc: Document, state: str, **fields: Any) -> Document:
        new = await self.sweeps.find_one_and_update(
            {"_id": doc["_id"], "state": doc["state"]},
            {"$set": {"state": state, **fields, "update_time": _now()}},
            return_document=ReturnDocument.AFTER,
        )
        if new is None:
            return await self.sweeps.find_one({"_id": doc["_id"]}) or doc
        if state != doc["state"]:
            metrics.SWEEPS.labels(doc["asset"], state).inc()
        return new

    async def _end(self, doc: Document, state: str, **fields: Any) -> Document:
        new = await self._move(doc, state, **fields)
        await self._locks.delete_one({"_id": f"{doc['from']}:{doc['asset']}", "sweep_id": doc["_id"]})
        if state == FAILED:
            log.warning(
                "sweep failed", extra={"fields": {"sweep": doc["_id"], "reason": new.get("failure_reason")}}
            )
        return new

    async def run(self) -> None:
        while True:
            try:
                await self.pass_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # retried next pass
                log.warning("sweep pass failed", extra={"fields": {"error": str(exc)}})
            await asyncio.sleep(self._settings.PAYMENT_SWEEP_INTERVAL_SECONDS)


def _refuse(reason: str, message: str, **metadata: object) -> errors.DomainError:
    return errors.FailedPrecondition(
        message, reason=reason, metadata={k: str(v) for k, v in metadata.items()}
    )
