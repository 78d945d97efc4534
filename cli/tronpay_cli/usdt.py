"""`tronpay usdt`: transfers (and following one to CONFIRMED), balances, history, approvals, allowances.

Following a transfer: usdt-manager's GetTransfer has no REST binding (the edge serves only the documented
paths); the operator certificate reaches it on usdt-manager's own port. With that certificate (`--tls-dir`,
TLS_DIR, `make up`'s .data/pki) `transfer --wait` and `get` read the transfer itself: every state to
CONFIRMED, FAILED (with the receipt's reason; exit 9) or EXPIRED. Without it, `--wait` follows what the public
API shows: the sender's recorded transfers (ListTransactions, which names the cluster's transfer id), SIGNED
-> INCLUDED (in a block) -> CONFIRMED (solidified); a transfer that fails on chain or expires emits no
Transfer event, so those endings show only as the wait running out (exit 10), and its answer says so.
"""

from __future__ import annotations

import time

import click
from tronpay.common.v1 import common_pb2
from tronpay.usdt_manager.v1 import usdt_manager_pb2 as pb
from tronpay.usdt_manager.v1 import usdt_manager_pb2_grpc as pb_grpc

from tronpay_cli import output
from tronpay_cli.amounts import option_amount
from tronpay_cli.base import command, request_id_option
from tronpay_cli.connection import App, Direct, new_request_id
from tronpay_cli.errors import ExitCode

OPERATION_STATE = "OPERATION_STATE_"
DIRECTIONS = {"in": common_pb2.DIRECTION_INCOMING, "out": common_pb2.DIRECTION_OUTGOING}
#: What a recorded transfer's finality says about the cluster's transfer.
SEEN_AS = {
    common_pb2.TRANSFER_STATE_INCLUDED: "INCLUDED",
    common_pb2.TRANSFER_STATE_FINAL: "CONFIRMED",
    common_pb2.TRANSFER_STATE_REVERTED: "REVERTED",  # dropped by a fork: usdt-manager sends it again
}
FINAL = (pb.OPERATION_STATE_CONFIRMED, pb.OPERATION_STATE_FAILED, pb.OPERATION_STATE_EXPIRED)
SEARCH_PAGES = 5  # how far back (pages of 100) to look for the transfer among the sender's newest


@click.group("usdt")
def usdt() -> None:
    """USDT (TRC20): transfers, balances, history, approvals."""


def stub(app: App) -> pb_grpc.UsdtManagerServiceStub:
    return pb_grpc.UsdtManagerServiceStub(app.edge())


def stub_of(direct: Direct) -> pb_grpc.UsdtManagerServiceStub:
    return pb_grpc.UsdtManagerServiceStub(direct.channel)


def _state(value: int) -> str:
    return output.enum_name(pb.OperationState, value, OPERATION_STATE)


def _find(app: App, transfer: pb.Transfer) -> pb.TransactionRecord | None:
    """The sender's recorded transfer that is this one (by transfer id or txid), if recorded yet."""
    page_token = ""
    for _ in range(SEARCH_PAGES):
        request = pb.ListTransactionsRequest(
            address=transfer.from_address,
            direction=common_pb2.DIRECTION_OUTGOING,
            token_address=transfer.token_address,
            page_size=100,
            page_token=page_token,
        )
        response = app.call(stub(app).ListTransactions, request)
        for record in response.transactions:
            if record.transfer_id == transfer.transfer_id or (transfer.txid and record.txid == transfer.txid):
                return record
        page_token = response.next_page_token
        if not page_token:
            return None
    return None


