"""Detection: tron-client's transfer stream for the deposit addresses, applied to payments in order, with a
durable cursor.

One replica consumes at a time: the cursor document (`cursors`, `_id` "transfers") names its owner and a
lease the owner renews; another replica takes over once the lease ran out. The cursor is saved after events
were applied, never before, so a crash replays a few events; applying an event again changes nothing (each
transfer on a payment keeps the cursor of its last event), so every transfer counts exactly once across
restarts and replicas. Two consumers overlapping for a moment (a lease lost mid-event) is harmless for the
same reason, and every payment write is guarded on the payment's version. Events of different deposit
addresses are applied concurrently (`Lanes`), those of one address in stream order; the saved cursor is the
watermark below which every event is applied.

The cursor document also keeps the highest block of a FINAL event applied (`final_block`): tron-client emits
those in block order, so every final transfer up to that block is on the payments, and reconciliation
compares the chain with the records up to it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from pymongo.errors import DuplicateKeyError
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc

from services.common.background import BackgroundLoop
from services.common.chain_ops import Lifecycle
from services.common.logging import get_logger
from services.common.server import Runtime
from services.common.settings import ServiceName
from services.payment_gateway.payments import WATCHER, Payments
from services.payment_gateway.settings import PaymentGatewaySettings

log = get_logger(__name__)

Apply = Callable[[tc.Transfer, int], Awaitable[None]]

CURSORS = "cursors"
STREAM = "transfers"
LANES = 16  # deposit addresses applied concurrently (each address's events in order)
WINDOW = 512  # events in flight at most
SAVE_SECONDS = 0.25  # the cursor is saved at most this often (a replay after a crash is harmless)
STREAM_TIMEOUT = 300.0  # one stream call; reopened from the cursor when it ends


class Detection(BackgroundLoop):
    """The stream consumer (one replica at a time, by lease)."""

    def __init__(self, rt: Runtime[PaymentGatewaySettings], payments: Payments) -> None:
        self._settings = rt.settings
        self._clients = rt.clients
        self._payments = payments
        self._cursors = rt.db.collection(CURSORS)
        self.owner = Lifecycle.default_owner(rt.settings.port)
        self.cursor = 0  # last applied (this replica's view)
        self.final_block = 0  # the highest block of a FINAL event applied: reconciliation is valid up to it
        self._lanes: Lanes | None = None  # while consuming

    @property
    def _tron(self) -> tc_grpc.TronClientServiceStub:
        return self._clients.stub(ServiceName.TRON_CLIENT, tc_grpc.TronClientServiceStub)

    async def run(self) -> None:
        lease = self._settings.PAYMENT_LEASE_SECONDS
        while True:
            try:
                if await self._acquire():
                    await self._consume()
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.warning("transfer stream interrupted", extra={"fields": {"code": exc.code().name}})
            except Exception as exc:  # Mongo outage and the like: retried after a pause
                log.warning("detection step failed", extra={"fields": {"error": str(exc)}})
            await asyncio.sleep(min(lease / 3, 1.0))

    async def _acquire(self) -> bool:
        now = datetime.now(UTC)
        until = now + timedelta(seconds=self._settings.PAYMENT_LEASE_SECONDS)
        doc = await self._cursors.find_one_and_update(
            {"_id": STREAM, "$or": [{"owner": self.owner}, {"lease_until": {"$lt": now}}]},
            {"$set": {"owner": self.owner, "lease_until": until}},
        )
        if doc is not None:
            self.cursor, self.final_block = int(doc["cursor"]), int(doc.get("final_block", 0))
            return True
        try:
            await self._cursors.insert_one(
                {"_id": STREAM, "cursor": 0, "owner": self.owner, "lease_until": until}
            )
        except DuplicateKeyError:
            return False
        self.cursor = 0
        return True

    async def _renew(self) -> bool:
        """Save the watermark (cursor and final block) and extend the lease; False when another replica holds
        the lease now."""
        if self._lanes is not None:
            self.cursor, self.final_block = self._lanes.cursor, self._lanes.final_block
        until = datetime.now(UTC) + timedelta(seconds=self._settings.PAYMENT_LEASE_SECONDS)
        done = await self._cursors.update_one(
            {"_id": STREAM, "owner": self.owner},
            {
                "$max": {"cursor": self.cursor, "final_block": self.final_block},
                "$set": {"lease_until": until},
            },
        )
        return done.matched_count == 1

    async def _consume(self) -> None:
        renewer = asyncio.create_task(self._keep_lease())
        lanes = self._lanes = Lanes(self._payments.apply, self.cursor, self.final_block)
        try:
            request = tc.StreamTransfersRequest(after_cursor=self.cursor, watcher=WATCHER)
            saved = time.monotonic()
            async for event in self._tron.StreamTransfers(request, timeout=STREAM_TIMEOUT):
                if renewer.done():
                    return  # the lease is lost: stop applying
                await lanes.put(event)
                if time.monotonic() - saved >= SAVE_SECONDS:
                    if not await self._renew():
                        return
                    saved = time.monotonic()
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
        finally:
            with contextlib.suppress(Exception):
                await lanes.drain(self._settings.PAYMENT_LEASE_SECONDS)
            await lanes.close()
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            with contextlib.suppress(Exception):
                await self._renew()
            self._lanes = None

    async def _keep_lease(self) -> None:
        """Ends (and so stops consumption) when the lease cannot be renewed."""
        while True:
            if not await self._renew():
                return
            await asyncio.sleep(self._settings.PAYMENT_LEASE_SECONDS / 3)


class Lanes:
    """Applies stream events concurrently across deposit addresses and in order within each: every event of
    one address goes through the same lane. `cursor` is the watermark, the highest cursor with every event
    up to it applied (what may be saved), and `final_block` the highest block of a FINAL event up to it."""

    def __init__(self, apply: Apply, cursor: int, final_block: int) -> None:
        self._apply = apply
        self.cursor, self.final_block = cursor, final_block
        self._order: deque[list[Any]] = deque()  # [cursor, FINAL block or 0, applied], in stream order
        self._window = asyncio.Semaphore(WINDOW)
        self._queues: list[asyncio.Queue[tuple[tc.StreamTransfersResponse, list[Any]]]] = [
            asyncio.Queue() for _ in range(LANES)
        ]
        self._idle = asyncio.Event()
        self._idle.set()
        self._failed: BaseException | None = None
        self._tasks = [asyncio.create_task(self._lane(q)) for q in self._queues]

    async def put(self, event: tc.StreamTransfersResponse) -> None:
        """Queue an event (waits while WINDOW events are in flight); raises a lane's failure."""
        await self._window.acquire()
        if self._failed is not None:
            raise self._failed
        final = event.transfer.state == common_pb2.TRANSFER_STATE_FINAL
        entry = [event.cursor, event.transfer.block.number if final else 0, False]
        self._order.append(entry)
        self._idle.clear()
        lane = zlib.crc32(event.transfer.to_address.encode()) % LANES
        self._queues[lane].put_nowait((event, entry))

    async def _lane(self, queue: asyncio.Queue[tuple[tc.StreamTransfersResponse, list[Any]]]) -> None:
        while True:
            event, entry = await queue.get()
            try:
                await self._apply(event.transfer, event.cursor)
            except Exception as exc:  # the watermark stays before it: the event is applied after a restart
                log.warning(
                    "applying a transfer event failed",
                    extra={"fields": {"cursor": event.cursor, "error": f"{type(exc).__name__}: {exc}"}},
                )
                self._failed = exc
                self._window.release()
                self._idle.set()
                return
            entry[2] = True
            self._window.release()
            while self._order and self._order[0][2]:
                cursor, block, _ = self._order.popleft()
                self.cursor, self.final_block = cursor, max(self.final_block, block)
            if not self._order:
                self._idle.set()

    async def drain(self, seconds: float) -> None:
        """Wait (bounded) until every queued event is applied or a lane failed."""
        await asyncio.wait_for(self._idle.wait(), seconds)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
