"""`tronpay payments`: payment requests, refunds and reconciliation (payment-gateway).

payment-gateway may still answer UNIMPLEMENTED for some RPCs while it is being built: such a call exits 8
naming the RPC. `list` is not a public RPC (ListPayments is for the cluster's tools): it goes to
payment-gateway's own port with the operator certificate.
"""

from __future__ import annotations

import click
from google.protobuf.duration_pb2 import Duration
from tronpay.common.v1 import common_pb2
from tronpay.payment_gateway.v1 import payment_gateway_pb2 as pb
from tronpay.payment_gateway.v1 import payment_gateway_pb2_grpc as pb_grpc

from tronpay_cli import output
from tronpay_cli.amounts import option_amount
from tronpay_cli.base import command, parse_time, request_id_option
from tronpay_cli.connection import App, new_request_id
from tronpay_cli.errors import ExitCode

ASSETS = {"usdt": common_pb2.ASSET_USDT, "trx": common_pb2.ASSET_TRX}
STATES = {output.enum_name(pb.Payment.State, v, "STATE_").lower(): v for v in pb.Payment.State.values() if v}


@click.group("payments")
def payments() -> None:
    """Payments: create, show, list, refund, reconcile."""


def stub(app: App) -> pb_grpc.PaymentGatewayServiceStub:
    return pb_grpc.PaymentGatewayServiceStub(app.edge())


def _state(value: int) -> str:
    return output.enum_name(pb.Payment.State, value, "STATE_")


def _show_payment(payment: pb.Payment, request_id: str = "") -> None:
    p = payment
    output.stdout.print(
        output.fields(
            f"payment {p.payment_id}",
            [
                ("request id", request_id),
                ("state", _state(p.state)),
                ("merchant", p.merchant_id),
                ("order", p.order_id),
                ("amount", output.asset_amount(p.amount, p.asset)),
                ("received", output.asset_amount(p.amount_received, p.asset)),
                ("refunded", output.asset_amount(p.amount_refunded, p.asset)),
                ("deposit address", p.deposit_address),
                ("description", p.description),
                ("expires", output.when(p.expire_time)),
                ("paid", output.when(p.paid_time)),
            ],
        )
    )
    if p.transfers:
        rows = [
            (t.txid, t.from_address, output.asset_amount(t.amount, p.asset), t.block_number,
             output.enum_name(common_pb2.TransferState, t.state, "TRANSFER_STATE_"), "yes" if t.late else "")
            for t in p.transfers
        ]  # fmt: skip
        columns = ("txid", "from", "amount", "block", "state", "late")
        output.stdout.print(output.table("transfers received", columns, rows))
    if p.refunds:
        refunds = [
            (r.refund_id, output.enum_name(pb.Refund.State, r.state, "STATE_"),
             output.asset_amount(r.amount, p.asset), r.to_address, r.txid, r.failure_reason)
            for r in p.refunds
        ]  # fmt: skip
        output.stdout.print(
            output.table("refunds", ("refund", "state", "amount", "to", "txid", "failure"), refunds)
        )