def follow_exact(
    app: App, direct: Direct, transfer: pb.Transfer, timeout: float, interval: float
) -> pb.Transfer:
    """GetTransfer (operator certificate) until the transfer is final, each state change on stderr: the
    CONFIRMED transfer, OUTCOME_FAILED for FAILED or EXPIRED, WAIT_TIMEOUT if not final in time."""
    state = _state(transfer.state)
    deadline = time.monotonic() + timeout
    request = pb.GetTransferRequest(transfer_id=transfer.transfer_id)
    with output.stderr.status(f"transfer {transfer.transfer_id}: {state}") as spinner:
        while True:
            if transfer.state in FINAL:
                break
            if time.monotonic() >= deadline:
                raise app.error(
                    ExitCode.WAIT_TIMEOUT,
                    f"transfer {transfer.transfer_id} not final after {timeout:g}s (last seen {state}); "
                    "it goes on",
                    details={"transferId": transfer.transfer_id, "lastSeen": state},
                )
            time.sleep(interval)
            transfer = app.call(stub_of(direct).GetTransfer, request, direct=direct).transfer
            seen = _state(transfer.state)
            if seen != state:
                where = f" (block {transfer.block_number})" if transfer.block_number else ""
                output.note(f"transfer {transfer.transfer_id}: {state} -> {seen}{where}")
                state = seen
                spinner.update(f"transfer {transfer.transfer_id}: {state}")
    if transfer.state != pb.OPERATION_STATE_CONFIRMED:
        raise app.error(
            ExitCode.OUTCOME_FAILED,
            f"transfer {transfer.transfer_id} is {state}: {transfer.failure_reason}",
            details={"transfer": output.message_dict(transfer)},
        )
    return transfer


def follow(app: App, transfer: pb.Transfer, timeout: float, interval: float) -> pb.TransactionRecord:
    """Poll until the transfer is CONFIRMED, printing each state change on stderr; WAIT_TIMEOUT if not."""
    state = _state(transfer.state)
    if transfer.state in (pb.OPERATION_STATE_FAILED, pb.OPERATION_STATE_EXPIRED):
        raise app.error(
            ExitCode.OUTCOME_FAILED, f"transfer {transfer.transfer_id} is {state}: {transfer.failure_reason}"
        )
    deadline = time.monotonic() + timeout
    with output.stderr.status(f"transfer {transfer.transfer_id}: {state}") as spinner:
        while True:
            record = _find(app, transfer)
            seen = SEEN_AS.get(record.state, state) if record is not None else state
            if seen != state:
                where = (
                    f" (block {record.block_number})" if record is not None and record.block_number else ""
                )
                output.note(f"transfer {transfer.transfer_id}: {state} -> {seen}{where}")
                state = seen
                spinner.update(f"transfer {transfer.transfer_id}: {state}")
            if record is not None and seen == "CONFIRMED":
                return record
            if time.monotonic() >= deadline:
                raise app.error(
                    ExitCode.WAIT_TIMEOUT,
                    f"transfer {transfer.transfer_id} not CONFIRMED after {timeout:g}s (last seen {state}); "
                    "it goes on. A transfer that FAILED on chain or EXPIRED leaves no record the public "
                    "API shows (GetTransfer is internal): see usdt-manager's logs and metrics",
                    details={"transferId": transfer.transfer_id, "lastSeen": state},
                )
            time.sleep(interval)


