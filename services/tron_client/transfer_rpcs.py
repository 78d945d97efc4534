"""Watch-list and transfer RPCs of TronClientService, as a mixin the servicer inherits.

StreamTransfers replays the events after the consumer's cursor, then tails: it re-queries when block sync
in this process signals new events (Pulse) and at least every TRON_SYNC_POLL_SECONDS (events written by
another replica). Events come in cursor order, each once; see transfers.py for why none is ever skipped.
The watcher filter matches the watchers of the transfer's addresses at the time the event was written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from google.protobuf import timestamp_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as pb

from services.common.errors import FieldViolation, InvalidArgument
from services.common.idempotency import IdempotencyStore
from services.common.mongo import Document
from services.tron_client import convert
from services.tron_client.transfers import TransferStore, decode_page_token, encode_page_token
from services.tron_client.watch import Watched, WatchList

if TYPE_CHECKING:
    from services.tron_client.sync import BlockSync

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
STREAM_BATCH = 500


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


@dataclass(frozen=True)
class TransferFeed:
    """What the transfer RPCs need; `sync` (None when TRON_SYNC_ENABLED is off) reports the sync cursor and
    head lag through `sync.status()` (GetNetworkStatus sync_block / sync_lag_blocks)."""

    store: TransferStore
    watch: WatchList
    pulse: Pulse
    poll_seconds: float
    sync: BlockSync | None = None


def _ts(value: datetime | int | None) -> timestamp_pb2.Timestamp | None:
    """A stored datetime, or epoch milliseconds (0 / None: unset)."""
    if isinstance(value, datetime):
        ts = timestamp_pb2.Timestamp()
        ts.FromDatetime(value)
        return ts
    return convert.timestamp(value or 0)


def _check_addresses(by_field: Mapping[str, str]) -> None:
    """Field path -> address: each must be a TRON address."""
    bad: list[FieldViolation] = []
    for field, a in by_field.items():
        convert.read_address(a, field, bad)
    if bad:
        raise InvalidArgument("invalid address", bad, reason="INVALID_ADDRESS")


def _indexed(field: str, addresses: Iterable[str]) -> dict[str, str]:
    return {f"{field}[{i}]": a for i, a in enumerate(addresses)}


def _page_size(value: int) -> int:
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _decode_token(token: str, scope: str) -> str | None:
    if not token:
        return None
    try:
        value = decode_page_token(token)
    except ValueError:
        value = {}
    if value.get("s") != scope or not isinstance(value.get("k"), str):
        raise InvalidArgument(
            "page_token is not valid for this request",
            [FieldViolation("page_token", "not a token of this listing", "INVALID_PAGE_TOKEN")],
            reason="INVALID_PAGE_TOKEN",
        )
    return str(value["k"])


def _watched_pb(w: Watched) -> pb.WatchedAddress:
    return pb.WatchedAddress(
        address=w.address, watcher=w.watcher, label=w.label, create_time=_ts(w.create_time)
    )


def transfer_pb(doc: Document, *, cursor: int | None = None, update_time: Any = None) -> pb.Transfer:
    """A transfer document (or an event's snapshot of it) as the contract's message."""
    return pb.Transfer(
        transfer_id=f"{doc['txid']}:{doc['event_index']}",
        txid=doc["txid"],
        event_index=doc["event_index"],
        asset=doc["asset"],
        token_address=doc["token"],
        from_address=doc["from_address"],
        to_address=doc["to_address"],
        amount=doc["amount"],
        block=convert.block_ref(doc["block_number"], doc["block_id"], doc["block_time_ms"]),
        state=doc["state"],
        create_time=_ts(doc.get("create_time")),
        update_time=_ts(update_time if update_time is not None else doc.get("update_time")),
        cursor=cursor if cursor is not None else doc.get("cursor", 0),
    )


class TransferRpcs:
    """WatchAddresses, UnwatchAddresses, ListWatchedAddresses, StreamTransfers, ListTransfers."""

    _feed: TransferFeed
    _idempotency: IdempotencyStore  # the servicer's (BroadcastTransaction uses the same)

    def init_transfer_rpcs(self, feed: TransferFeed) -> None:
        """Give the RPCs their stores (called once when the servicer is built)."""
        self._feed = feed

    async def WatchAddresses(
        self, request: pb.WatchAddressesRequest, context: Any
    ) -> pb.WatchAddressesResponse:
        _check_addresses(_indexed("addresses", request.addresses))

        async def watch() -> pb.WatchAddressesResponse:
            entries = await self._feed.watch.watch(list(request.addresses), request.watcher, request.label)
            return pb.WatchAddressesResponse(watched_addresses=[_watched_pb(w) for w in entries])

        if request.request_id:
            return await self._idempotency.run_once(
                "WatchAddresses", request.request_id, request, pb.WatchAddressesResponse, watch
            )
        return await watch()

    async def UnwatchAddresses(
        self, request: pb.UnwatchAddressesRequest, context: Any
    ) -> pb.UnwatchAddressesResponse:
        _check_addresses(_indexed("addresses", request.addresses))

        async def unwatch() -> pb.UnwatchAddressesResponse:
            removed = await self._feed.watch.unwatch(list(request.addresses), request.watcher)
            return pb.UnwatchAddressesResponse(removed_count=removed)

        if request.request_id:
            return await self._idempotency.run_once(
                "UnwatchAddresses", request.request_id, request, pb.UnwatchAddressesResponse, unwatch
            )
        return await unwatch()

    async def ListWatchedAddresses(
        self, request: pb.ListWatchedAddressesRequest, context: Any
    ) -> pb.ListWatchedAddressesResponse:
        scope = f"watched:{request.watcher}"
        after = _decode_token(request.page_token, scope)
        entries, last = await self._feed.watch.list(request.watcher, _page_size(request.page_size), after)
        token = encode_page_token({"s": scope, "k": last}) if last is not None else ""
        return pb.ListWatchedAddressesResponse(
            watched_addresses=[_watched_pb(w) for w in entries], next_page_token=token
        )

    async def ListTransfers(self, request: pb.ListTransfersRequest, context: Any) -> pb.ListTransfersResponse:
        _check_addresses({"address": request.address})
        scope = f"transfers:{request.address}:{request.asset}:{request.direction}"
        after = _decode_token(request.page_token, scope)
        docs, last = await self._feed.store.list_transfers(
            request.address,
            asset=request.asset,
            direction=request.direction,
            page_size=_page_size(request.page_size),
            after=after,
        )
        token = encode_page_token({"s": scope, "k": last}) if last is not None else ""
        return pb.ListTransfersResponse(transfers=[transfer_pb(d) for d in docs], next_page_token=token)

    async def StreamTransfers(
        self, request: pb.StreamTransfersRequest, context: Any
    ) -> AsyncIterator[pb.StreamTransfersResponse]:
        _check_addresses(_indexed("addresses", request.addresses))
        addresses = set(request.addresses)
        watcher = request.watcher
        feed = self._feed
        after = request.after_cursor
        while True:
            wake = feed.pulse.current()  # before the queries: see Pulse
            watermark = await feed.store.watermark_now()
            events, after = await feed.store.events_after(after, watermark, STREAM_BATCH)
            for ev in events:
                if addresses and ev["from_address"] not in addresses and ev["to_address"] not in addresses:
                    continue
                if watcher and watcher not in ev.get("watchers", ()):
                    continue
                yield pb.StreamTransfersResponse(
                    cursor=ev["c"],
                    transfer=transfer_pb(ev, cursor=ev["c"], update_time=ev["event_time"]),
                    event_time=_ts(ev["event_time"]),
                )
            if after >= watermark:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), feed.poll_seconds)
