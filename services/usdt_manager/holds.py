"""What a sender has in flight: one hold per transfer or approval not final yet, so a new request is checked
against the balance minus what is already on its way.

All holds of a sender live in one document (`usdt_manager_senders`, `_id` = the address): `holds` maps
operation id -> {token, amount, trx_sun, block_number, create_time}, and `seq` counts reservations. Taking a
hold is "read the document, check the balances minus its holds, then write the new hold guarded on the `seq`
read" (one conditional single-document write; a write that lost the race reads again), so two requests of
one sender, in one replica or in two, can never both pass on the same funds. Holds follow their operation:
the including block is noted, a block lost to a fork un-notes it, the end of the operation drops the hold.
Balances are read at a block: a hold whose operation was included at least INCLUDED_MARGIN blocks before
that block is in the balance already and no longer counts (an inclusion closer to it may not be, so it still
counts: the check errs towards refusing). Holds whose operation ended or never got created (a crash in
between) are swept.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.common import errors
from services.common.mongo import ServiceDatabase

SENDERS = "senders"
INCLUDED_MARGIN = 2  # blocks
RESERVE_TRIES = 50
SWEEP_AGE = timedelta(minutes=2)  # a hold this old without a live operation is left over from a crash


@dataclass(frozen=True, slots=True)
class InFlight:
    """What a sender's holds still take from its balances."""

    token_amount: int
    trx_sun: int


def in_flight(holds: Mapping[str, Any], token: str, balance_block: int, exclude: str = "") -> InFlight:
    """What `holds` (but `exclude`'s) take from balances read at `balance_block`."""
    amount = trx = 0
    for op_id, hold in holds.items():
        included = int(hold.get("block_number", 0))
        if op_id == exclude or 0 < included <= balance_block - INCLUDED_MARGIN:
            continue
        trx += int(hold["trx_sun"])
        if hold["token"] == token:
            amount += int(hold["amount"])
    return InFlight(amount, trx)


def _now() -> datetime:
    return datetime.now(UTC)


class Holds:
    """The senders' holds."""

    def __init__(self, db: ServiceDatabase) -> None:
        self._col = db.collection(SENDERS)
        # One asyncio lock per sender while anyone uses it: requests of this process take turns instead of
        # racing each other's guarded writes (other replicas still can; the guard decides).
        self._local: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def current(self, sender: str, token: str, balance_block: int, exclude: str = "") -> InFlight:
        doc = await self._col.find_one({"_id": sender}, {"holds": 1})
        return in_flight(doc.get("holds", {}) if doc else {}, token, balance_block, exclude)

    async def take(
        self,
        op_id: str,
        sender: str,
        token: str,
        amount: int,
        trx_sun: int,
        balance_block: int,
        check: Callable[[InFlight], None],
    ) -> None:
        """Store `op_id`'s hold once `check` accepts what else is in flight (it raises to refuse). The same
        operation again keeps its first hold."""
        local = self._local.get(sender)
        if local is None:
            local = self._local[sender] = asyncio.Lock()
        hold = {
            "token": token,
            "amount": amount,
            "trx_sun": trx_sun,
            "block_number": 0,
            "create_time": _now(),
        }
        async with local:
            for _ in range(RESERVE_TRIES):
                doc = await self._col.find_one({"_id": sender}) or {"seq": 0, "holds": {}}
                if op_id in doc["holds"]:
                    return
                check(in_flight(doc["holds"], token, balance_block, exclude=op_id))
                try:
                    won = await self._col.update_one(
                        {"_id": sender, "seq": doc["seq"]},
                        {"$set": {f"holds.{op_id}": hold}, "$inc": {"seq": 1}},
                        upsert=True,
                    )
                except DuplicateKeyError:  # another request created the sender's document first
                    continue
                if won.modified_count or won.upserted_id is not None:
                    return
        raise errors.Aborted("too many concurrent requests of this sender; retry", reason="SENDER_BUSY")

    async def included(self, op_id: str, sender: str, block_number: int) -> None:
        """The operation is in `block_number` (0: it left its block again). Unguarded: a concurrent
        reservation that read the hold before still counted it, which errs towards refusing."""
        await self._col.update_one(
            {"_id": sender, f"holds.{op_id}": {"$exists": True}},
            {"$set": {f"holds.{op_id}.block_number": block_number}},
        )

    async def release(self, op_id: str, sender: str) -> None:
        await self._col.update_one({"_id": sender}, {"$unset": {f"holds.{op_id}": ""}})

    async def sweep(self, alive: Callable[[str], Awaitable[bool]]) -> int:
        """Drop old holds whose operation ended or does not exist; returns how many."""
        dropped = 0
        cutoff = _now() - SWEEP_AGE
        async for doc in self._col.find({}, {"holds": 1}):
            for op_id, hold in doc.get("holds", {}).items():
                if hold["create_time"] < cutoff and not await alive(op_id):
                    await self.release(op_id, doc["_id"])
                    dropped += 1
        return dropped