@command(usdt, "transfer")
@click.option("--wallet", "wallet_id", required=True, help="Wallet paying.")
@click.option("--to", "to_address", required=True, help="Recipient address (T...).")
@click.option("--amount", required=True, help="Amount in base units (2.5 USDT = 2500000), or see --decimal.")
@click.option(
    "--decimal", is_flag=True, help="--amount is in whole USDT (2.5), converted exactly (6 decimals)."
)
@click.option("--from", "from_address", default="", help="Sending address in the wallet (default: primary).")
@click.option("--reference", default="", help="Your reference, stored with the transfer.")
@click.option(
    "--fee-limit-sun", type=click.IntRange(0, 15_000_000_000), default=0, help="0: from the estimate."
)
@click.option("--token", "token_address", default="", help="TRC20 contract (default: USDT).")
@request_id_option
@click.option("--wait", is_flag=True, help="Follow the transfer until CONFIRMED (state changes on stderr).")
@click.option("--wait-timeout", type=click.FloatRange(min=1), default=300, show_default=True, help="Seconds.")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True, help="Poll seconds."
)
def transfer(
    app: App,
    wallet_id: str,
    to_address: str,
    amount: str,
    decimal: bool,
    from_address: str,
    reference: str,
    fee_limit_sun: int,
    token_address: str,
    request_id: str | None,
    wait: bool,
    wait_timeout: float,
    interval: float,
) -> None:
    """Send USDT from a wallet. Refusals name their reason (INSUFFICIENT_TOKEN_BALANCE, ...): exit 5."""
    request = pb.CreateTransferRequest(
        request_id=request_id or new_request_id(),
        wallet_id=wallet_id,
        from_address=from_address,
        to_address=to_address,
        amount=option_amount(app, amount, "--amount", decimal=decimal),
        fee_limit_sun=fee_limit_sun,
        reference=reference,
        token_address=token_address,
    )
    created = app.call(stub(app).CreateTransfer, request).transfer
    record = final = None
    if wait and app.has_operator_certificate():
        final = follow_exact(app, app.operator("usdt-manager"), created, wait_timeout, interval)
    elif wait:
        record = follow(app, created, wait_timeout, interval)
    if app.as_json:
        body = {"requestId": request.request_id, "transfer": output.message_dict(created)}
        if final is not None:
            body["confirmation"] = {"state": "CONFIRMED", "transfer": output.message_dict(final)}
        if record is not None:
            body["confirmation"] = {"state": "CONFIRMED", "record": output.message_dict(record)}
        output.print_json(body)
        return
    t = created
    output.stdout.print(
        output.fields(
            f"transfer {t.transfer_id}",
            [
                ("request id", request.request_id),
                ("state at creation", _state(t.state)),
                ("from", t.from_address),
                ("to", t.to_address),
                ("amount", f"{output.units(t.amount)} ({t.amount} base units)"),
                ("txid", t.txid),
                ("fee limit", f"{output.units(t.fee_limit_sun)} TRX"),
                ("energy estimate", t.energy_estimate),
                ("reference", t.reference),
            ],
        )
    )
    if record is not None:
        output.line(f"CONFIRMED in block {record.block_number} (txid {record.txid})")
    if final is not None:
        output.line(f"CONFIRMED in block {final.block_number} (txid {final.txid})")


@command(usdt, "get")
@click.argument("transfer_id")
@click.option("--addr", default=None, help="usdt-manager's gRPC address (default: USDT_MANAGER_HOST/_PORT).")
def get(app: App, transfer_id: str, addr: str | None) -> None:
    """A transfer with its whole lifecycle (operator certificate: GetTransfer is not public)."""
    direct = app.operator("usdt-manager", addr)
    t = app.call(stub_of(direct).GetTransfer, pb.GetTransferRequest(transfer_id=transfer_id), direct=direct)
    t = t.transfer
    if app.as_json:
        output.print_json(t)
        return
    output.stdout.print(
        output.fields(
            f"transfer {t.transfer_id}",
            [
                ("state", _state(t.state)),
                ("from", t.from_address),
                ("to", t.to_address),
                ("amount", f"{output.units(t.amount)} ({t.amount} base units)"),
                ("txid", t.txid),
                ("block", t.block_number or ""),
                ("attempts", len(t.attempts)),
                ("broadcasts", t.broadcast_count),
                ("energy source", t.energy_source),
                ("energy used", t.energy_used),
                ("TRX burned", f"{output.units(t.fee_sun)} TRX"),
                ("failure", t.failure_reason),
                ("reference", t.reference),
            ],
        )
    )


@command(usdt, "balance")
@click.argument("address")
@click.option("--token", "token_address", default="", help="TRC20 contract (default: USDT).")
def balance(app: App, address: str, token_address: str) -> None:
    """USDT balance of an address at the head and solidified, its TRX and blacklist flag."""
    response = app.call(
        stub(app).GetBalance, pb.GetBalanceRequest(address=address, token_address=token_address)
    )
    if app.as_json:
        output.print_json(response)
        return
    r = response
    output.stdout.print(
        output.fields(
            f"USDT balance of {r.address}",
            [
                ("balance (head)", f"{output.units(r.balance)} ({r.balance}) at block {r.block_number}"),
                ("balance (solidified)", f"{output.units(r.solidified_balance)} ({r.solidified_balance}) "
                 f"at block {r.solidified_block_number}"),
                ("TRX", output.units(r.trx_balance_sun)),
                ("blacklisted", "yes" if r.blacklisted else "no"),
                ("token", r.token_address),
            ],
        )
    )  # fmt: skip