def _metadata(app: App, pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise app.error(ExitCode.INVALID_ARGUMENT, f"--metadata {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out


@command(payments, "create")
@click.option("--merchant", "merchant_id", required=True, help="Merchant the payment is for.")
@click.option("--amount", required=True, help="Amount expected in base units, or see --decimal.")
@click.option(
    "--decimal", is_flag=True, help="--amount is in whole USDT/TRX, converted exactly (6 decimals)."
)
@click.option(
    "--asset", type=click.Choice(sorted(ASSETS)), default="usdt", show_default=True, help="Asset to pay in."
)
@click.option("--order-id", default="", help="The merchant's order id.")
@click.option("--description", default="", help="Shown to the payer.")
@click.option("--webhook-url", default="", help="Where the payment's webhooks go.")
@click.option(
    "--ttl", type=click.IntRange(0, 604_800), default=0, help="Seconds until it expires (0: default)."
)
@click.option("--metadata", "metadata", multiple=True, help="KEY=VALUE stored with the payment (repeatable).")
@request_id_option
def create(
    app: App,
    merchant_id: str,
    amount: str,
    decimal: bool,
    asset: str,
    order_id: str,
    description: str,
    webhook_url: str,
    ttl: int,
    metadata: tuple[str, ...],
    request_id: str | None,
) -> None:
    """Create a payment request with a fresh deposit address."""
    request = pb.CreatePaymentRequest(
        request_id=request_id or new_request_id(),
        merchant_id=merchant_id,
        order_id=order_id,
        asset=ASSETS[asset],
        amount=option_amount(app, amount, "--amount", decimal=decimal),
        description=description,
        webhook_url=webhook_url,
        metadata=_metadata(app, metadata),
    )
    if ttl:
        request.ttl.CopyFrom(Duration(seconds=ttl))
    response = app.call(stub(app).CreatePayment, request)
    if app.as_json:
        output.print_json({"requestId": request.request_id, **output.message_dict(response)})
        return
    _show_payment(response.payment, request.request_id)


@command(payments, "get")
@click.argument("payment_id")
def get(app: App, payment_id: str) -> None:
    """Show a payment with its transfers and refunds."""
    response = app.call(stub(app).GetPayment, pb.GetPaymentRequest(payment_id=payment_id))
    if app.as_json:
        output.print_json(response)
        return
    _show_payment(response.payment)


@command(payments, "list")
@click.option("--merchant", "merchant_id", default="", help="Only this merchant's payments.")
@click.option("--state", type=click.Choice(sorted(STATES)), default=None, help="Only payments in this state.")
@click.option(
    "--since", default=None, help="Only payments created at or after this time (ISO 8601 with offset)."
)
@click.option("--until", default=None, help="Only payments created before this time.")
@click.option("--page-size", type=click.IntRange(0, 1000), default=0, help="Payments per page (0: 50).")
@click.option("--page-token", default="", help="The next_page_token of an earlier page.")
@click.option(
    "--addr",
    default=None,
    help="payment-gateway's gRPC address (default: PAYMENT_GATEWAY_HOST/_PORT, :8090).",
)
def list_payments(
    app: App,
    merchant_id: str,
    state: str | None,
    since: str | None,
    until: str | None,
    page_size: int,
    page_token: str,
    addr: str | None,
) -> None:
    """List payments, newest first (operator certificate: ListPayments is not public)."""
    request = pb.ListPaymentsRequest(
        merchant_id=merchant_id,
        state=STATES[state] if state else pb.Payment.STATE_UNSPECIFIED,
        page_size=page_size,
        page_token=page_token,
    )
    for field_name, value, option in (("start_time", since, "--since"), ("end_time", until, "--until")):
        moment = parse_time(app, value, option)
        if moment is not None:
            getattr(request, field_name).CopyFrom(moment)
    direct = app.operator("payment-gateway", addr)
    response = app.call(
        pb_grpc.PaymentGatewayServiceStub(direct.channel).ListPayments, request, direct=direct
    )
    if app.as_json:
        output.print_json(response)
        return
    rows = [
        (p.payment_id, _state(p.state), p.merchant_id, p.order_id, output.asset_amount(p.amount, p.asset),
         output.asset_amount(p.amount_received, p.asset), output.when(p.create_time))
        for p in response.payments
    ]  # fmt: skip
    columns = ("payment", "state", "merchant", "order", "amount", "received", "created")
    output.stdout.print(output.table("payments", columns, rows))
    if response.next_page_token:
        output.line(f"next page: --page-token {response.next_page_token}")


@command(payments, "refund")
@click.argument("payment_id")
@click.option("--to", "to_address", required=True, help="Address to refund to.")
@click.option(
    "--amount", default="0", show_default=True, help="Base units to refund (0: all received), or --decimal."
)
@click.option(
    "--decimal", is_flag=True, help="--amount is in whole USDT/TRX, converted exactly (6 decimals)."
)
@click.option("--reason", default="", help="Why it is refunded.")
@request_id_option
def refund(
    app: App,
    payment_id: str,
    to_address: str,
    amount: str,
    decimal: bool,
    reason: str,
    request_id: str | None,
) -> None:
    """Refund all or part of a payment's received amount."""
    request = pb.RefundPaymentRequest(
        request_id=request_id or new_request_id(),
        payment_id=payment_id,
        amount=option_amount(app, amount, "--amount", decimal=decimal, allow_zero=True),
        to_address=to_address,
        reason=reason,
    )
    response = app.call(stub(app).RefundPayment, request)
    if app.as_json:
        output.print_json({"requestId": request.request_id, **output.message_dict(response)})
        return
    _show_payment(response.payment, request.request_id)


@command(payments, "reconciliation")
@click.option("--start", default=None, help="Period start (ISO 8601 with offset).")
@click.option("--end", default=None, help="Period end (ISO 8601 with offset).")
@click.option("--merchant", "merchant_id", default="", help="Only this merchant.")
@click.option(
    "--page-size", type=click.IntRange(0, 1000), default=0, help="Discrepancies per page (0: default)."
)
@click.option("--page-token", default="", help="The next_page_token of an earlier page.")
def reconciliation(
    app: App, start: str | None, end: str | None, merchant_id: str, page_size: int, page_token: str
) -> None:
    """Reconcile a period's payments against the chain: totals and discrepancies (exit 9 if any)."""
    request = pb.GetReconciliationRequest(merchant_id=merchant_id, page_size=page_size, page_token=page_token)
    for field_name, value, option in (("start_time", start, "--start"), ("end_time", end, "--end")):
        moment = parse_time(app, value, option)
        if moment is not None:
            getattr(request, field_name).CopyFrom(moment)
    response = app.call(stub(app).GetReconciliation, request)
    if app.as_json:
        output.print_json(response)
    else:
        rows = [
            (output.enum_name(common_pb2.Asset, t.asset, "ASSET_"), t.payment_count,
             output.asset_amount(t.expected_amount, t.asset), output.asset_amount(t.received_amount, t.asset),
             output.asset_amount(t.refunded_amount, t.asset), output.asset_amount(t.chain_amount, t.asset))
            for t in response.totals
        ]  # fmt: skip
        columns = ("asset", "payments", "expected", "received", "refunded", "on chain")
        title = f"reconciliation {output.when(response.start_time)} .. {output.when(response.end_time)}"
        output.stdout.print(output.table(title, columns, rows))
        issues = [
            (output.enum_name(pb.Discrepancy.Kind, d.kind, "KIND_"), d.payment_id, d.txid, d.recorded_amount,
             d.chain_amount, d.detail)
            for d in response.discrepancies
        ]  # fmt: skip
        columns = ("kind", "payment", "txid", "recorded", "on chain", "detail")
        output.stdout.print(output.table("discrepancies", columns, issues))
        if response.next_page_token:
            output.line(f"next page: --page-token {response.next_page_token}")
    if response.discrepancies:
        raise app.error(ExitCode.OUTCOME_FAILED, f"{len(response.discrepancies)} discrepancies on this page")
