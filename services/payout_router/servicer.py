"""payout-router's gRPC servicer: validation beyond protovalidate (address checksums, duplicate items),
request_id handling, delegation to payouts.py.

InitiatePayout, CreatePayoutBatch, CancelPayout and ApprovePayout run once per request_id (`@idempotent`);
beneath that, the payouts' records are created once per request_id too (their ids derive from it), and each is
paid at most once on chain (its on-chain id derives from its id)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC as _UTC
from typing import Any

from tronpay.payout_router.v1 import payout_router_pb2 as pb
from tronpay.payout_router.v1 import payout_router_pb2_grpc

from services.common import errors
from services.common.idempotency import fingerprint, idempotent
from services.common.mongo import Document
from services.common.pagination import Page, position_of
from services.common.server import Runtime
from services.common.tron.address import from_base58
from services.payout_router.allowlist import Allowlist
from services.payout_router.convert import ASSET_OF, STATE_OF, batch_pb, payout_pb
from services.payout_router.payouts import Item, Payouts
from services.payout_router.settings import PayoutRouterSettings

Ctx = Any


def _address_violation(field: str, value: str) -> errors.FieldViolation | None:
    try:
        from_base58(value)
    except ValueError as exc:
        return errors.FieldViolation(field, f"not a TRON address: {exc}", "INVALID_ADDRESS")
    return None


def _check_addresses(**by_field: str) -> None:
    bad = [v for f, value in by_field.items() if value and (v := _address_violation(f, value)) is not None]
    if bad:
        raise errors.InvalidArgument("invalid address", bad, reason="INVALID_ADDRESS")


def _check_list(field: str, addresses: Sequence[str]) -> None:
    bad = [v for i, a in enumerate(addresses) if (v := _address_violation(f"{field}[{i}]", a)) is not None]
    if bad:
        raise errors.InvalidArgument("invalid address", bad, reason="INVALID_ADDRESS")


def _asset(value: int) -> str:
    if value not in ASSET_OF:
        raise errors.InvalidArgument(
            "asset must be TRX or USDT", [errors.FieldViolation("asset", "TRX or USDT", "UNSUPPORTED_ASSET")]
        )
    return ASSET_OF[value]  # type: ignore[index]


class PayoutRouterServicer(payout_router_pb2_grpc.PayoutRouterServiceServicer):
    """PayoutRouterService."""

    def __init__(self, rt: Runtime[PayoutRouterSettings], payouts: Payouts, allowlist: Allowlist) -> None:
        self._payouts = payouts
        self._allowlist = allowlist
        self.idempotency = rt.idempotency

    @idempotent(pb.InitiatePayoutResponse)
    async def InitiatePayout(
        self, request: pb.InitiatePayoutRequest, context: Ctx
    ) -> pb.InitiatePayoutResponse:
        _check_addresses(recipient_address=request.recipient_address)
        asset = _asset(request.asset)
        item = Item(request.recipient_address, request.amount, request.reference)
        _, (doc,) = await self._payouts.create(
            request.request_id,
            fingerprint(request),
            request.wallet_id,
            asset,
            [item],
            request.reference,
            batch=False,
        )
        return pb.InitiatePayoutResponse(payout=payout_pb(doc))

    async def GetPayout(self, request: pb.GetPayoutRequest, context: Ctx) -> pb.GetPayoutResponse:
        return pb.GetPayoutResponse(payout=payout_pb(await self._payouts.get(request.payout_id)))

    @idempotent(pb.CreatePayoutBatchResponse)
    async def CreatePayoutBatch(
        self, request: pb.CreatePayoutBatchRequest, context: Ctx
    ) -> pb.CreatePayoutBatchResponse:
        bad = [
            v
            for i, it in enumerate(request.items)
            if (v := _address_violation(f"items[{i}].recipient_address", it.recipient_address)) is not None
        ]
        if bad:
            raise errors.InvalidArgument("invalid address", bad, reason="INVALID_ADDRESS")
        asset = _asset(request.asset)
        items = [Item(it.recipient_address, it.amount, it.reference) for it in request.items]
        batch, docs = await self._payouts.create(
            request.request_id,
            fingerprint(request),
            request.wallet_id,
            asset,
            items,
            request.reference,
            batch=True,
        )
        if batch is None:
            raise errors.Aborted("the batch is being stored; retry", reason="CONFLICT")
        return pb.CreatePayoutBatchResponse(batch=batch_pb(batch, docs), payouts=[payout_pb(d) for d in docs])

    async def ListPayouts(self, request: pb.ListPayoutsRequest, context: Ctx) -> pb.ListPayoutsResponse:
        _check_addresses(recipient_address=request.recipient_address)
        page = Page.of(request)
        filters: Document = {}
        if request.state:
            filters["state"] = STATE_OF[request.state]
        if request.wallet_id:
            filters["wallet_id"] = request.wallet_id
        if request.recipient_address:
            filters["recipient_address"] = request.recipient_address
        if request.batch_id:
            filters["batch_id"] = request.batch_id
        if request.reference:
            filters["reference"] = request.reference
        window: Document = {}
        if request.HasField("start_time"):
            window["$gte"] = request.start_time.ToDatetime(tzinfo=_UTC)
        if request.HasField("end_time"):
            window["$lt"] = request.end_time.ToDatetime(tzinfo=_UTC)
        if window:
            filters["create_time"] = window
        docs = await self._payouts.find(filters, page.after, page.fetch_limit)
        items, token = page.finish(docs, key=position_of)
        return pb.ListPayoutsResponse(payouts=[payout_pb(d) for d in items], next_page_token=token)

    @idempotent(pb.CancelPayoutResponse)
    async def CancelPayout(self, request: pb.CancelPayoutRequest, context: Ctx) -> pb.CancelPayoutResponse:
        return pb.CancelPayoutResponse(
            payout=payout_pb(await self._payouts.cancel(request.payout_id, request.reason))
        )

    @idempotent(pb.ApprovePayoutResponse)
    async def ApprovePayout(self, request: pb.ApprovePayoutRequest, context: Ctx) -> pb.ApprovePayoutResponse:
        doc = await self._payouts.approve(request.payout_id, request.approver_id, request.comment)
        return pb.ApprovePayoutResponse(payout=payout_pb(doc))

    async def GetPayoutBatch(
        self, request: pb.GetPayoutBatchRequest, context: Ctx
    ) -> pb.GetPayoutBatchResponse:
        batch, members = await self._payouts.get_batch(request.batch_id)
        return pb.GetPayoutBatchResponse(batch=batch_pb(batch, members))

    @idempotent(pb.UpdateAllowlistResponse)
    async def UpdateAllowlist(
        self, request: pb.UpdateAllowlistRequest, context: Ctx
    ) -> pb.UpdateAllowlistResponse:
        """Attestations travel with each payout, so nothing is sent on chain here: txid stays empty."""
        if set(request.add_addresses) & set(request.remove_addresses):
            raise errors.InvalidArgument(
                "an address is both added and removed",
                [errors.FieldViolation("remove_addresses", "also in add_addresses", "CONFLICTING_ADDRESSES")],
            )
        _check_list("add_addresses", request.add_addresses)
        _check_list("remove_addresses", request.remove_addresses)
        await self._allowlist.update(request.request_id, request.add_addresses, request.remove_addresses)
        return pb.UpdateAllowlistResponse()

    async def CheckAllowlist(
        self, request: pb.CheckAllowlistRequest, context: Ctx
    ) -> pb.CheckAllowlistResponse:
        _check_addresses(address=request.address)
        return pb.CheckAllowlistResponse(allowed=await self._allowlist.failure(request.address) == "NONE")