@command(usdt, "transactions")
@click.argument("address")
@click.option("--direction", type=click.Choice(sorted(DIRECTIONS)), default=None, help="Only in or out.")
@click.option("--token", "token_address", default="", help="TRC20 contract (default: USDT).")
@click.option("--page-size", type=click.IntRange(0, 1000), default=0, help="Entries per page (0: 50).")
@click.option("--page-token", default="", help="The next_page_token of an earlier page.")
def transactions(
    app: App, address: str, direction: str | None, token_address: str, page_size: int, page_token: str
) -> None:
    """USDT transfers touching a watched address, newest first."""
    request = pb.ListTransactionsRequest(
        address=address,
        direction=DIRECTIONS[direction] if direction else common_pb2.DIRECTION_UNSPECIFIED,
        token_address=token_address,
        page_size=page_size,
        page_token=page_token,
    )
    response = app.call(stub(app).ListTransactions, request)
    if app.as_json:
        output.print_json(response)
        return
    rows = [
        (t.txid, output.enum_name(common_pb2.Direction, t.direction, "DIRECTION_"), output.units(t.amount),
         t.from_address, t.to_address, t.block_number,
         output.enum_name(common_pb2.TransferState, t.state, "TRANSFER_STATE_"), t.transfer_id)
        for t in response.transactions
    ]  # fmt: skip
    columns = ("txid", "direction", "USDT", "from", "to", "block", "state", "transfer")
    output.stdout.print(output.table(f"USDT transfers of {address}", columns, rows))
    if response.next_page_token:
        output.line(f"next page: --page-token {response.next_page_token}")


@command(usdt, "approve")
@click.option("--wallet", "wallet_id", required=True, help="Wallet owning the tokens.")
@click.option("--spender", "spender_address", required=True, help="Spender address (T...).")
@click.option("--amount", required=True, help="Allowance in base units (0 revokes), or see --decimal.")
@click.option("--decimal", is_flag=True, help="--amount is in whole USDT, converted exactly (6 decimals).")
@click.option("--owner", "owner_address", default="", help="Owner address in the wallet (default: primary).")
@click.option(
    "--fee-limit-sun", type=click.IntRange(0, 15_000_000_000), default=0, help="0: from the estimate."
)
@click.option("--token", "token_address", default="", help="TRC20 contract (default: USDT).")
@request_id_option
def approve(
    app: App,
    wallet_id: str,
    spender_address: str,
    amount: str,
    decimal: bool,
    owner_address: str,
    fee_limit_sun: int,
    token_address: str,
    request_id: str | None,
) -> None:
    """Approve a spender (approve(spender, amount)); the wallet's policy must list the spender."""
    request = pb.ApproveRequest(
        request_id=request_id or new_request_id(),
        wallet_id=wallet_id,
        owner_address=owner_address,
        spender_address=spender_address,
        amount=option_amount(app, amount, "--amount", decimal=decimal, allow_zero=True),
        fee_limit_sun=fee_limit_sun,
        token_address=token_address,
    )
    response = app.call(stub(app).Approve, request)
    if app.as_json:
        output.print_json({"requestId": request.request_id, **output.message_dict(response)})
        return
    a = response.approval
    output.stdout.print(
        output.fields(
            f"approval {a.approval_id}",
            [
                ("request id", request.request_id),
                ("state", _state(a.state)),
                ("owner", a.owner_address),
                ("spender", a.spender_address),
                ("amount", f"{output.units(a.amount)} ({a.amount} base units)"),
                ("txid", a.txid),
            ],
        )
    )


@command(usdt, "allowance")
@click.option("--owner", "owner_address", required=True, help="Owner address.")
@click.option("--spender", "spender_address", required=True, help="Spender address.")
@click.option("--token", "token_address", default="", help="TRC20 contract (default: USDT).")
def allowance(app: App, owner_address: str, spender_address: str, token_address: str) -> None:
    """How much USDT a spender may still move from an owner."""
    request = pb.GetAllowanceRequest(
        owner_address=owner_address, spender_address=spender_address, token_address=token_address
    )
    response = app.call(stub(app).GetAllowance, request)
    if app.as_json:
        output.print_json(response)
        return
    output.line(
        f"{response.owner_address} lets {response.spender_address} move {output.units(response.amount)} USDT "
        f"({response.amount} base units) at block {response.block_number}"
    )
