"""Block sync: follow the head, record transfers touching watched addresses, track finality, survive forks.

Loop (one task per process, the only writer of the transfer stream; see transfers.py for the invariant):
  1. read the node's head and solidified block (headers only);
  2. if the solidified block is at or below our cursor and its id differs from ours, we hold a dropped
     branch: walk back to the common ancestor and roll back (below);
  3. fetch the missing blocks in chunks (getblockbylimitnext, <= 100 blocks) and, for blocks holding
     contract calls, their receipts (gettransactioninfobyblocknum), several requests in flight, extracting
     transfers as each answer arrives; apply chunks strictly in order, checking parent-hash continuity;
  4. transfers enter INCLUDED, or FINAL at once when their block was already solidified when fetched
     (a solidified block whose parent is our tip proves our whole log below it final);
     failed on chain (TRX ret != SUCCESS, TRC20 receipt != SUCCESS) -> REVERTED, never INCLUDED;
  5. INCLUDED -> FINAL for every block <= the highest block known to be both ours and solidified.

Failed transactions are recorded as REVERTED (TransferState has no FAILED; REVERTED means "never settles"):
a TRX TransferContract with contractRet != SUCCESS (event_index -1), and a direct transfer/transferFrom
call on a followed token whose receipt is not SUCCESS (event_index 0: the log it would have emitted).

Fork: a block whose parent is not our tip means our tip was dropped. Walk back comparing our block log with
the node's blocks until they agree (never below the last FINAL block: that would be a different chain and
is reported as an error instead), turn INCLUDED transfers above the ancestor REVERTED, forget those blocks,
set the cursor to the ancestor and apply the new branch. A transaction that reappears in the new branch
gets a new INCLUDED event with its new block ("moved").

Watched tokens: USDT_CONTRACT_ADDRESS plus TRON_SYNC_TOKENS. Only Transfer(address,address,uint256) logs
emitted by those contracts count, whoever called them; amounts above int64 are skipped (logged).

History rescans (rescan.py) run in this task too, one batch per step once sync has caught up with the head.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import Counter, Gauge
from tronpay.common.v1 import common_pb2

from services.common.errors import Unavailable
from services.common.logging import get_logger
from services.common.server import Runtime
from services.common.tron.abi import TRC20_TRANSFER, TRC20_TRANSFER_FROM
from services.common.tron.address import to_base58
from services.common.tron.wire import INT64_MAX
from services.tron_client import rescan
from services.tron_client.rescan import RescanJobs
from services.tron_client.settings import TronClientSettings
from services.tron_client.transfers import (
    LEASE_SECONDS,
    BlockRef,
    Change,
    CommitResult,
    Observed,
    SyncCursor,
    TransferStore,
    changes_for,
)
from services.tron_client.watch import WatchList, hex20

log = get_logger("services.tron_client.sync")

TRANSFER_TOPIC = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
TRANSFER_SELECTOR = TRC20_TRANSFER.hex()  # node JSON carries call data as hex
TRANSFER_FROM_SELECTOR = TRC20_TRANSFER_FROM.hex()
MAX_RANGE = 100  # java-tron's limit for getblockbylimitnext
PROGRESS_EVERY_SECONDS = 10.0

HEAD_LAG = Gauge("tron_sync_head_lag_blocks", "Blocks between the node's head and the sync cursor.")
SOLID_LAG = Gauge(
    "tron_sync_solid_lag_blocks", "Blocks between the node's solidified block and the last FINAL block."
)
SYNC_BLOCK = Gauge("tron_sync_block_number", "Last block applied by block sync.")
BLOCKS = Counter("tron_sync_blocks_ingested_total", "Blocks applied by block sync.")
BLOCKS_PER_SECOND = Gauge(
    "tron_sync_blocks_per_second", "Blocks applied per second over the last progress window."
)
EVENTS = Counter("tron_sync_events_emitted_total", "Transfer events written to the stream.")
ERRORS = Counter("tron_sync_errors_total", "Block sync errors, by kind.", ["kind"])
FORKS = Counter("tron_sync_forks_total", "Forks handled (blocks rolled back at least once).")
ROLLED_BACK = Counter("tron_sync_rolled_back_blocks_total", "Blocks dropped by forks.")


class ForkBelowFinal(Exception):
    """The node disagrees with a block we already called final: not a fork we may follow."""


class LeaseLost(Exception):
    """Another replica holds the writer lease now: stop writing."""


# ---------------------------------------------------------------------------------------------------
# node access


# POST a node API path, answer parsed (object or array): the node pool's call_any (failover, retries).
JsonCall = Callable[[str, dict[str, Any]], Awaitable[Any]]


def block_ref(block: dict[str, Any]) -> BlockRef:
    raw = block["block_header"]["raw_data"]
    return BlockRef(
        int(raw.get("number", 0)), block["blockID"], raw.get("parentHash", ""), int(raw.get("timestamp", 0))
    )


# ---------------------------------------------------------------------------------------------------
# extraction: only decode what matters


@dataclass(frozen=True, slots=True)
class Followed:
    """What extraction matches against: watched addresses and followed tokens, both as 20-byte hex."""

    watched: dict[str, set[str]]  # hex20 -> watchers (only membership is used here)
    tokens: dict[str, tuple[str, int]]  # hex20 -> (base58, Asset)


def _b58(h20: str) -> str:
    return to_base58(bytes.fromhex("41" + h20))


def _word_address(word: str) -> str:
    return word[-40:].lower()


def extract(block: dict[str, Any], infos: Sequence[dict[str, Any]] | None, f: Followed) -> list[Observed]:
    """Transfers in one block (visible=false JSON) that touch a watched address, in block order."""
    out: list[Observed] = []
    watched, tokens = f.watched, f.tokens
    # txid -> (token hex20, from hex20, call data) of direct calls on a followed token
    calls: dict[str, tuple[str, str, str]] = {}
    for tx in block.get("transactions", ()):
        contract = tx["raw_data"]["contract"][0]
        kind = contract.get("type")
        if kind == "TransferContract":
            v = contract["parameter"]["value"]
            frm, to = v.get("owner_address", "")[-40:], v.get("to_address", "")[-40:]
            if frm in watched or to in watched:
                ret = tx.get("ret") or [{}]
                failed = ret[0].get("contractRet", "SUCCESS") != "SUCCESS"
                out.append(Observed(tx["txID"], -1, common_pb2.ASSET_TRX, "", _b58(frm), _b58(to),
                                    int(v.get("amount", 0)), failed))  # fmt: skip
        elif kind == "TriggerSmartContract":
            v = contract["parameter"]["value"]
            token = v.get("contract_address", "")[-40:]
            if token in tokens:
                calls[tx["txID"]] = (token, v.get("owner_address", "")[-40:], v.get("data", ""))
    for info in infos or ():
        receipt = info.get("receipt") or {}
        if receipt.get("result", "SUCCESS") != "SUCCESS":
            failed = _failed_call(info.get("id", ""), calls.get(info.get("id", "")), f)
            if failed is not None:
                out.append(failed)
            continue
        for i, lg in enumerate(info.get("log") or ()):
            topics: list[str] = lg.get("topics") or []
            if len(topics) != 3 or topics[0] != TRANSFER_TOPIC:
                continue
            token = lg.get("address", "")[-40:]
            if token not in tokens:
                continue
            frm, to = _word_address(topics[1]), _word_address(topics[2])
            if frm not in watched and to not in watched:
                continue
            amount = int(lg.get("data") or "0", 16)
            if amount > INT64_MAX:
                log.warning("transfer amount above int64 skipped", extra={"fields": {"txid": info.get("id")}})
                continue
            b58, asset = tokens[token]
            out.append(Observed(info["id"], i, asset, b58, _b58(frm), _b58(to), amount))
    return out


def _failed_call(txid: str, call: tuple[str, str, str] | None, f: Followed) -> Observed | None:
    """A failed direct transfer/transferFrom on a followed token touching a watched address."""
    if call is None:
        return None
    token, owner, data = call
    data = data.lower()
    try:
        if data.startswith(TRANSFER_SELECTOR) and len(data) >= 8 + 128:
            frm, to, amount = owner, _word_address(data[8:72]), int(data[72:136], 16)
        elif data.startswith(TRANSFER_FROM_SELECTOR) and len(data) >= 8 + 192:
            frm, to, amount = _word_address(data[8:72]), _word_address(data[72:136]), int(data[136:200], 16)
        else:
            return None
    except ValueError:
        return None
    if (frm not in f.watched and to not in f.watched) or amount > INT64_MAX:
        return None
    b58, asset = f.tokens[token]
    return Observed(txid, 0, asset, b58, _b58(frm), _b58(to), amount, failed=True)


def has_calls(block: dict[str, Any]) -> bool:
    """Whether any transaction calls a contract (only those blocks need their receipts for logs)."""
    return any(
        tx["raw_data"]["contract"][0].get("type") == "TriggerSmartContract"
        for tx in block.get("transactions", ())
    )


# ---------------------------------------------------------------------------------------------------
# the sync task


@dataclass(slots=True)
class Fetched:
    """A fetched, extracted block."""

    ref: BlockRef
    observed: list[Observed]


class BlockSync:
    """Follows the chain and writes transfers and their events through a TransferStore."""

    def __init__(
        self,
        settings: TronClientSettings,
        call: JsonCall,
        store: TransferStore,
        watch_list: WatchList,
        rescans: RescanJobs,
    ) -> None:
        self._settings = settings
        self._call = call
        self._store = store
        self._watch = watch_list
        self._rescans = rescans
        self._tokens: dict[str, tuple[str, int]] = {}
        for addr in settings.sync_tokens:
            asset = (
                common_pb2.ASSET_USDT if addr == settings.USDT_CONTRACT_ADDRESS else common_pb2.ASSET_TRC20
            )
            self._tokens.setdefault(hex20(addr), (addr, asset))
        self._sem = asyncio.Semaphore(settings.TRON_SYNC_CONCURRENCY)
        self._stop = asyncio.Event()
        # Same host and port after a restart -> same owner, so a restarted process takes its lease back
        # at once; another replica (another host or port) waits until the lease expires.
        self._owner = f"{socket.gethostname()}:{settings.port}"
        self._leader = False
        self._renewed = 0.0
        self._task: asyncio.Task[None] | None = None
        self.cursor: SyncCursor | None = None
        self.head_number = 0
        self.solid_number = 0
        self._progress_at = time.monotonic()
        self._progress_blocks = 0

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="block-sync")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._leader:  # hand over at once instead of after the lease term
            with contextlib.suppress(Exception):
                await self._store.release_lease(self._owner)

    async def run(self) -> None:
        """Step until stopped; errors are logged and counted, then retried with back-off."""
        delay = self._settings.TRON_SYNC_POLL_SECONDS
        while not self._stop.is_set():
            try:
                busy = await self.step()
                delay = self._settings.TRON_SYNC_POLL_SECONDS
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                log.warning("sync: another replica took the writer lease")
                self._leader, self.cursor = False, None
                busy = False
            except ForkBelowFinal as exc:
                ERRORS.labels("fork_below_final").inc()
                log.error(
                    "node disagrees with a final block; not following", extra={"fields": {"error": str(exc)}}
                )
                busy, delay = False, min(max(delay * 2, 1.0), 30.0)
            except Unavailable as exc:
                ERRORS.labels("node").inc()
                log.warning(
                    "sync: node unavailable", extra={"fields": {"error": exc.message, **exc.metadata}}
                )
                busy, delay = False, min(max(delay * 2, 0.5), 30.0)
            except Exception as exc:  # a Mongo outage or a bad answer: keep the task alive, retry later
                ERRORS.labels(type(exc).__name__).inc()
                log.warning("sync step failed", exc_info=exc)
                busy, delay = False, min(max(delay * 2, 0.5), 30.0)
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)

    async def _lease(self) -> bool:
        """Hold the writer lease (renewed every third of its term). Standby replicas return False."""
        if self._leader and time.monotonic() - self._renewed < LEASE_SECONDS / 3:
            return True
        held = await self._store.hold_lease(self._owner)
        if held and not self._leader:
            log.info("sync: holding the writer lease", extra={"fields": {"owner": self._owner}})
            self.cursor = None  # another writer may have moved on: reload
        elif not held and self._leader:
            raise LeaseLost
        self._leader, self._renewed = held, time.monotonic()
        return held

    # ---- one step ------------------------------------------------------------------------------
    async def _header(self, path: str, num: int | None = None) -> BlockRef:
        body: dict[str, Any] = {"detail": False}
        if num is not None:
            body["id_or_num"] = str(num)
        block = await self._call(path, body)
        if not isinstance(block, dict) or "blockID" not in block:
            if num is None and path.startswith("walletsolidity"):  # nodes without walletsolidity/getblock
                block = await self._call("walletsolidity/getnowblock", {})
            if not isinstance(block, dict) or "blockID" not in block:
                raise Unavailable(
                    "TRON node returned no block", reason="NODE_BAD_RESPONSE", metadata={"path": path}
                )
        return block_ref(block)

    async def step(self) -> bool:
        """Catch up to the head once. True when blocks were applied (call again at once)."""
        head, solid = await asyncio.gather(
            self._header("wallet/getblock"), self._header("walletsolidity/getblock")
        )
        self.head_number, self.solid_number = head.number, solid.number
        if not await self._lease():
            return False
        await self._watch.refresh()
        if self.cursor is None:  # the single writer keeps its cursor in memory once loaded
            self.cursor = await self._store.load()
        if self.cursor is None:
            start = self._settings.TRON_SYNC_START_BLOCK
            if start is not None and start > head.number:
                return False  # a configured start block the chain has not reached yet
            self.cursor = await self._init_cursor(head, solid)
        cursor = self.cursor
        # A solidified block we hold under another id: we are on a dropped branch.
        if solid.number <= cursor.number:
            ours = await self._store.block(solid.number)
            if ours is not None and ours.block_id != solid.block_id:
                await self._reorg(solid.number)
                return True
            if ours is not None and solid.number > cursor.final_number:
                await self._finalize(solid.number)
        self._gauges()
        if head.number <= cursor.number:
            return await self._rescan(cursor)
        return await self._catch_up(cursor, head.number, solid.number)

    async def _init_cursor(self, head: BlockRef, solid: BlockRef) -> SyncCursor:
        start = self._settings.TRON_SYNC_START_BLOCK
        start = head.number if start is None else start
        anchor = await self._header("wallet/getblock", start - 1) if start > 0 else BlockRef(-1, "", "", 0)
        cursor = SyncCursor(anchor.number, anchor.block_id, min(anchor.number, solid.number))
        await self._store.start(anchor, cursor)
        log.info("sync starts", extra={"fields": {"start_block": start, "head": head.number}})
        return cursor

    async def _catch_up(self, cursor: SyncCursor, head: int, solid: int) -> bool:
        chunk = self._settings.TRON_SYNC_BATCH_BLOCKS
        depth = max(2, self._settings.TRON_SYNC_CONCURRENCY // 2)  # chunks fetched ahead of the applier
        followed = Followed(self._watch.index, self._tokens)
        pending: deque[asyncio.Task[list[Fetched]]] = deque()
        nxt = cursor.number + 1
        applied = False
        try:
            while pending or nxt <= head:
                while len(pending) < depth and nxt <= head:
                    end = min(head, nxt + chunk - 1)
                    pending.append(asyncio.create_task(self._fetch(nxt, end, followed)))
                    nxt = end + 1
                blocks = await pending.popleft()
                more = await self._apply(blocks, solid)
                applied = applied or bool(blocks)
                if not more:
                    break
        finally:
            for t in pending:
                t.cancel()
            for t in pending:
                with contextlib.suppress(BaseException):
                    await t
        return applied

    async def _fetch(self, start: int, end: int, f: Followed) -> list[Fetched]:
        """Blocks start..end (inclusive) and what they hold; stops early where the node has no more."""
        async with self._sem:
            if end == start:
                one = await self._call("wallet/getblockbynum", {"num": start})
                blocks = [one] if isinstance(one, dict) and "blockID" in one else []
            else:
                ans = await self._call("wallet/getblockbylimitnext", {"startNum": start, "endNum": end + 1})
                blocks = ans.get("block", []) if isinstance(ans, dict) else []
        blocks.sort(key=lambda b: int(b["block_header"]["raw_data"].get("number", 0)))
        # Receipts only where logs can be: blocks with contract calls.
        needs = [b for b in blocks if has_calls(b)]
        answers = await asyncio.gather(*(self._infos(block_ref(b).number) for b in needs))
        by_number = {block_ref(b).number: i for b, i in zip(needs, answers, strict=True)}
        out: list[Fetched] = []
        for b in blocks:
            ref = block_ref(b)
            if out and ref.number != out[-1].ref.number + 1:
                break
            infos = by_number.get(ref.number)
            if infos is not None:
                # Receipts are fetched by number: a fork in between would pair them with another block.
                txids = {tx.get("txID") for tx in b.get("transactions", ())}
                if any(i.get("id") not in txids for i in infos):
                    raise Unavailable(
                        "receipts do not match their block (chain moved)",
                        reason="NODE_INCONSISTENT",
                        metadata={"block": str(ref.number)},
                    )
            out.append(Fetched(ref, extract(b, infos, f)))
        return out

    async def _infos(self, number: int) -> list[dict[str, Any]]:
        async with self._sem:
            ans = await self._call("wallet/gettransactioninfobyblocknum", {"num": number})
        if not isinstance(ans, list):
            raise Unavailable(
                "TRON node returned no receipts", reason="NODE_BAD_RESPONSE", metadata={"num": str(number)}
            )
        return ans

    def _loaded_cursor(self) -> SyncCursor:
        """The cursor step() loaded before applying, finalizing or rolling back anything."""
        if self.cursor is None:
            raise RuntimeError("block sync used its cursor before step() loaded it")
        return self.cursor

    async def _apply(self, blocks: list[Fetched], solid: int) -> bool:
        """Apply a chunk in order. False when the step must end (fork, short answer)."""
        cursor = self._loaded_cursor()
        good: list[Fetched] = []
        tip_id, tip_number = cursor.block_id, cursor.number
        fork_at = None
        for fb in blocks:
            if fb.ref.number != tip_number + 1:
                break
            if tip_id and fb.ref.parent_id != tip_id:
                fork_at = fb.ref.number
                break
            good.append(fb)
            tip_id, tip_number = fb.ref.block_id, fb.ref.number
        if good:
            await self._lease()  # a long catch-up renews as it goes; raises LeaseLost if taken over
            changes: list[Change] = []
            for fb in good:
                changes.extend(changes_for(fb.observed, fb.ref, final=fb.ref.number <= solid))
            # A solidified block whose parent chain is ours makes every block of ours below it final.
            solidified = [fb.ref.number for fb in good if fb.ref.number <= solid]
            final = max(cursor.final_number, solidified[-1] if solidified else -1)
            last = good[-1].ref
            new = SyncCursor(last.number, last.block_id, final)
            await self._store.commit([fb.ref for fb in good], changes, new)
            self.cursor = new
            BLOCKS.inc(len(good))
            self._progress(len(good))
        if fork_at is not None:
            await self._reorg(fork_at - 1)
            return False
        return len(good) == len(blocks) and bool(blocks)

    async def _rescan(self, cursor: SyncCursor) -> bool:
        """One batch of the oldest open history rescan. True when more can be done at once."""
        jobs = await self._rescans.open_jobs()
        rescan.report(jobs, cursor.number)
        if not jobs:
            return False
        job = jobs[0]
        end = job.end_block
        if end is None:
            # Reload the watch list after reading the job (its addresses were stored before it): blocks after
            # the cursor are then matched by sync itself, those up to it by the job.
            await self._watch.refresh()
            end = await self._rescans.pin_end(job, cursor.number)
            job = replace(job, end_block=end)
        if job.next_block > end:  # nothing (left) to read: a start above the end
            await self._rescans.advance(job, job.next_block)
            return len(jobs) > 1
        last = min(end, cursor.final_number, job.next_block + self._settings.TRON_RESCAN_BATCH_BLOCKS - 1)
        if last < job.next_block:
            return False  # waiting for its blocks to be solidified
        await self._lease()
        followed = Followed({hex20(a): {"rescan"} for a in job.addresses}, self._tokens)
        fetched = await self._fetch(job.next_block, last, followed)
        if not fetched:
            return False
        changes = [c for fb in fetched for c in changes_for(fb.observed, fb.ref, final=True)]
        await self._store.record_history(changes, cursor)
        await self._rescans.advance(job, fetched[-1].ref.number + 1)
        rescan.SCANNED.inc(len(fetched))
        rescan.RECORDED.inc(len(changes))
        return True

    async def _finalize(self, up_to: int) -> None:
        cursor = self._loaded_cursor()
        new = SyncCursor(cursor.number, cursor.block_id, up_to)
        await self._store.commit([], [], new)
        self.cursor = new

    async def _reorg(self, number: int) -> None:
        """Our block `number` (or its descendants) left the chain: roll back to the common ancestor."""
        cursor = self._loaded_cursor()
        m = min(number, cursor.number)
        while True:
            ours = await self._store.block(m) if m >= 0 else None
            theirs = await self._header("wallet/getblock", m) if m >= 0 else BlockRef(-1, "", "", 0)
            if ours is not None and ours.block_id == theirs.block_id:
                ancestor = theirs
                break
            if m <= cursor.final_number:
                if ours is None:  # below our first block: nothing of ours to compare or keep
                    ancestor = theirs
                    break
                raise ForkBelowFinal(f"block {m}: ours {ours.block_id}, node {theirs.block_id}")
            m -= 1
        dropped = cursor.number - ancestor.number
        new = SyncCursor(ancestor.number, ancestor.block_id, min(cursor.final_number, ancestor.number))
        reverted = (await self._store.rollback(ancestor, cursor.number, new)).events
        self.cursor = new
        FORKS.inc()
        ROLLED_BACK.inc(max(dropped, 0))
        log.warning(
            "fork: rolled back to the common ancestor",
            extra={
                "fields": {
                    "ancestor": ancestor.number,
                    "dropped_blocks": dropped,
                    "reverted_transfers": reverted,
                }
            },
        )

    # ---- reporting -----------------------------------------------------------------------------
    def _gauges(self) -> None:
        if self.cursor is not None:
            SYNC_BLOCK.set(self.cursor.number)
            HEAD_LAG.set(max(0, self.head_number - self.cursor.number))
            SOLID_LAG.set(max(0, self.solid_number - self.cursor.final_number))

    def _progress(self, n: int) -> None:
        self._gauges()
        self._progress_blocks += n
        elapsed = time.monotonic() - self._progress_at
        if elapsed < PROGRESS_EVERY_SECONDS:
            return
        rate = self._progress_blocks / elapsed
        BLOCKS_PER_SECOND.set(rate)
        behind = max(0, self.head_number - (self.cursor.number if self.cursor else 0))
        if behind > 0:
            log.info(
                "sync catching up",
                extra={"fields": {"block": self.cursor.number if self.cursor else 0, "head": self.head_number,
                                  "behind": behind, "blocks_per_second": round(rate, 1),
                                  "eta_seconds": round(behind / rate) if rate else None}},
            )  # fmt: skip
        self._progress_at, self._progress_blocks = time.monotonic(), 0

    def status(self) -> tuple[SyncCursor | None, int]:
        """The cursor and the head lag in blocks (for GetNetworkStatus)."""
        return self.cursor, max(0, self.head_number - (self.cursor.number if self.cursor else 0))


# ---------------------------------------------------------------------------------------------------
# wiring


def start_block_sync(
    rt: Runtime[TronClientSettings], call: JsonCall, store: TransferStore, watch_list: WatchList
) -> BlockSync | None:
    """Start the sync task on `call` (the node pool's call_any), writing through `store` (which wakes the
    streams itself); None when TRON_SYNC_ENABLED is off. The task stops with the process."""
    if not rt.settings.TRON_SYNC_ENABLED:
        return None
    # Every write is by _id, so sync needs no index to start; the server creates the indexes at start-up.
    sync = BlockSync(rt.settings, call, store, watch_list, RescanJobs(rt.db))

    def on_commit(result: CommitResult) -> None:
        if result.events:
            EVENTS.inc(result.events)

    store.on_commit = on_commit
    sync.start()
    rt.on_stop(sync.stop)
    return sync
