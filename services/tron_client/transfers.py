"""Mongo store of block sync: transfers, the durable transfer-event stream, the sync cursor and block log.

Collections (prefixed `tron_client_`), every hot read and write by `_id` (FerretDB v1 serves only `_id`
equality from an index; any other filter, `$in` or range scans the collection):
  transfers      one document per transfer, `_id` = "<txid>:<event_index>": current state, block, and
                 the cursor of its latest event.
  event_pages    the stream: `_id` = (cursor - 1) // PAGE, `events` = the events of those cursors (snapshots
                 of the transfer as of the event). Each commit allocates whole pages (its first cursor starts
                 a page; the unused rest of its last page are gaps), so pages are only ever inserted: FerretDB
                 inserts are cheap, rewriting a large document for a $push is not.
  counters       `_id` "transfer_events": the last cursor handed out ($inc, single-document atomic).
  sync_blocks    `_id` = block number: id, parent id, and the transfers still INCLUDED in it.
  sync_state     `_id` "cursor": last applied block, highest FINAL block, and the stream WATERMARK.

The stream invariant (no transactions in FerretDB): block sync is the only writer. A commit allocates its
cursors with one $inc, writes transfers and events, and only then publishes the watermark W (the last cursor
allocated) in sync_state. Readers read W first and never look past it, so every event <= W is either
written or a gap that never fills (a cursor allocated for a change that turned out to be a no-op, or lost
to a crash). A consumer that resumes after its last cursor therefore sees every later event exactly once, in
cursor order, however the writes inside a commit were ordered or interleaved. After each commit that wrote
events the store fires its Pulse, waking the streams of this process (other replicas' streams poll).

Crash safety (idempotent replay): the cursor advances in the same final write as W, so a crash replays the
commit's blocks. New transfers are inserted; an insert that collides is re-read and either skipped (same
state and block: its event is re-written if it is above W and missing) or changed (a re-included or
finalized transfer). FINAL never changes: a FINAL document is never updated again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pymongo import DESCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError
from tronpay.common.v1 import common_pb2

from services.common.mongo import Document, IndexSpec, ServiceDatabase

TRANSFERS = "transfers"
PAGES = "event_pages"
COUNTERS = "counters"
BLOCKS = "sync_blocks"
STATE = "sync_state"
EVENTS_COUNTER = "transfer_events"
PAGE = 256  # cursors per page document (at most ~120 KB of events)
LEASE_SECONDS = 15.0  # a writer that stops renewing loses the right to write after this long

INCLUDED = common_pb2.TRANSFER_STATE_INCLUDED
FINAL = common_pb2.TRANSFER_STATE_FINAL
REVERTED = common_pb2.TRANSFER_STATE_REVERTED

DUPLICATE_KEY = 11000

# For ListTransfers on MongoDB (FerretDB scans either way).
INDEXES: Sequence[IndexSpec] = (
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


@dataclass(slots=True)
class _Event:
    cursor: int
    change: Change
    create_time: datetime


@dataclass(slots=True)
class CommitResult:
    """What a commit wrote."""

    events: int = 0
    states: list[int] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def _sort_key(block_number: int, txid: str, event_index: int) -> str:
    # Newest first in ListTransfers: block, then transaction, then log; fixed width so strings sort.
    return f"{block_number:012d}:{txid}:{event_index + 1:05d}"


def _fields(c: Change) -> Document:
    t, b = c.transfer, c.block
    return {
        "txid": t.txid, "event_index": t.event_index, "asset": t.asset, "token": t.token,
        "from_address": t.from_address, "to_address": t.to_address, "amount": t.amount,
        "block_number": b.number, "block_id": b.block_id, "block_time_ms": b.time_ms,
        "sort_key": _sort_key(b.number, t.txid, t.event_index), "state": c.state,
    }  # fmt: skip


def _observed(doc: Document) -> Observed:
    return Observed(
        doc["txid"], doc["event_index"], doc["asset"], doc["token"], doc["from_address"], doc["to_address"],
        doc["amount"],
    )  # fmt: skip


def _duplicates(exc: BulkWriteError) -> list[int]:
    """Positions of the documents an unordered insert_many skipped as duplicate keys (replays after a
    crash); any other write error is raised."""
    errors = exc.details.get("writeErrors", [])
    if any(e.get("code") != DUPLICATE_KEY for e in errors):
        raise exc
    return [e["index"] for e in errors]


class Pulse:
    """Wakes stream readers when events were written. Take `current()` BEFORE querying, then wait on it:
    a write between the query and the wait has already set that event, so no wake-up is lost."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event


