"""Idempotent mutating RPCs (AIP-155): the first result for a (method, request_id) is stored and replayed.

Use it through the decorator on a servicer method:

    @idempotent(pb.CreateWalletResponse)
    async def CreateWallet(self, request, context): ...

One document per key in `<service>_requests`, `_id` = "<method>/<request_id>"; inserting it is the claim
(FerretDB has no transactions, so the insert itself is the lock). Then:
- the same key with the same request gets the stored response; with a different request, FAILED_PRECONDITION
  REQUEST_ID_REUSED;
- a retry while the first attempt runs gets ABORTED REQUEST_IN_PROGRESS (retry later). The running attempt
  holds a lease (`lease_until`) that it renews while it works; when its process dies the lease runs out and
  the next retry takes the key over and runs the mutation again;
- a failed attempt releases the key (the client may retry); the first attempt runs to its end even when its
  caller goes away (a deadline or disconnect cancels the RPC), and shutdown waits for it (`drain`);
- records are kept for RETENTION (two days: far longer than any client's retries); after that the key is
  free again and `sweep` deletes the record (MongoDB could use a TTL index; the FerretDB test server has
  none).

Because a crashed attempt may have done part of its work, a mutation run under this store must be safe to
run again after a crash: guarded writes, ids from the request, or a harmless leftover (an unused wallet).
Mutations with irreversible steps (a broadcast, a payout) need more than this: each gets its own durable
state machine in its service, keyed by its own id, that stores the signed transaction before the first
broadcast.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar, cast

from google.protobuf.message import Message
from pymongo.errors import DuplicateKeyError, PyMongoError

from services.common.errors import Aborted, FailedPrecondition, FieldViolation, InvalidArgument
from services.common.logging import get_logger
from services.common.mongo import IndexSpec, ServiceDatabase

log = get_logger("services.idempotency")

R = TypeVar("R", bound=Message)
Q = TypeVar("Q", bound=Message)
S = TypeVar("S", bound="HasIdempotency")

COLLECTION = "requests"
INDEXES = (IndexSpec(COLLECTION, [("expire_time", 1)], name="expire_time"),)
RETENTION = timedelta(days=2)
LEASE = timedelta(seconds=30)  # renewed every LEASE / 3 while the attempt runs


def fingerprint(request: Message) -> str:
    """Stable hash of a request (deterministic serialization)."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


