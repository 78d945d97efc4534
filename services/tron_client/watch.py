"""The watch list: which addresses block sync records transfers for, and who asked (the watcher).

One document per (watcher, address) in `tron_client_watched`; watching is idempotent per pair. Block sync
matches on an in-memory index (20-byte hex -> watchers) that the RPCs in this process update at once and
that sync reloads whenever the shared `version` counter moved (another replica changed the list).

Block sync matches only blocks applied after the watch is stored; an earlier history is recorded only when
WatchAddresses names a start block (a history rescan, rescan.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import ASCENDING, UpdateOne

from services.common.mongo import Document, IndexSpec, ServiceDatabase
from services.common.tron.address import from_base58 as decode_tron_address

WATCHED = "watched"
VERSION = "watch_version"

INDEXES: Sequence[IndexSpec] = (
    IndexSpec(WATCHED, [("watcher", 1), ("address", 1)], unique=True, name="watcher_address"),
)


def hex20(address: str) -> str:
    """The 20-byte hex of a base58 address, as it appears in topics and (after '41') in contract values."""
    return decode_tron_address(address)[1:].hex()


@dataclass(frozen=True, slots=True)
class Watched:
    """One watch entry."""

    address: str
    watcher: str
    label: str
    create_time: datetime

    @property
    def id(self) -> str:
        return entry_id(self.watcher, self.address)


def entry_id(watcher: str, address: str) -> str:
    """`_id` of a watch entry: one per (watcher, address); ListWatchedAddresses pages in this order."""
    return f"{watcher}:{address}"


def _entry(doc: Document) -> Watched:
    return Watched(doc["address"], doc["watcher"], doc.get("label", ""), doc["create_time"])


class WatchList:
    """Watch entries in Mongo plus the in-memory index block sync matches against."""

    def __init__(self, db: ServiceDatabase) -> None:
        self._col = db.collection(WATCHED)
        self._version_col = db.collection(VERSION)
        self.index: dict[str, set[str]] = {}  # hex20 -> watchers
        self._version = -1

    def watchers_of(self, *addresses: str) -> list[str]:
        """Watchers of any of the (base58) addresses, sorted."""
        out: set[str] = set()
        for a in addresses:
            try:
                out |= self.index.get(hex20(a), set())
            except ValueError:
                continue
        return sorted(out)

    async def refresh(self) -> bool:
        """Reload the index if the list changed since the last load. True when reloaded."""
        doc = await self._version_col.find_one({"_id": VERSION})
        version = 0 if doc is None else int(doc["value"])
        if version == self._version:
            return False
        index: dict[str, set[str]] = {}
        async for d in self._col.find({}, {"address": 1, "watcher": 1}):
            index.setdefault(hex20(d["address"]), set()).add(d["watcher"])
        self.index, self._version = index, version
        return True

    async def _bump(self) -> None:
        await self._version_col.update_one({"_id": VERSION}, {"$inc": {"value": 1}}, upsert=True)

    async def watch(self, addresses: Sequence[str], watcher: str, label: str) -> list[Watched]:
        """Add (address, watcher) pairs; existing pairs keep their creation time and take the new label."""
        now = datetime.now(UTC)
        unique = list(dict.fromkeys(addresses))
        ops = [
            UpdateOne(
                {"_id": entry_id(watcher, a)},
                {
                    "$set": {"label": label},
                    "$setOnInsert": {"address": a, "watcher": watcher, "create_time": now},
                },
                upsert=True,
            )
            for a in unique
        ]
        result = await self._col.bulk_write(ops, ordered=False)
        # Visible to this process's sync at once; other replicas reload on the version bump.
        for a in unique:
            self.index.setdefault(hex20(a), set()).add(watcher)
        await self._bump()
        upserted = result.upserted_ids or {}
        entries = {a: Watched(a, watcher, label, now) for i, a in enumerate(unique) if i in upserted}
        for a in unique:  # pairs that existed keep their creation time (read by _id: FerretDB scans $in)
            if a not in entries:
                doc = await self._col.find_one({"_id": entry_id(watcher, a)})
                if doc is not None:
                    entries[a] = _entry(doc)
        return [entries[a] for a in addresses if a in entries]

    async def unwatch(self, addresses: Sequence[str], watcher: str) -> int:
        """Remove pairs; returns how many existed."""
        unique = list(dict.fromkeys(addresses))
        result = await self._col.delete_many({"_id": {"$in": [entry_id(watcher, a) for a in unique]}})
        for a in unique:
            h = hex20(a)
            ws = self.index.get(h)
            if ws is not None:
                ws.discard(watcher)
                if not ws:
                    del self.index[h]
        await self._bump()
        return int(result.deleted_count)

    async def list(self, watcher: str, address: str, limit: int, after: str | None) -> list[Watched]:
        """Up to `limit` entries (of `watcher` and of `address`, or all) in `id` order; `after` is the `id`
        the previous page ended at."""
        match: Document = {}
        if watcher:
            match["watcher"] = watcher
        if address:
            match["address"] = address
        if after is not None:
            match["_id"] = {"$gt": after}
        return [_entry(d) async for d in self._col.find(match).sort("_id", ASCENDING).limit(limit)]