def changes_for(observed: Iterable[Observed], block: BlockRef, final: bool) -> list[Change]:
    """The state each observed transfer enters when its block is applied: failed on chain -> REVERTED,
    else FINAL when the block was already solidified when fetched, else INCLUDED."""
    base = FINAL if final else INCLUDED
    return [Change(o, REVERTED if o.failed else base, block) for o in observed]


class TransferStore:
    """Transfers, their events and the sync cursor. All writes come from the block-sync task only."""

    def __init__(
        self, db: ServiceDatabase, watchers_of: Callable[[str, str], list[str]] | None = None
    ) -> None:
        self._transfers = db.collection(TRANSFERS)
        self._pages = db.collection(PAGES)
        self._counters = db.collection(COUNTERS)
        self._blocks = db.collection(BLOCKS)
        self._state = db.collection(STATE)
        # Who watches a transfer's addresses when its event is written (StreamTransfers' watcher filter).
        self._watchers_of = watchers_of or (lambda a, b: [])
        # Fired after a commit that wrote events: streams in this process re-read at once. It lives with the
        # store (not with sync or the RPCs) so that neither has to import the other to reach it.
        self.pulse = Pulse()
        self.on_commit: Callable[[CommitResult], None] = lambda r: None
        self.watermark = 0
        # Blocks (above the last FINAL one) holding INCLUDED transfers: number -> (block, transfer ids).
        self._pending: dict[int, tuple[BlockRef, list[str]]] = {}

    # ---- the single-writer lease ------------------------------------------------------------------
    async def hold_lease(self, owner: str) -> bool:
        """Take or renew the writer lease (sync_state "lease"); False while another owner holds it.

        Several tron-client replicas may run; only the holder syncs, so the stream keeps one writer."""
        now = _now()
        try:
            doc = await self._state.find_one_and_update(
                {"_id": "lease", "$or": [{"owner": owner}, {"until": {"$lt": now}}]},
                {"$set": {"owner": owner, "until": now + timedelta(seconds=LEASE_SECONDS)}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # held by someone else: the upsert collided with their document
            return False
        return doc is not None and doc.get("owner") == owner

    async def release_lease(self, owner: str) -> None:
        """Let the lease expire now if `owner` still holds it (one guarded write: a lease another replica
        took in the meantime is left alone)."""
        await self._state.update_one({"_id": "lease", "owner": owner}, {"$set": {"until": _now()}})

    # ---- sync cursor and block log -------------------------------------------------------------
    async def load(self) -> SyncCursor | None:
        """The persisted cursor, and what is still INCLUDED above the last FINAL block (read by _id)."""
        doc = await self._state.find_one({"_id": "cursor"})
        if doc is None:
            return None
        cursor = SyncCursor(doc["number"], doc["block_id"], doc["final_number"])
        self.watermark = int(doc.get("watermark", 0))
        self._pending = {}
        for n in range(cursor.final_number + 1, cursor.number + 1):
            b = await self._blocks.find_one({"_id": n})
            if b is not None and b.get("included"):
                self._pending[n] = (
                    BlockRef(n, b["block_id"], b["parent_id"], b["time_ms"]),
                    list(b["included"]),
                )
        return cursor

    async def block(self, number: int) -> BlockRef | None:
        doc = await self._blocks.find_one({"_id": number})
        return None if doc is None else BlockRef(number, doc["block_id"], doc["parent_id"], doc["time_ms"])

    async def watermark_now(self) -> int:
        """The published watermark (readers: never read events above it)."""
        doc = await self._state.find_one({"_id": "cursor"}, {"watermark": 1})
        return 0 if doc is None else int(doc.get("watermark", 0))

    async def _save_cursor(self, cursor: SyncCursor) -> None:
        # One write publishes the cursor, finality and the watermark together.
        await self._state.update_one(
            {"_id": "cursor"},
            {"$set": {"number": cursor.number, "block_id": cursor.block_id,
                      "final_number": cursor.final_number, "watermark": self.watermark,
                      "update_time": _now()}},
            upsert=True,
        )  # fmt: skip

    async def start(self, anchor: BlockRef, cursor: SyncCursor) -> None:
        """First start: the block before the first one synced, as the root of the block log."""
        if anchor.number >= 0:
            await self._blocks.replace_one({"_id": anchor.number}, self._block_doc(anchor, []), upsert=True)
        await self._save_cursor(cursor)

    @staticmethod
    def _block_doc(b: BlockRef, included: list[str]) -> Document:
        return {"_id": b.number, "block_id": b.block_id, "parent_id": b.parent_id, "time_ms": b.time_ms,
                "included": included}  # fmt: skip

    # ---- commits ---------------------------------------------------------------------------------
    async def commit(
        self, blocks: Sequence[BlockRef], changes: Sequence[Change], cursor: SyncCursor
    ) -> CommitResult:
        """Apply a run of consecutive blocks: their transfers, then INCLUDED -> FINAL up to
        cursor.final_number, then the block log, then cursor + watermark (published last)."""
        included: dict[int, list[str]] = {}
        for c in changes:
            if c.state == INCLUDED:
                included.setdefault(c.block.number, []).append(c.transfer.transfer_id)
        for b in blocks:
            if b.number in included:
                self._pending[b.number] = (b, included[b.number])
        final = [self._pending.pop(n) for n in sorted(self._pending) if n <= cursor.final_number]
        result = await self._write(list(changes), [(b, tid, FINAL) for b, tids in final for tid in tids])
        docs = [self._block_doc(b, included.get(b.number, [])) for b in blocks]
        if docs:
            try:
                await self._blocks.insert_many(docs, ordered=False)
            except BulkWriteError as exc:  # replayed blocks after a crash: overwrite
                for i in _duplicates(exc):
                    await self._blocks.replace_one({"_id": docs[i]["_id"]}, docs[i], upsert=True)
        await self._save_cursor(cursor)
        self._published(result)
        return result

    async def rollback(self, ancestor: BlockRef, old_tip: int, cursor: SyncCursor) -> CommitResult:
        """A fork dropped the blocks above `ancestor`: their INCLUDED transfers -> REVERTED; forget them."""
        dropped = [self._pending.pop(n) for n in sorted(self._pending) if n > ancestor.number]
        result = await self._write([], [(b, tid, REVERTED) for b, tids in dropped for tid in tids])
        for n in range(ancestor.number + 1, old_tip + 1):
            await self._blocks.delete_one({"_id": n})
        if ancestor.number >= 0:
            await self._blocks.replace_one(
                {"_id": ancestor.number}, self._block_doc(ancestor, []), upsert=True
            )
        await self._save_cursor(cursor)
        self._published(result)
        return result

    async def record_history(self, changes: Sequence[Change], cursor: SyncCursor) -> CommitResult:
        """Transfers a history rescan found in solidified blocks: written like a commit's and published with
        the unchanged cursor."""
        if not changes:
            return CommitResult()
        result = await self._write(list(changes), [])
        await self._save_cursor(cursor)
        self._published(result)
        return result

    async def cursor_number(self) -> int | None:
        """The last block sync applied, as persisted (None before sync's first start)."""
        doc = await self._state.find_one({"_id": "cursor"}, {"number": 1})
        return None if doc is None else int(doc["number"])

    def _published(self, result: CommitResult) -> None:
        """A commit's events are readable (watermark saved): wake the streams, then tell the owner."""
        if result.events:
            self.pulse.fire()
        self.on_commit(result)

    async def _write(self, changes: list[Change], moves: list[tuple[BlockRef, str, int]]) -> CommitResult:
        """Write `changes` (transfers seen in new blocks) and `moves` (known INCLUDED transfers entering a
        state), allocating one cursor per candidate; candidates that turn out to be no-ops leave gaps."""
        total = len(changes) + len(moves)
        result = CommitResult()
        if total == 0:
            return result
        span = -(-total // PAGE) * PAGE  # whole pages: the counter stays a multiple of PAGE
        counter = await self._counters.find_one_and_update(
            {"_id": EVENTS_COUNTER},
            {"$inc": {"value": span}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        if counter is None:  # upsert=True with AFTER always returns the document
            raise RuntimeError(f"the {EVENTS_COUNTER} counter upsert returned no document")
        last = int(counter["value"])
        first = last - span + 1
        now = _now()
        events: list[_Event] = []
        rechecks: list[tuple[int, Change, Document | None]] = []  # with the document when already read
        if changes:
            docs = [{"_id": c.transfer.transfer_id, **_fields(c), "cursor": first + i, "create_time": now,
                     "update_time": now} for i, c in enumerate(changes)]  # fmt: skip
            dups: set[int] = set()
            try:
                await self._transfers.insert_many(docs, ordered=False)
            except BulkWriteError as exc:
                dups = set(_duplicates(exc))
            for i, c in enumerate(changes):
                if i in dups:
                    rechecks.append((first + i, c, None))
                else:
                    events.append(_Event(first + i, c, now))
        for j, (block, tid, state) in enumerate(moves):
            doc = await self._transfers.find_one({"_id": tid})
            if doc is not None and doc["block_id"] == block.block_id:
                rechecks.append((first + len(changes) + j, Change(_observed(doc), state, block), doc))
        missing = await self._recheck(rechecks, events, now)
        events.sort(key=lambda e: e.cursor)
        await self._write_events(events + missing)
        self.watermark = max(self.watermark, last)
        result.events = len(events) + len(missing)
        result.states = [e.change.state for e in events + missing]
        return result

    async def _recheck(
        self, rechecks: list[tuple[int, Change, Document | None]], events: list[_Event], now: datetime
    ) -> list[_Event]:
        """Transfers that already have a document: change them, or (replay) restore a missing event."""
        missing: list[_Event] = []
        for cur, c, known in rechecks:
            doc = known or await self._transfers.find_one({"_id": c.transfer.transfer_id})
            if doc is None:
                continue
            created = doc.get("create_time") or now
            if (doc["state"], doc["block_id"]) == (c.state, c.block.block_id):
                # Applied before a crash: its event exists, unless the crash came between the transfer
                # write and the event write (then it is above the published watermark).
                if doc["cursor"] > self.watermark and not await self._has_event(doc["cursor"]):
                    missing.append(
                        _Event(doc["cursor"], Change(_observed(doc), doc["state"], c.block), created)
                    )
                continue
            if doc["state"] == FINAL:
                continue  # FINAL never changes
            # Guarded on the version read (its cursor): a write that lost a race leaves a gap, not an event.
            moved = await self._transfers.update_one(
                {"_id": doc["_id"], "cursor": doc["cursor"], "state": {"$ne": FINAL}},
                {"$set": {**_fields(c), "cursor": cur, "update_time": now}},
            )
            if moved.modified_count == 1:
                events.append(_Event(cur, c, created))
        return missing

    async def _has_event(self, cursor: int) -> bool:
        page = await self._pages.find_one({"_id": (cursor - 1) // PAGE})
        return page is not None and any(e["c"] == cursor for e in page.get("events", ()))

    async def _write_events(self, events: list[_Event]) -> None:
        if not events:
            return
        now = _now()
        by_page: dict[int, list[Document]] = {}
        for e in sorted(events, key=lambda e: e.cursor):
            c = e.change
            t = c.transfer
            by_page.setdefault((e.cursor - 1) // PAGE, []).append({
                "c": e.cursor, **_fields(c), "create_time": e.create_time, "event_time": now,
                "watchers": self._watchers_of(t.from_address, t.to_address),
            })  # fmt: skip
        docs = [{"_id": page, "events": evs} for page, evs in by_page.items()]
        try:
            await self._pages.insert_many(docs, ordered=False)
        except BulkWriteError as exc:  # only after a crash: a page restored next to events of its own
            for i in _duplicates(exc):
                await self._pages.update_one(
                    {"_id": docs[i]["_id"]}, {"$push": {"events": {"$each": docs[i]["events"]}}}
                )

    # ---- reading ---------------------------------------------------------------------------------
    async def events_after(self, cursor: int, up_to: int, limit: int) -> tuple[list[Document], int]:
        """Events with cursor in (cursor, up_to] in cursor order, about `limit` at most (whole pages), and the
        cursor to continue after (up_to once every page up to it was read: what is missing are gaps)."""
        out: list[Document] = []
        page = cursor // PAGE  # the page of cursor + 1
        seen = cursor
        while page <= (up_to - 1) // PAGE:
            if len(out) >= limit:
                return out, seen
            doc = await self._pages.find_one({"_id": page})
            for ev in sorted(doc.get("events", ()) if doc else (), key=lambda e: e["c"]):
                if seen < ev["c"] <= up_to:  # a page may hold a replayed event twice: once per cursor
                    out.append(ev)
                    seen = ev["c"]
            page += 1
        return out, max(seen, up_to)

    async def list_transfers(
        self, address: str, *, asset: int, token: str = "", direction: int, limit: int, after: str | None
    ) -> list[Document]:
        """Up to `limit` transfers touching `address`, newest first; `after` is the `sort_key` the previous
        page ended at."""
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
        if token:
            match["token"] = token
        if after is not None:
            match["sort_key"] = {"$lt": after}
        return [d async for d in self._transfers.find(match).sort("sort_key", DESCENDING).limit(limit)]