class IdempotencyStore:
    """Runs a mutation at most once per (method, request_id) while its record is kept."""

    def __init__(self, db: ServiceDatabase, *, lease: timedelta = LEASE, retention: timedelta = RETENTION):
        self._col = db.collection(COLLECTION)
        self._owner = uuid.uuid4().hex  # this process; a lease names its owner
        self._lease = lease
        self._retention = retention
        self._running: set[asyncio.Task[Any]] = set()  # strong references: the loop keeps only weak ones

    async def run_once(
        self,
        method: str,
        request_id: str,
        request: Message,
        response_type: type[R],
        mutate: Callable[[], Awaitable[R]],
    ) -> R:
        """Return mutate()'s result, or the stored result of an earlier call with the same key."""
        if not request_id:
            raise InvalidArgument(
                "request_id is required", [FieldViolation("request_id", "required", "REQUIRED")]
            )
        key = f"{method}/{request_id}"
        fp = fingerprint(request)
        if not await self._claim(key, method, request_id, fp):
            return await self._replay(key, fp, request_id, response_type)
        task = asyncio.create_task(self._complete(key, mutate))  # copies the call context (request id)
        self._running.add(task)
        task.add_done_callback(self._forget)
        return await asyncio.shield(task)

    async def drain(self, seconds: float) -> None:
        """Wait (at most `seconds`) for first attempts still running; shutdown calls it before closing."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=seconds)

    async def sweep(self) -> int:
        """Delete records past their retention whose attempt is not running; returns how many."""
        now = _now()
        result = await self._col.delete_many({"expire_time": {"$lt": now}, "lease_until": {"$lt": now}})
        return result.deleted_count

    # -- claiming ----------------------------------------------------------------------------------

    async def _claim(self, key: str, method: str, request_id: str, fp: str) -> bool:
        """Take the key: a new record, an expired one, or one whose attempt died. False: it is taken."""
        now = _now()
        fresh = {
            "method": method,
            "request_id": request_id,
            "fingerprint": fp,
            "state": "RUNNING",
            "owner": self._owner,
            "lease_until": now + self._lease,
            "create_time": now,
            "expire_time": now + self._retention,
        }
        try:
            await self._col.insert_one({"_id": key, **fresh})
            return True
        except DuplicateKeyError:
            pass
        # Past retention: the key is free again. Guarded on the record read, so one retry wins.
        taken = await self._col.find_one_and_update(
            {"_id": key, "expire_time": {"$lt": now}, "lease_until": {"$lt": now}},
            {"$set": fresh, "$unset": {"response": ""}},
        )
        if taken is not None:
            return True
        # A RUNNING record whose owner stopped renewing (its process died): the same request takes it over.
        taken = await self._col.find_one_and_update(
            {"_id": key, "state": "RUNNING", "fingerprint": fp, "lease_until": {"$lt": now}},
            {"$set": {"owner": self._owner, "lease_until": now + self._lease}},
        )
        if taken is not None:
            log.warning(
                "took over a request whose attempt died",
                extra={
                    "fields": {"method": method, "request_id": request_id, "previous_owner": taken["owner"]}
                },
            )
            return True
        return False

    async def _replay(self, key: str, fp: str, request_id: str, response_type: type[R]) -> R:
        doc = await self._col.find_one({"_id": key})
        meta = {"request_id": request_id}
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

    # -- running -----------------------------------------------------------------------------------

    async def _complete(self, key: str, mutate: Callable[[], Awaitable[R]]) -> R:
        mine = {"_id": key, "owner": self._owner, "state": "RUNNING"}
        renew = asyncio.create_task(self._renew(mine))
        try:
            response = await mutate()
        except Exception:
            # A failed attempt does not consume the key: the client may retry it.
            renew.cancel()
            await self._col.delete_one(mine)
            raise
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
        done = _now()  # the lease ends with the attempt
        stored = await self._col.update_one(
            mine,
            {"$set": {"state": "DONE", "response": response.SerializeToString(), "done_time": done,
                      "lease_until": done}},
        )  # fmt: skip
        if stored.modified_count != 1:  # our lease ran out and a retry took the key over
            log.warning("request finished after its lease was taken over", extra={"fields": {"key": key}})
        return response

    async def _renew(self, mine: dict[str, str]) -> None:
        period = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(period)
            try:
                await self._col.update_one(mine, {"$set": {"lease_until": _now() + self._lease}})
            except PyMongoError as exc:  # the next renewal tries again; the lease covers two misses
                log.warning("lease renewal failed: %s", exc.__class__.__name__)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()  # its caller may be gone: mark the outcome retrieved (no "never retrieved")


class HasIdempotency(Protocol):
    """A servicer whose mutations use `@idempotent`: it holds the process's store."""

    @property
    def idempotency(self) -> IdempotencyStore: ...


class _Keyed(Protocol):
    request_id: str


def idempotent(
    response_type: type[R],
) -> Callable[[Callable[[S, Q, Any], Awaitable[R]]], Callable[[S, Q, Any], Awaitable[R]]]:
    """Decorate a servicer RPC so it runs once per request_id (see the module docstring)."""

    def wrap(rpc: Callable[[S, Q, Any], Awaitable[R]]) -> Callable[[S, Q, Any], Awaitable[R]]:
        @functools.wraps(rpc)
        async def run(self: S, request: Q, context: Any) -> R:
            return await self.idempotency.run_once(
                rpc.__name__,
                cast(_Keyed, request).request_id,
                request,
                response_type,
                lambda: rpc(self, request, context),
            )

        return run

    return wrap


def _now() -> datetime:
    return datetime.now(UTC)
