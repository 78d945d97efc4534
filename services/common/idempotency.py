"""Idempotent mutating RPCs: the first result for a (method, request_id) is stored and replayed.

One document per key in `<service>_requests`, claimed with a unique index (FerretDB has no
transactions, so the insert itself is the lock). A retry with the same key and the same request
gets the stored response; the same key with a different request is rejected; a retry while the
first call is still running gets ABORTED (retry later). The first call runs to its end even when its
caller goes away (a client deadline or disconnect cancels the RPC): cancelled half-way, it would leave
the key RUNNING and every retry ABORTED for good.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf.message import Message
from pymongo.errors import DuplicateKeyError

from services.common.errors import Aborted, FailedPrecondition
from services.common.mongo import IndexSpec, ServiceDatabase

M = TypeVar("M", bound=Message)

COLLECTION = "requests"
INDEXES = (IndexSpec(COLLECTION, [("method", 1), ("request_id", 1)], unique=True, name="method_request_id"),)


def fingerprint(request: Message) -> str:
    """Stable hash of a request (deterministic serialization)."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


class IdempotencyStore:
    """Runs a mutation at most once per (method, request_id)."""

    def __init__(self, db: ServiceDatabase) -> None:
        self._col = db.collection(COLLECTION)
        self._running: set[asyncio.Task[Any]] = set()  # strong references: the loop keeps only weak ones

    async def run_once(
        self,
        method: str,
        request_id: str,
        request: Message,
        response_type: type[M],
        mutate: Callable[[], Awaitable[M]],
    ) -> M:
        """Return mutate()'s result, or the stored result of an earlier call with the same key."""
        key = {"method": method, "request_id": request_id}
        fp = fingerprint(request)
        try:
            await self._col.insert_one({**key, "fingerprint": fp, "state": "RUNNING", "create_time": _now()})
        except DuplicateKeyError:
            return await self._replay(key, fp, response_type)
        task = asyncio.create_task(self._complete(key, mutate))  # copies the call context (request id)
        self._running.add(task)
        task.add_done_callback(self._forget)
        return await asyncio.shield(task)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()  # its caller may be gone: mark the outcome retrieved (no "never retrieved")

    async def _complete(self, key: dict[str, str], mutate: Callable[[], Awaitable[M]]) -> M:
        try:
            response = await mutate()
        except Exception:
            # A failed attempt does not consume the key: the client may retry it.
            await self._col.delete_one({**key, "state": "RUNNING"})
            raise
        await self._col.update_one(
            key, {"$set": {"state": "DONE", "response": response.SerializeToString(), "done_time": _now()}}
        )
        return response

    async def _replay(self, key: dict[str, str], fp: str, response_type: type[M]) -> M:
        doc = await self._col.find_one(key)
        meta = {"request_id": key["request_id"]}
        if doc is None:  # the first attempt failed and released the key just now
            raise Aborted(
                "request is being retried concurrently", reason="REQUEST_IN_PROGRESS", metadata=meta
            )
        if doc["fingerprint"] != fp:
            raise FailedPrecondition(
                "request_id was already used for a different request",
                reason="REQUEST_ID_REUSED",
                metadata=meta,
            )
        if doc["state"] != "DONE":
            raise Aborted(
                "a request with this request_id is in progress", reason="REQUEST_IN_PROGRESS", metadata=meta
            )
        return response_type.FromString(doc["response"])


def _now() -> datetime:
    return datetime.now(UTC)
