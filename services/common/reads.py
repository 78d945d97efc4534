"""Reads by `_id` coalesced without going stale: concurrent reads of one document share a database read.

A plain cache (or joining a read already in flight) can answer with a version older than a write another
replica finished before the caller asked. Here a caller never joins a read already sent: it waits for the
next one, which is sent after every waiting caller arrived, so each answer is at least as new as every write
completed before its caller asked, as if each had read alone. Under load (a hot wallet read by many
clients) one read serves everyone who asked while the previous one ran; alone, a read goes at once.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from services.common.mongo import Document


class CoalescedReads:
    """find_one({"_id": key}) on `collection`, one database read at a time per key."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection
        self._waiting: dict[str, list[asyncio.Future[Document | None]]] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}  # strong references: a task is otherwise weak

    async def get(self, key: str) -> Document | None:
        """The document (a copy the caller may change), or None."""
        waiter: asyncio.Future[Document | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(waiter)
        if key not in self._readers:
            self._readers[key] = asyncio.create_task(self._read(key))
        doc = await waiter
        return copy.deepcopy(doc) if doc is not None else None

    async def _read(self, key: str) -> None:
        waiters: list[asyncio.Future[Document | None]] = []
        try:
            while waiters := self._waiting.pop(key, []):
                try:
                    doc = await self._collection.find_one({"_id": key})
                except Exception as exc:  # each waiter of this read gets the error, as if it had read alone
                    _settle(waiters, exc=exc)
                else:
                    _settle(waiters, doc=doc)
        except BaseException:  # cancelled (shutting down): nobody may wait forever
            for w in waiters + self._waiting.pop(key, []):
                w.cancel()
            raise
        finally:
            del self._readers[key]


def _settle(
    waiters: list[asyncio.Future[Document | None]],
    doc: Document | None = None,
    exc: Exception | None = None,
) -> None:
    for w in waiters:
        if w.done():
            continue  # its caller gave up (cancelled)
        if exc is not None:
            w.set_exception(exc)
        else:
            w.set_result(doc)
