"""Mongo store of block sync: transfers, the durable transfer-event stream, the sync cursor and block log.

Collections (prefixed `tron_client_`):
  transfers        one document per transfer, `_id` = "<txid>:<event_index>", current state and block.
  transfer_events  one document per state change, `_id` = its cursor (int64, strictly increasing),
                   `key` = "<transfer_id>:<state>:<block_id>" (unique: a replayed block emits nothing twice).
  counters         `_id` "transfer_events": the last cursor handed out ($inc, single-document atomic).
  sync_blocks      `_id` = block number: block id and parent id of every applied block (fork detection).
  sync_state       `_id` "cursor": last applied block and the highest block known final.

Invariant of the stream (FerretDB has no transactions): block sync is the ONLY writer of transfer_events,
and it writes sequentially: cursors are allocated with one `$inc`, then the events are inserted in cursor
order (ordered insert) and awaited before the next allocation. So whenever a reader sees cursor c, every
event with a smaller cursor that will ever exist is already visible; a cursor lost to a crash between the
allocation and the insert is a gap that never fills, so readers never wait for it. A reader that resumes
after its last cursor therefore sees every later event exactly once, in order.

Write order per change (crash-safe, idempotent): event first (skipped when its key exists, reusing that
event's cursor), then the transfer document; the sync cursor advances only after both. A crash anywhere
replays the same blocks, which finds the events already there and emits nothing twice. FINAL never
changes: every transfer update is conditional on state != FINAL.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError
from tronpay.common.v1 import common_pb2

from services.common.mongo import Document, IndexSpec, ServiceDatabase

TRANSFERS = "transfers"
EVENTS = "transfer_events"
COUNTERS = "counters"
BLOCKS = "sync_blocks"
STATE = "sync_state"

INCLUDED = common_pb2.TRANSFER_STATE_INCLUDED
FINAL = common_pb2.TRANSFER_STATE_FINAL
REVERTED = common_pb2.TRANSFER_STATE_REVERTED

DUPLICATE_KEY = 11000

INDEXES: Sequence[IndexSpec] = (
    IndexSpec(EVENTS, [("key", 1)], unique=True, name="key"),
    IndexSpec(TRANSFERS, [("state", 1), ("block_number", 1)], name="state_block"),
    IndexSpec(TRANSFERS, [("from_address", 1), ("sort_key", 1)], name="from_sort"),
    IndexSpec(TRANSFERS, [("to_address", 1), ("sort_key", 1)], name="to_sort"),
)


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block as the log stores it."""

    number: int
    block_id: str
    parent_id: str
    time_ms: int


@dataclass(frozen=True, slots=True)
class Observed:
    """A transfer seen in a block: what moved, between whom (base58), and whether it failed on chain."""

    txid: str
    event_index: int  # index of the Transfer log in the transaction; -1 for TRX
    asset: int  # common_pb2.Asset
    token: str  # TRC20 contract (base58); "" for TRX
    from_address: str
    to_address: str
    amount: int
    failed: bool = False

    @property
    def transfer_id(self) -> str:
        return f"{self.txid}:{self.event_index}"


@dataclass(frozen=True, slots=True)
class Change:
    """A transfer entering `state` in `block`."""

    transfer: Observed
    state: int
    block: BlockRef


@dataclass(frozen=True, slots=True)
class SyncCursor:
    """Last applied block and the highest block number whose transfers are FINAL."""

    number: int
    block_id: str
    final_number: int


def _now() -> datetime:
    return datetime.now(UTC)


def _sort_key(block_number: int, txid: str, event_index: int) -> str:
    # Newest first in ListTransfers: block, then transaction, then log; fixed width so strings sort.
    return f"{block_number:012d}:{txid}:{event_index + 1:05d}"


def _observed_from_doc(doc: Document) -> Observed:
    return Observed(
        doc["txid"], doc["event_index"], doc["asset"], doc["token"], doc["from_address"], doc["to_address"],
        doc["amount"],
    )  # fmt: skip


def _block_from_doc(doc: Document) -> BlockRef:
    return BlockRef(doc["block_number"], doc["block_id"], "", doc["block_time_ms"])


def encode_page_token(value: dict[str, Any]) -> str:
    """Opaque page token (urlsafe base64 of compact JSON)."""
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_page_token(token: str) -> dict[str, Any]:
    """The value of a page token; ValueError when it is not one of ours."""
    try:
        value = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError) as exc:
        raise ValueError("not a page token") from exc
    if not isinstance(value, dict):
        raise ValueError("not a page token")
    return value


