"""payment-gateway's gRPC servicer: validation beyond protovalidate, request_id handling, delegation.

CreatePayment, RefundPayment, ApproveRefund, AssignDeposit and RedeliverWebhook run once per request_id
(`@idempotent`); beneath that a payment is created once per (merchant, order id) and a refund once per
request id (their ids derive from them). ReceiveWebhook is authenticated by its HMAC signature, never trusts
the amounts a notification names, and only points detection at the transaction it names."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import orjson
from tronpay.payment_gateway.v1 import payment_gateway_pb2 as pb
from tronpay.payment_gateway.v1 import payment_gateway_pb2_grpc
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc

from services.common import errors
from services.common.chain_ops import upstream_error
from services.common.context import current as current_call
from services.common.idempotency import fingerprint, idempotent
from services.common.pagination import Page, position_of
from services.common.server import Runtime
from services.common.settings import ServiceName
from services.common.tron.address import from_base58
from services.payment_gateway import convert
from services.payment_gateway.ledger import Ledger
from services.payment_gateway.metrics import INBOUND_WEBHOOKS
from services.payment_gateway.payments import WATCHER, Payments
from services.payment_gateway.refunds import Refunds
from services.payment_gateway.settings import PaymentGatewaySettings
from services.payment_gateway.signing import parse_signature
from services.payment_gateway.sweeps import Sweeps
from services.payment_gateway.webhooks import (
    Webhooks,
    check_webhook_url,
    delivery_pb,
    inbound_secrets,
    verify_inbound,
)

Ctx = Any
SIGNATURE_HEADER = "x-tronpay-signature"
DEFAULT_REPORT_DAYS = 7


def _period(request: Any, default: timedelta) -> tuple[datetime, datetime]:
    end = request.end_time.ToDatetime(tzinfo=UTC) if request.HasField("end_time") else datetime.now(UTC)
    start = request.start_time.ToDatetime(tzinfo=UTC) if request.HasField("start_time") else end - default
    if start >= end:
        raise errors.InvalidArgument(
            "start_time must be before end_time",
            [errors.FieldViolation("start_time", "not before end_time", "INVALID_PERIOD")],
        )
    return start, end


def _check_address(field: str, value: str) -> None:
    try:
        from_base58(value)
    except ValueError as exc:
        raise errors.InvalidArgument(
            "invalid address", [errors.FieldViolation(field, f"not a TRON address: {exc}", "INVALID_ADDRESS")]
        ) from None


def _bad_body(description: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(
        "the notification's body is not valid", [errors.FieldViolation("body", description, "INVALID_BODY")]
    )


class PaymentGatewayServicer(payment_gateway_pb2_grpc.PaymentGatewayServiceServicer):
    """PaymentGatewayService."""

    def __init__(
        self,
        rt: Runtime[PaymentGatewaySettings],
        payments: Payments,
        refunds: Refunds,
        ledger: Ledger,
        webhooks: Webhooks,
        sweeps: Sweeps,
    ) -> None:
        self._settings = rt.settings
        self._clients = rt.clients
        self._payments = payments
        self._refunds = refunds
        self._ledger = ledger
        self._webhooks = webhooks
        self._sweeps = sweeps
        self.idempotency = rt.idempotency

    @property
    def _tron(self) -> tc_grpc.TronClientServiceStub:
        return self._clients.stub(ServiceName.TRON_CLIENT, tc_grpc.TronClientServiceStub)

    async def _payment_pb(self, doc: dict[str, Any]) -> pb.Payment:
        return convert.payment_pb(doc, await self._refunds.of_payment(doc))

    # ---- payments ---------------------------------------------------------------------------------
    @idempotent(pb.CreatePaymentResponse)
    async def CreatePayment(self, request: pb.CreatePaymentRequest, context: Ctx) -> pb.CreatePaymentResponse:
        s = self._settings
        asset = convert.ASSET_OF[request.asset]
        url = request.webhook_url or orjson.loads(s.PAYMENT_WEBHOOK_URLS).get(request.merchant_id, "")
        if url:
            check_webhook_url(url, s.webhook_allow_private)
        ttl = request.ttl.ToTimedelta() if request.HasField("ttl") else timedelta(0)
        fields = {
            "request_id": request.request_id,
            "merchant_id": request.merchant_id,
            "order_id": request.order_id,
            "asset": asset,
            "token": s.USDT_CONTRACT_ADDRESS if asset == "USDT" else "",
            "amount": request.amount,
            "description": request.description,
            "webhook_url": url,
            "metadata": dict(request.metadata),
        }
        doc = await self._payments.create(fields, ttl or timedelta(seconds=s.PAYMENT_DEFAULT_TTL_SECONDS))
        return pb.CreatePaymentResponse(payment=await self._payment_pb(doc))

    async def GetPayment(self, request: pb.GetPaymentRequest, context: Ctx) -> pb.GetPaymentResponse:
        return pb.GetPaymentResponse(
            payment=await self._payment_pb(await self._payments.get(request.payment_id))
        )

    async def ListPayments(self, request: pb.ListPaymentsRequest, context: Ctx) -> pb.ListPaymentsResponse:
        page = Page.of(request)
        filters: dict[str, Any] = {}
        if request.merchant_id:
            filters["merchant_id"] = request.merchant_id
        if request.state:
            filters["state"] = convert.STATE_OF[request.state]
        if request.HasField("start_time") or request.HasField("end_time"):
            start, end = _period(request, timedelta(days=36_500))
            filters["create_time"] = {"$gte": start, "$lt": end}
        docs = await self._payments.find(filters, page.after, page.fetch_limit)
        docs, token = page.finish(docs, key=position_of)
        return pb.ListPaymentsResponse(payments=[convert.payment_pb(d) for d in docs], next_page_token=token)

    # ---- refunds ----------------------------------------------------------------------------------
    @idempotent(pb.RefundPaymentResponse)
    async def RefundPayment(self, request: pb.RefundPaymentRequest, context: Ctx) -> pb.RefundPaymentResponse:
        _check_address("to_address", request.to_address)
        refund = await self._refunds.create(
            request.request_id,
            fingerprint(request),
            request.payment_id,
            request.amount,
            request.to_address,
            request.reason,
        )
        payment = await self._payments.get(request.payment_id)
        return pb.RefundPaymentResponse(
            refund=convert.refund_pb(refund), payment=await self._payment_pb(payment)
        )

    @idempotent(pb.ApproveRefundResponse)
    async def ApproveRefund(self, request: pb.ApproveRefundRequest, context: Ctx) -> pb.ApproveRefundResponse:
        return pb.ApproveRefundResponse(
            refund=convert.refund_pb(await self._refunds.approve(request.refund_id))
        )

    # ---- the unmatched inbox ----------------------------------------------------------------------
    async def ListUnmatchedDeposits(
        self, request: pb.ListUnmatchedDepositsRequest, context: Ctx
    ) -> pb.ListUnmatchedDepositsResponse:
        page = Page.of(request)
        filters: dict[str, Any] = {} if request.include_assigned else {"assigned_payment_id": ""}
        if request.merchant_id:
            filters["merchant_id"] = request.merchant_id
        docs = await self._payments.find_unmatched(filters, page.after, page.fetch_limit)
        docs, token = page.finish(docs, key=position_of)
        return pb.ListUnmatchedDepositsResponse(
            deposits=[convert.unmatched_pb(d) for d in docs], next_page_token=token
        )

    @idempotent(pb.AssignDepositResponse)
    async def AssignDeposit(self, request: pb.AssignDepositRequest, context: Ctx) -> pb.AssignDepositResponse:
        ctx = current_call()
        by = ctx.subject if ctx and ctx.subject else (ctx.caller if ctx else "")
        doc = await self._payments.assign(f"{request.txid}:{request.event_index}", request.payment_id, by)
        return pb.AssignDepositResponse(payment=await self._payment_pb(doc))

    # ---- sweeps, reconciliation, reports ----------------------------------------------------------
    async def ListSweeps(self, request: pb.ListSweepsRequest, context: Ctx) -> pb.ListSweepsResponse:
        page = Page.of(request)
        filters = {"merchant_id": request.merchant_id} if request.merchant_id else {}
        docs = await self._sweeps.find(filters, page.after, page.fetch_limit)
        docs, token = page.finish(docs, key=position_of)
        return pb.ListSweepsResponse(sweeps=[convert.sweep_pb(d) for d in docs], next_page_token=token)

    async def GetReconciliation(
        self, request: pb.GetReconciliationRequest, context: Ctx
    ) -> pb.GetReconciliationResponse:
        page = Page.of(request)
        start, end = _period(request, timedelta(days=1))
        result = await self._ledger.reconcile(start, end, request.merchant_id)
        offset = int(page.after or 0)
        shown = result.found[offset : offset + page.size]
        more = offset + page.size < len(result.found)
        response = pb.GetReconciliationResponse(
            discrepancies=[
                pb.Discrepancy(
                    kind=pb.Discrepancy.Kind.Value(f"KIND_{f.kind}"),
                    payment_id=f.payment_id,
                    txid=f.txid,
                    recorded_amount=f.recorded,
                    chain_amount=f.chain,
                    detail=f.detail,
                )
                for f in shown
            ],
            next_page_token=page.token_after(offset + page.size) if more else "",
            totals=[
                pb.ReconciliationTotal(
                    asset=convert.ASSET_PB[asset],
                    payment_count=t.payments,
                    expected_amount=t.expected,
                    received_amount=t.received,
                    refunded_amount=t.refunded,
                    chain_amount=t.chain,
                )
                for asset, t in sorted(result.totals.items())
            ],
            state_counts={f"STATE_{k}": v for k, v in result.states.items()},
            block_number=result.block,
        )
        response.start_time.FromDatetime(start)
        response.end_time.FromDatetime(end)
        return response

    async def GetPaymentReport(
        self, request: pb.GetPaymentReportRequest, context: Ctx
    ) -> pb.GetPaymentReportResponse:
        start, end = _period(request, timedelta(days=DEFAULT_REPORT_DAYS))
        rows = await self._ledger.report(start, end, request.merchant_id)
        response = pb.GetPaymentReportResponse(
            rows=[
                pb.PaymentReportRow(
                    merchant_id=r["merchant_id"],
                    day=r["day"],
                    asset=convert.ASSET_PB[r["asset"]],
                    payment_count=r["count"],
                    state_counts={f"STATE_{k}": v for k, v in r["states"].items()},
                    state_amounts={f"STATE_{k}": v for k, v in r["amounts"].items()},
                    received_amount=r["received"],
                    refunded_amount=r["refunded"],
                    success_rate_bps=r["success_rate_bps"],
                    median_time_to_paid=convert.duration(r["median_paid"]),
                    p99_time_to_paid=convert.duration(r["p99_paid"]),
                )
                for r in rows
            ]
        )
        response.start_time.FromDatetime(start)
        response.end_time.FromDatetime(end)
        return response

    # ---- outgoing webhooks ------------------------------------------------------------------------
    async def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: Ctx
    ) -> pb.ListWebhookDeliveriesResponse:
        docs, token = await self._webhooks.list_deliveries(
            request.payment_id, request.state, request.page_size, request.page_token
        )
        return pb.ListWebhookDeliveriesResponse(
            deliveries=[delivery_pb(d) for d in docs], next_page_token=token
        )

    @idempotent(pb.RedeliverWebhookResponse)
    async def RedeliverWebhook(
        self, request: pb.RedeliverWebhookRequest, context: Ctx
    ) -> pb.RedeliverWebhookResponse:
        doc = await self._webhooks.redeliver(request.delivery_id, request.request_id)
        return pb.RedeliverWebhookResponse(delivery=delivery_pb(doc))

    # ---- the incoming webhook ---------------------------------------------------------------------
    async def ReceiveWebhook(
        self, request: pb.ReceiveWebhookRequest, context: Ctx
    ) -> pb.ReceiveWebhookResponse:
        """Verify the signature, refuse replays, read the named transaction from the chain, and have
        tron-client rescan the deposit address from its block (detection then applies it as usual)."""
        s = self._settings
        body = bytes(request.body.data)
        header = dict(context.invocation_metadata() or ()).get(SIGNATURE_HEADER, "")
        verify_inbound(
            header,
            body,
            inbound_secrets(s, request.source),
            time.time(),
            s.PAYMENT_INBOUND_WEBHOOK_WINDOW_SECONDS,
        )
        _, signatures = parse_signature(header)
        replay_key = "sig:" + hashlib.sha256(",".join(sorted(signatures)).encode()).hexdigest()
        if not await self._webhooks.mark_seen(request.source, replay_key):
            raise errors.Unauthenticated(
                "this signed notification was received before (a replay)", reason="WEBHOOK_REPLAYED"
            )
        try:
            note = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _bad_body("not JSON") from None
        if not isinstance(note, dict):
            raise _bad_body("not a JSON object")
        txid, address = str(note.get("txid", "")).lower(), str(note.get("address", ""))
        event_id = str(note.get("event_id", "") or request.request_id or txid)
        if len(txid) != 64 or any(c not in "0123456789abcdef" for c in txid):
            raise _bad_body("txid must be 64 hex characters")
        _check_address("body.address", address)
        if not await self._webhooks.mark_seen(request.source, "evt:" + event_id):
            INBOUND_WEBHOOKS.labels("duplicate").inc()
            return pb.ReceiveWebhookResponse(accepted=False, event_id=event_id)
        try:
            await self._catch_up(txid, address)
        except BaseException:
            INBOUND_WEBHOOKS.labels("not_verified_on_chain").inc()
            await self._webhooks.forget_seen(request.source, "evt:" + event_id)  # the sender may retry
            raise
        INBOUND_WEBHOOKS.labels("accepted").inc()
        return pb.ReceiveWebhookResponse(accepted=True, event_id=event_id)

    async def _catch_up(self, txid: str, address: str) -> None:
        if await self._payments.addresses.find_one({"_id": address}) is None:
            raise errors.FailedPrecondition(
                "the address is not a deposit address of this gateway", reason="NOT_A_DEPOSIT_ADDRESS"
            )
        try:
            info = (await self._tron.GetTransactionInfo(tc.GetTransactionInfoRequest(txid=txid))).info
            tx = await self._tron.GetTransaction(tc.GetTransactionRequest(txid=txid))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise errors.FailedPrecondition(
                    "the transaction is not on chain",
                    reason="TRANSACTION_NOT_ON_CHAIN",
                    metadata={"txid": txid},
                ) from None
            raise upstream_error(exc, "tron-client", "to read the transaction") from None
        raw = from_base58(address)
        touched = raw in tx.transaction.raw_data or any(raw[1:] in t for log in info.logs for t in log.topics)
        if info.block.number <= 0 or not touched:
            raise errors.FailedPrecondition(
                "the transaction is in no block or does not pay the address",
                reason="TRANSACTION_DOES_NOT_PAY_ADDRESS",
                metadata={"txid": txid},
            )
        await self._tron.WatchAddresses(
            tc.WatchAddressesRequest(
                request_id=f"pg-hint-{txid}",
                addresses=[address],
                watcher=WATCHER,
                start_block=info.block.number,
            )
        )
