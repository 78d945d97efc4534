"""History rescans: an address watched late gets its past transfers recorded too.

WatchAddresses with a start block stores a job in `tron_client_rescans` (one per request content: a retried
request finds its job). Only block sync's writer runs jobs, between its steps, so the transfer stream keeps a
single writer (transfers.py):
  1. a new job's end is pinned to the writer's cursor, right after the writer reloaded the watch list: every
     block after the end is matched against the new addresses by sync itself, every block up to it by the
     rescan (an overlap is harmless: a transfer already recorded in the same block and state is skipped);
  2. the job fetches at most TRON_RESCAN_BATCH_BLOCKS blocks per step, only blocks already solidified (its
     transfers enter FINAL at once; no fork can touch them), and records what touches its addresses as new
     events of the stream;
  3. it moves its `next_block` with a write guarded on the block it started from, and is done past its end.
A crash replays at most one batch (recording is idempotent). Progress is in the tron_rescan_* metrics.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Document, ServiceDatabase

RESCANS = "rescans"

PENDING_BLOCKS = Gauge("tron_rescan_pending_blocks", "Blocks history rescans still have to read.")
OPEN_JOBS = Gauge("tron_rescan_jobs_open", "History rescans not finished yet.")
SCANNED = Counter("tron_rescan_blocks_total", "Blocks read by history rescans.")
RECORDED = Counter("tron_rescan_transfers_total", "Transfers history rescans recorded (or found recorded).")


@dataclass(frozen=True, slots=True)
class Job:
    """One rescan: `addresses` from `next_block` up to `end_block` (None until the writer pins it)."""

    id: str
    addresses: tuple[str, ...]
    next_block: int
    end_block: int | None

    @classmethod
    def of(cls, doc: Document) -> Job:
        return cls(doc["_id"], tuple(doc["addresses"]), int(doc["next_block"]), doc.get("end_block"))


class RescanJobs:
    """The jobs collection; the RPC adds jobs, the sync writer runs them."""

    def __init__(self, db: ServiceDatabase) -> None:
        self._col = db.collection(RESCANS)

    async def add(self, addresses: Sequence[str], start_block: int) -> str:
        """Store a job (the same addresses and start again: the existing one); returns its id."""
        unique = sorted(set(addresses))
        job_id = "rs_" + hashlib.sha256(f"{start_block}:{','.join(unique)}".encode()).hexdigest()[:24]
        doc = {"_id": job_id, "addresses": unique, "start_block": start_block, "next_block": start_block,
               "end_block": None, "done": False, "create_time": datetime.now(UTC)}  # fmt: skip
        with contextlib.suppress(DuplicateKeyError):  # the same request again: its job exists
            await self._col.insert_one(doc)
        return job_id

    async def open_jobs(self) -> list[Job]:
        """Unfinished jobs, oldest first."""
        cursor = self._col.find({"done": False}).sort("create_time", ASCENDING)
        return [Job.of(d) async for d in cursor]

    async def pin_end(self, job: Job, end_block: int) -> int:
        """Fix the job's last block and return it (once: a job another writer pinned keeps that end)."""
        await self._col.update_one({"_id": job.id, "end_block": None}, {"$set": {"end_block": end_block}})
        doc = await self._col.find_one({"_id": job.id}, {"end_block": 1})
        pinned = None if doc is None else doc.get("end_block")
        return end_block if pinned is None else int(pinned)

    async def advance(self, job: Job, next_block: int) -> None:
        """Record that the blocks before `next_block` are done (guarded on where this batch started)."""
        done = job.end_block is not None and next_block > job.end_block
        await self._col.update_one(
            {"_id": job.id, "next_block": job.next_block},
            {"$set": {"next_block": next_block, "done": done, "update_time": datetime.now(UTC)}},
        )


def report(jobs: Sequence[Job], cursor_number: int) -> None:
    """Set the progress gauges from the open jobs (an unpinned job counts up to the cursor)."""
    OPEN_JOBS.set(len(jobs))
    PENDING_BLOCKS.set(
        sum(
            max(0, (j.end_block if j.end_block is not None else cursor_number) - j.next_block + 1)
            for j in jobs
        )
    )
