"""Watch-list and transfer RPCs of TronClientService over the watch list and the transfer store; the
servicer (servicer.py) holds one TransferRpcs and delegates to it.

StreamTransfers replays the events after the consumer's cursor, then tails: it re-queries when block sync
in this process signals new events (the store's Pulse) and at least every TRON_SYNC_POLL_SECONDS (events
written by another replica). Events come in cursor order, each once; see transfers.py for why none is ever
skipped. The watcher filter matches the watchers of the transfer's addresses at the time the event was
written. The two list RPCs page by services.common.pagination (tokens bound to the request's filters).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from typing import Any

from google.protobuf import timestamp_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as pb

from services.common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from services.common.mongo import Document
from services.common.pagination import Page
from services.common.timestamps import timestamp, timestamp_ms
from services.tron_client import convert
from services.tron_client.rescan import RescanJobs
from services.tron_client.transfers import TransferStore
from services.tron_client.watch import Watched, WatchList

STREAM_BATCH = 500


def _ts(value: datetime | int | None) -> timestamp_pb2.Timestamp | None:
    """A stored datetime, or epoch milliseconds (0 / None: unset)."""
    return timestamp(value) if isinstance(value, datetime) else timestamp_ms(value or 0)


def _check_addresses(by_field: Mapping[str, str]) -> None:
    """Field path -> address: each must be a TRON address."""
    bad: list[FieldViolation] = []
    for field, a in by_field.items():
        convert.read_address(a, field, bad)
    if bad:
        raise InvalidArgument("invalid address", bad, reason="INVALID_ADDRESS")


def _indexed(field: str, addresses: Iterable[str]) -> dict[str, str]:
    return {f"{field}[{i}]": a for i, a in enumerate(addresses)}


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


def _position(page: Page) -> str | None:
    """Where the page starts: a token only ever holds a string key (`None`: the first page)."""
    return None if page.after is None else str(page.after)


class TransferRpcs:
    """WatchAddresses, UnwatchAddresses, ListWatchedAddresses, StreamTransfers, ListTransfers (without
    request_id handling: the servicer runs the two mutations under `@idempotent`)."""

    def __init__(
        self,
        store: TransferStore,
        watch_list: WatchList,
        poll_seconds: float,
        rescans: RescanJobs | None,
        max_rescan_blocks: int,
    ) -> None:
        self._store = store
        self._watch = watch_list
        self._poll_seconds = poll_seconds
        self._rescans = rescans  # None: block sync is off, nothing could run a rescan
        self._max_rescan_blocks = max_rescan_blocks

    async def watch(self, request: pb.WatchAddressesRequest) -> pb.WatchAddressesResponse:
        _check_addresses(_indexed("addresses", request.addresses))
        cursor = await self._rescan_bound(request.start_block)
        entries = await self._watch.watch(list(request.addresses), request.watcher, request.label)
        # After the entries: the writer that runs the job reloads the watch list once it sees the job.
        if (
            self._rescans is not None
            and request.start_block
            and (cursor is None or request.start_block <= cursor)
        ):
            await self._rescans.add(list(request.addresses), request.start_block)
        return pb.WatchAddressesResponse(watched_addresses=[_watched_pb(w) for w in entries])

    async def _rescan_bound(self, start_block: int) -> int | None:
        """The sync cursor a rescan from `start_block` would start behind; refuses what cannot run."""
        if not start_block:
            return None
        if self._rescans is None:
            raise FailedPrecondition(
                "block sync is off (TRON_SYNC_ENABLED): no history can be rescanned", reason="SYNC_DISABLED"
            )
        cursor = await self._store.cursor_number()
        if cursor is not None and start_block < cursor - self._max_rescan_blocks:
            lowest = cursor - self._max_rescan_blocks
            raise InvalidArgument(
                "start_block is too far behind",
                [FieldViolation("start_block", f"at least {lowest} (TRON_RESCAN_MAX_BLOCKS behind {cursor})",
                                "RESCAN_TOO_DEEP")],
            )  # fmt: skip
        return cursor

    async def unwatch(self, request: pb.UnwatchAddressesRequest) -> pb.UnwatchAddressesResponse:
        _check_addresses(_indexed("addresses", request.addresses))
        removed = await self._watch.unwatch(list(request.addresses), request.watcher)
        return pb.UnwatchAddressesResponse(removed_count=removed)

    async def list_watched(self, request: pb.ListWatchedAddressesRequest) -> pb.ListWatchedAddressesResponse:
        if request.address:
            _check_addresses({"address": request.address})
        page = Page.of(request)
        entries = await self._watch.list(request.watcher, request.address, page.fetch_limit, _position(page))
        entries, token = page.finish(entries, key=lambda w: w.id)
        return pb.ListWatchedAddressesResponse(
            watched_addresses=[_watched_pb(w) for w in entries], next_page_token=token
        )

    async def list_transfers(self, request: pb.ListTransfersRequest) -> pb.ListTransfersResponse:
        addresses = {"address": request.address}
        if request.token_address:
            addresses["token_address"] = request.token_address
        _check_addresses(addresses)
        page = Page.of(request)
        docs = await self._store.list_transfers(
            request.address,
            asset=request.asset,
            token=request.token_address,
            direction=request.direction,
            limit=page.fetch_limit,
            after=_position(page),
        )
        docs, token = page.finish(docs, key=lambda d: d["sort_key"])
        return pb.ListTransfersResponse(transfers=[transfer_pb(d) for d in docs], next_page_token=token)

    async def stream(self, request: pb.StreamTransfersRequest) -> AsyncIterator[pb.StreamTransfersResponse]:
        _check_addresses(_indexed("addresses", request.addresses))
        addresses = set(request.addresses)
        watcher = request.watcher
        store = self._store
        after = request.after_cursor
        while True:
            wake = store.pulse.current()  # before the queries: see Pulse
            watermark = await store.watermark_now()
            events, after = await store.events_after(after, watermark, STREAM_BATCH)
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
                    await asyncio.wait_for(wake.wait(), self._poll_seconds)
