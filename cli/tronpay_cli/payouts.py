"""`tronpay payouts`: batches from a CSV file with live progress, and single payouts' get, history, cancel and
approve (payout-router).

`batch` checks the whole file first (payouts_csv), sends one CreatePayoutBatch per asset with a key derived
from the file (a rerun returns the same batch), then follows its payouts with ListPayouts filtered by batch
(GetPayoutBatch is internal) until each is CONFIRMED, FAILED or CANCELLED, and prints a summary.
`approve` is not a public RPC: it goes to payout-router's own port with the operator certificate, as the
approver named by --approver (whoever holds that certificate may approve as any approver: keep it as you
keep the signing keys).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from tronpay.common.v1 import common_pb2
from tronpay.payout_router.v1 import payout_router_pb2 as pb
from tronpay.payout_router.v1 import payout_router_pb2_grpc as pb_grpc

from tronpay_cli import output, payouts_csv
from tronpay_cli.base import command, parse_time, request_id_option
from tronpay_cli.connection import App, new_request_id
from tronpay_cli.errors import ExitCode

STATE = pb.Payout
FINAL = {STATE.STATE_CONFIRMED, STATE.STATE_FAILED, STATE.STATE_CANCELLED}
UNSUCCESSFUL = {STATE.STATE_FAILED, STATE.STATE_CANCELLED}
STATES = {output.enum_name(STATE.State, v, "STATE_").lower(): v for v in STATE.State.values() if v}
PAGE = 1000


@click.group("payouts")
def payouts() -> None:
    """Payouts: batches from CSV files, status, history, cancel, approve."""


def stub(app: App) -> pb_grpc.PayoutRouterServiceStub:
    return pb_grpc.PayoutRouterServiceStub(app.edge())


def _state(value: int) -> str:
    return output.enum_name(STATE.State, value, "STATE_")


def _asset(value: int) -> str:
    return output.enum_name(common_pb2.Asset, value, "ASSET_")


# -- batch ---------------------------------------------------------------------------------------------


def _refuse_file(app: App, path: Path, problems: list[tuple[int, str]]) -> NoReturn:
    if not app.as_json:
        for line, what in problems:
            output.note(f"{path}:{line}: {what}" if line else f"{path}: {what}")
    bad_lines = sorted({line for line, _ in problems if line})
    raise app.error(
        ExitCode.INVALID_ARGUMENT,
        f"{path}: refused, nothing was sent: {len(problems)} problem(s)"
        + (f" on line(s) {', '.join(map(str, bad_lines[:20]))}" if bad_lines else ""),
        details={"problems": [{"line": line, "message": what} for line, what in problems]},
    )


def batch_payouts(app: App, batch_id: str) -> Iterator[pb.Payout]:
    """Every payout of a batch, as the public API lists them."""
    token = ""
    while True:
        request = pb.ListPayoutsRequest(batch_id=batch_id, page_size=PAGE, page_token=token)
        response = app.call(stub(app).ListPayouts, request)
        yield from response.payouts
        token = response.next_page_token
        if not token:
            return


def _counts(states: Iterable[int]) -> str:
    counts = Counter(_state(s) for s in states)
    return " ".join(f"{name} {n}" for name, n in sorted(counts.items()))


def _follow(
    app: App, batches: list[pb.CreatePayoutBatchResponse], timeout: float, interval: float
) -> tuple[dict[str, pb.Payout], bool]:
    """Poll the batches' payouts until all are final or the time is up; (payouts by id, all final)."""
    latest = {p.payout_id: p for created in batches for p in created.payouts}
    deadline = time.monotonic() + timeout
    columns = (
        SpinnerColumn(),
        TextColumn("payouts final"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[states]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=output.stderr) as progress:
        task = progress.add_task("", total=len(latest), states=_counts(p.state for p in latest.values()))
        while True:
            for created in batches:
                latest.update((p.payout_id, p) for p in batch_payouts(app, created.batch.batch_id))
            done = sum(1 for p in latest.values() if p.state in FINAL)
            progress.update(task, completed=done, states=_counts(p.state for p in latest.values()))
            if done == len(latest):
                return latest, True
            if time.monotonic() >= deadline:
                return latest, False
            time.sleep(interval)


def _summary(batches: list[pb.CreatePayoutBatchResponse], latest: dict[str, pb.Payout]) -> None:
    rows = []
    for created in batches:
        members = [latest[p.payout_id] for p in created.payouts]
        for state, n in sorted(Counter(p.state for p in members).items()):
            amount = sum(p.amount for p in members if p.state == state)
            rows.append((created.batch.batch_id, _asset(created.batch.asset), _state(state), n,
                         output.asset_amount(amount, created.batch.asset)))  # fmt: skip
    output.stdout.print(
        output.table("payout summary", ("batch", "asset", "state", "payouts", "amount"), rows)
    )
    bad = [p for p in latest.values() if p.state in UNSUCCESSFUL]
    if bad:
        unpaid = [
            (p.payout_id, p.recipient_address, output.asset_amount(p.amount, p.asset), _state(p.state),
             p.failure_reason, p.reference)
            for p in bad
        ]  # fmt: skip
        columns = ("payout", "recipient", "amount", "state", "reason", "reference")
        output.stdout.print(output.table("not paid", columns, unpaid))


@command(payouts, "batch")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wallet", "wallet_id", required=True, help="Disburser wallet paying.")
@click.option(
    "--asset",
    type=click.Choice(sorted(payouts_csv.ASSETS)),
    default="usdt",
    show_default=True,
    help="Asset of the lines without an asset column.",
)
@click.option(
    "--decimal", is_flag=True, help="Amounts are whole USDT/TRX (2.5), converted exactly (6 decimals)."
)
@click.option("--reference", default="", help="Your reference for the batch.")
@click.option(
    "--request-id",
    default=None,
    help="Idempotency key (default: derived from the file's content, wallet and asset, so a rerun returns "
    "the batch it made); with several assets the asset name is appended.",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the payouts until final.")
@click.option(
    "--wait-timeout", type=click.FloatRange(min=1), default=3600, show_default=True, help="Seconds."
)
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="Poll seconds."
)
def batch(
    app: App,
    file: Path,
    wallet_id: str,
    asset: str,
    decimal: bool,
    reference: str,
    request_id: str | None,
    wait: bool,
    wait_timeout: float,
    interval: float,
) -> None:
    """Pay every line of a CSV file (recipient,amount[,reference,asset]); exit 9 if any payout failed."""
    data = file.read_bytes()
    try:
        rows = payouts_csv.read(data, decimal=decimal, default_asset=payouts_csv.ASSETS[asset])
    except payouts_csv.PayoutFileRefused as refused:
        _refuse_file(app, file, refused.problems)
    assets = sorted({r.asset for r in rows})
    created: list[pb.CreatePayoutBatchResponse] = []
    for paid_in in assets:
        suffix = f"-{_asset(paid_in).lower()}" if len(assets) > 1 else ""
        request = pb.CreatePayoutBatchRequest(
            request_id=(request_id + suffix)
            if request_id
            else payouts_csv.request_id(data, wallet_id, paid_in),
            wallet_id=wallet_id,
            asset=paid_in,
            reference=reference,
            items=[
                pb.PayoutItem(recipient_address=r.recipient, amount=r.amount, reference=r.reference)
                for r in rows
                if r.asset == paid_in
            ],
        )
        response = app.call(stub(app).CreatePayoutBatch, request)
        created.append(response)
        output.note(
            f"batch {response.batch.batch_id}: {response.batch.payout_count} {_asset(paid_in)} payouts, "
            f"{output.asset_amount(response.batch.total_amount, paid_in)} (request id {request.request_id})"
        )
    latest = {p.payout_id: p for c in created for p in c.payouts}
    complete = False
    if wait:
        latest, complete = _follow(app, created, wait_timeout, interval)
    if app.as_json:
        output.print_json(_batch_json(created, latest, timed_out=wait and not complete))
    else:
        _summary(created, latest)
    if any(p.state in UNSUCCESSFUL for p in latest.values()):
        failed = sum(1 for p in latest.values() if p.state in UNSUCCESSFUL)
        raise app.error(ExitCode.OUTCOME_FAILED, f"{failed} of {len(latest)} payouts were not paid")
    if wait and not complete:
        raise app.error(
            ExitCode.WAIT_TIMEOUT,
            f"not every payout is final after {wait_timeout:g}s "
            f"({_counts(p.state for p in latest.values())}); "
            "they go on: run the same command again to follow them",
        )


def _batch_json(
    created: list[pb.CreatePayoutBatchResponse], latest: dict[str, pb.Payout], *, timed_out: bool
) -> dict[str, Any]:
    return {
        "batches": [
            {
                "batch": output.message_dict(c.batch),
                "payouts": [output.message_dict(latest[p.payout_id]) for p in c.payouts],
            }
            for c in created
        ],
        "stateCounts": dict(Counter(STATE.State.Name(p.state) for p in latest.values())),
        "allFinal": all(p.state in FINAL for p in latest.values()),
        "waitTimedOut": timed_out,
    }


# -- single payouts ------------------------------------------------------------------------------------


def _show_payout(app: App, payout: pb.Payout, response: Any, request_id: str = "") -> None:
    if app.as_json:
        extra = {"requestId": request_id} if request_id else {}
        output.print_json({**extra, **output.message_dict(response)})
        return
    p = payout
    output.stdout.print(
        output.fields(
            f"payout {p.payout_id}",
            [
                ("request id", request_id),
                ("state", _state(p.state)),
                ("batch", p.batch_id),
                ("wallet", p.wallet_id),
                ("from", p.source_address),
                ("recipient", p.recipient_address),
                ("amount", f"{output.asset_amount(p.amount, p.asset)} ({p.amount} base units)"),
                ("reference", p.reference),
                (
                    "approvals",
                    f"{len(p.approvals)} of {p.required_approvals}" if p.required_approvals else "",
                ),
                ("txid", p.txid),
                ("on-chain batch", p.onchain_batch_id),
                ("fee TRX", output.units(p.fee_sun) if p.fee_sun else ""),
                ("failure", p.failure_reason),
                ("created", output.when(p.create_time)),
                ("confirmed", output.when(p.confirm_time)),
            ],
        )
    )


@command(payouts, "get")
@click.argument("payout_id")
def get(app: App, payout_id: str) -> None:
    """Show a payout."""
    response = app.call(stub(app).GetPayout, pb.GetPayoutRequest(payout_id=payout_id))
    _show_payout(app, response.payout, response)


@command(payouts, "history")
@click.option("--state", type=click.Choice(sorted(STATES)), default=None, help="Only payouts in this state.")
@click.option("--wallet", "wallet_id", default="", help="Only payouts from this wallet.")
@click.option("--recipient", "recipient_address", default="", help="Only payouts to this address.")
@click.option("--batch", "batch_id", default="", help="Only payouts of this batch.")
@click.option(
    "--since", default=None, help="Only payouts created at or after this time (ISO 8601 with offset)."
)
@click.option("--until", default=None, help="Only payouts created before this time.")
@click.option("--page-size", type=click.IntRange(0, 1000), default=0, help="Payouts per page (0: 50).")
@click.option("--page-token", default="", help="The next_page_token of an earlier page.")
def history(
    app: App,
    state: str | None,
    wallet_id: str,
    recipient_address: str,
    batch_id: str,
    since: str | None,
    until: str | None,
    page_size: int,
    page_token: str,
) -> None:
    """List payouts, newest first."""
    request = pb.ListPayoutsRequest(
        state=STATES[state] if state else STATE.STATE_UNSPECIFIED,
        wallet_id=wallet_id,
        recipient_address=recipient_address,
        batch_id=batch_id,
        page_size=page_size,
        page_token=page_token,
    )
    for field_name, value, option in (("start_time", since, "--since"), ("end_time", until, "--until")):
        moment = parse_time(app, value, option)
        if moment is not None:
            getattr(request, field_name).CopyFrom(moment)
    response = app.call(stub(app).ListPayouts, request)
    if app.as_json:
        output.print_json(response)
        return
    rows = [
        (p.payout_id, _state(p.state), p.recipient_address, output.asset_amount(p.amount, p.asset),
         p.batch_id, p.txid, output.when(p.create_time))
        for p in response.payouts
    ]  # fmt: skip
    columns = ("payout", "state", "recipient", "amount", "batch", "txid", "created")
    output.stdout.print(output.table("payouts", columns, rows))
    if response.next_page_token:
        output.line(f"next page: --page-token {response.next_page_token}")


@command(payouts, "cancel")
@click.argument("payout_id")
@click.option("--reason", default="", help="Why it is cancelled.")
@request_id_option
def cancel(app: App, payout_id: str, reason: str, request_id: str | None) -> None:
    """Cancel a payout that is not SUBMITTED yet (FAILED_PRECONDITION, exit 5, once it is)."""
    request = pb.CancelPayoutRequest(
        request_id=request_id or new_request_id(), payout_id=payout_id, reason=reason
    )
    response = app.call(stub(app).CancelPayout, request)
    _show_payout(app, response.payout, response, request.request_id)


@command(payouts, "approve")
@click.argument("payout_id")
@click.option("--approver", required=True, help="Approver id: the approver's subject (PAYOUT_APPROVERS).")
@click.option("--comment", default="", help="Approver's comment.")
@click.option(
    "--addr", default=None, help="payout-router's gRPC address (default: PAYOUT_ROUTER_HOST/_PORT, :8086)."
)
@request_id_option
def approve(
    app: App, payout_id: str, approver: str, comment: str, addr: str | None, request_id: str | None
) -> None:
    """Approve a payout waiting for approvals (operator certificate: ApprovePayout is not public)."""
    direct = app.operator("payout-router", addr)
    request = pb.ApprovePayoutRequest(
        request_id=request_id or new_request_id(), payout_id=payout_id, approver_id=approver, comment=comment
    )
    # The approver acts through the operator tool, which names them as the edge names a token's subject.
    identity = [("x-tronpay-subject", approver), ("x-tronpay-roles", "approver")]
    response = app.call(
        pb_grpc.PayoutRouterServiceStub(direct.channel).ApprovePayout,
        request,
        direct=direct,
        metadata=identity,
    )
    _show_payout(app, response.payout, response, request.request_id)