class TransferStore:
    """Transfers, their events and the sync cursor. All writes come from the block-sync task only."""

    def __init__(
        self, db: ServiceDatabase, watchers_of: Callable[[str, str], list[str]] | None = None
    ) -> None:
        self._transfers = db.collection(TRANSFERS)
        self._events = db.collection(EVENTS)
        self._counters = db.collection(COUNTERS)
        self._blocks = db.collection(BLOCKS)
        self._state = db.collection(STATE)
        # Who watches a transfer's addresses when an event is written (StreamTransfers' watcher filter).
        self._watchers_of = watchers_of or (lambda a, b: [])
        self.on_events: Callable[[int], None] = lambda n: None  # called after events are written

    # ---- sync cursor and block log -------------------------------------------------------------
    async def cursor(self) -> SyncCursor | None:
        doc = await self._state.find_one({"_id": "cursor"})
        if doc is None:
            return None
        return SyncCursor(doc["number"], doc["block_id"], doc["final_number"])

    async def set_cursor(self, cursor: SyncCursor) -> None:
        await self._state.update_one(
            {"_id": "cursor"},
            {"$set": {"number": cursor.number, "block_id": cursor.block_id,
                      "final_number": cursor.final_number, "update_time": _now()}},
            upsert=True,
        )  # fmt: skip

    async def block(self, number: int) -> BlockRef | None:
        doc = await self._blocks.find_one({"_id": number})
        return None if doc is None else BlockRef(number, doc["block_id"], doc["parent_id"], doc["time_ms"])

    async def save_blocks(self, blocks: Sequence[BlockRef]) -> None:
        """Record applied blocks; a block number already present (replay after a crash) is overwritten."""
        if not blocks:
            return
        docs = [{"_id": b.number, "block_id": b.block_id, "parent_id": b.parent_id, "time_ms": b.time_ms}
                for b in blocks]  # fmt: skip
        try:
            await self._blocks.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            dups = {e["index"] for e in exc.details.get("writeErrors", []) if e.get("code") == DUPLICATE_KEY}
            if len(dups) != len(exc.details.get("writeErrors", [])):
                raise
            for i in dups:
                await self._blocks.replace_one({"_id": docs[i]["_id"]}, docs[i], upsert=True)

    async def delete_blocks_above(self, number: int) -> None:
        await self._blocks.delete_many({"_id": {"$gt": number}})

    # ---- state changes ---------------------------------------------------------------------------
    async def apply(self, changes: Sequence[Change]) -> int:
        """Record transfers entering states (unchanged and FINAL ones skipped); returns events written."""
        if not changes:
            return 0
        ids = list({c.transfer.transfer_id for c in changes})
        current = {
            d["_id"]: d
            async for d in self._transfers.find(
                {"_id": {"$in": ids}}, {"state": 1, "block_id": 1, "create_time": 1}
            )
        }
        todo: list[Change] = []
        for c in changes:
            doc = current.get(c.transfer.transfer_id)
            if doc is not None and (
                doc["state"] == FINAL or (doc["state"], doc["block_id"]) == (c.state, c.block.block_id)
            ):
                continue
            todo.append(c)
        return await self._emit(todo, {k: v.get("create_time") for k, v in current.items()})

    async def finalize(self, up_to: int) -> int:
        """INCLUDED -> FINAL for every transfer in a block <= up_to. Returns events written."""
        docs = [d async for d in self._transfers.find(
            {"state": INCLUDED, "block_number": {"$lte": up_to}}).sort("sort_key", ASCENDING)]  # fmt: skip
        changes = [Change(_observed_from_doc(d), FINAL, _block_from_doc(d)) for d in docs]
        return await self._emit(changes, {d["_id"]: d.get("create_time") for d in docs})

    async def revert_above(self, number: int) -> int:
        """INCLUDED -> REVERTED for every transfer in a block > number (dropped by a fork)."""
        docs = [d async for d in self._transfers.find(
            {"state": INCLUDED, "block_number": {"$gt": number}}).sort("sort_key", ASCENDING)]  # fmt: skip
        changes = [Change(_observed_from_doc(d), REVERTED, _block_from_doc(d)) for d in docs]
        return await self._emit(changes, {d["_id"]: d.get("create_time") for d in docs})

    async def _emit(self, changes: list[Change], created: dict[str, Any]) -> int:
        if not changes:
            return 0
        keys = [f"{c.transfer.transfer_id}:{c.state}:{c.block.block_id}" for c in changes]
        # Events a crashed earlier attempt already wrote keep their cursor (no duplicate, no new cursor).
        known = {d["key"]: d["_id"] async for d in self._events.find({"key": {"$in": keys}}, {"key": 1})}
        fresh = [i for i, k in enumerate(keys) if k not in known]
        cursors: dict[int, int] = {i: known[k] for i, k in enumerate(keys) if k in known}
        now = _now()
        events = []
        if fresh:
            counter = await self._counters.find_one_and_update(
                {"_id": EVENTS},
                {"$inc": {"value": len(fresh)}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            first = int(counter["value"]) - len(fresh) + 1
            for n, i in enumerate(fresh):
                cursors[i] = first + n
                c = changes[i]
                t = c.transfer
                events.append({
                    "_id": first + n, "key": keys[i], "transfer_id": t.transfer_id, "state": c.state,
                    **self._fields(c), "create_time": created.get(t.transfer_id) or now, "event_time": now,
                    "watchers": self._watchers_of(t.from_address, t.to_address),
                })  # fmt: skip
            # Ordered: readers see a prefix of the batch, never a later cursor before an earlier one.
            await self._events.insert_many(events, ordered=True)
        ops = []
        for i, c in enumerate(changes):
            t = c.transfer
            ops.append(UpdateOne(
                {"_id": t.transfer_id, "state": {"$ne": FINAL}},
                {"$set": {**self._fields(c), "state": c.state, "cursor": cursors[i], "update_time": now},
                 "$setOnInsert": {"create_time": now}},
                upsert=True,
            ))  # fmt: skip
        try:
            await self._transfers.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            # A FINAL transfer does not match the filter, so its upsert collides on _id: nothing to change.
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
        if events:
            self.on_events(len(events))
        return len(events)

    @staticmethod
    def _fields(c: Change) -> Document:
        t, b = c.transfer, c.block
        return {
            "txid": t.txid, "event_index": t.event_index, "asset": t.asset, "token": t.token,
            "from_address": t.from_address, "to_address": t.to_address, "amount": t.amount,
            "block_number": b.number, "block_id": b.block_id, "block_time_ms": b.time_ms,
            "sort_key": _sort_key(b.number, t.txid, t.event_index),
        }  # fmt: skip

    # ---- reading ---------------------------------------------------------------------------------
    async def events_after(self, cursor: int, limit: int) -> list[Document]:
        """Events with a cursor > `cursor`, in cursor order."""
        return [
            d async for d in self._events.find({"_id": {"$gt": cursor}}).sort("_id", ASCENDING).limit(limit)
        ]

    async def last_cursor(self) -> int:
        doc = await self._counters.find_one({"_id": EVENTS})
        return 0 if doc is None else int(doc["value"])

    async def transfer(self, transfer_id: str) -> Document | None:
        return await self._transfers.find_one({"_id": transfer_id})

    async def list_transfers(
        self, address: str, *, asset: int, direction: int, page_size: int, after: str | None
    ) -> tuple[list[Document], str | None]:
        """Transfers touching `address`, newest first; `after` is the sort key the previous page ended at."""
        if direction == common_pb2.DIRECTION_INCOMING:
            match: Document = {"to_address": address}
        elif direction == common_pb2.DIRECTION_OUTGOING:
            match = {"from_address": address}
        elif direction == common_pb2.DIRECTION_SELF:
            match = {"from_address": address, "to_address": address}
        else:
            match = {"$or": [{"from_address": address}, {"to_address": address}]}
        if asset:
            match["asset"] = asset
        if after is not None:
            match["sort_key"] = {"$lt": after}
        docs = [
            d async for d in self._transfers.find(match).sort("sort_key", DESCENDING).limit(page_size + 1)
        ]
        more = len(docs) > page_size
        docs = docs[:page_size]
        return docs, (docs[-1]["sort_key"] if more else None)


def changes_for(observed: Iterable[Observed], block: BlockRef, final: bool) -> list[Change]:
    """The state each observed transfer enters when its block is applied: failed on chain -> REVERTED,
    else FINAL when the block was already solidified when fetched, else INCLUDED."""
    base = FINAL if final else INCLUDED
    return [Change(o, REVERTED if o.failed else base, block) for o in observed]
