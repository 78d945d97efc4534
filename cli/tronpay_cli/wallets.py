"""`tronpay wallets`: list, create, get, balance and transactions (wallet-manager through the edge)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from google.protobuf import json_format
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as pb_grpc

from tronpay_cli import output
from tronpay_cli.base import command, request_id_option
from tronpay_cli.connection import App, new_request_id
from tronpay_cli.errors import ExitCode

KINDS = {
    "hd": pb.Wallet.KIND_HD,
    "imported": pb.Wallet.KIND_IMPORTED,
    "watch-only": pb.Wallet.KIND_WATCH_ONLY,
    "ledger": pb.Wallet.KIND_LEDGER,
    "trezor": pb.Wallet.KIND_TREZOR,
}


@click.group("wallets")
def wallets() -> None:
    """Wallets: list, create, show, balances and history."""


def stub(app: App) -> pb_grpc.WalletManagerServiceStub:
    return pb_grpc.WalletManagerServiceStub(app.edge())


def _kind(wallet: pb.Wallet) -> str:
    return output.enum_name(pb.Wallet.Kind, wallet.kind, "KIND_")


def _show_wallet(app: App, response: pb.GetWalletResponse | pb.CreateWalletResponse) -> None:
    if app.as_json:
        output.print_json(response)
        return
    wallet = response.wallet
    output.stdout.print(
        output.fields(
            f"wallet {wallet.wallet_id}",
            [
                ("name", wallet.display_name),
                ("kind", _kind(wallet)),
                ("state", output.enum_name(pb.Wallet.State, wallet.state, "STATE_")),
                ("owner", wallet.owner_id),
                ("tenant", wallet.tenant),
                ("address", wallet.address),
                ("derivation path", wallet.derivation_path),
                ("addresses derived", wallet.address_count),
                ("labels", ", ".join(wallet.labels)),
                ("created", output.when(wallet.create_time)),
                ("updated", output.when(wallet.update_time)),
            ],
        )
    )


@command(wallets, "list")
@click.option("--owner", default="", help="Only wallets of this owner.")
@click.option("--kind", type=click.Choice(sorted(KINDS)), default=None, help="Only wallets of this kind.")
@click.option("--label", default="", help="Only wallets carrying this label.")
@click.option("--show-deleted", is_flag=True, help="List deleted wallets too.")
@click.option("--page-size", type=click.IntRange(0, 1000), default=0, help="Wallets per page (0: 50).")
@click.option("--page-token", default="", help="The next_page_token of an earlier page.")
def list_wallets(
    app: App, owner: str, kind: str | None, label: str, show_deleted: bool, page_size: int, page_token: str
) -> None:
    """List wallets (one page; the next page's token is printed)."""
    request = pb.ListWalletsRequest(
        owner_id=owner,
        kind=KINDS[kind] if kind else pb.Wallet.KIND_UNSPECIFIED,
        label=label,
        show_deleted=show_deleted,
        page_size=page_size,
        page_token=page_token,
    )
    response = app.call(stub(app).ListWallets, request)
    if app.as_json:
        output.print_json(response)
        return
    rows = [
        (w.wallet_id, w.display_name, _kind(w), output.enum_name(pb.Wallet.State, w.state, "STATE_"),
         w.address, w.owner_id, ",".join(w.labels))
        for w in response.wallets
    ]  # fmt: skip
    output.stdout.print(
        output.table("wallets", ("id", "name", "kind", "state", "address", "owner", "labels"), rows)
    )
    if response.next_page_token:
        output.line(f"next page: --page-token {response.next_page_token}")


def _private_key(app: App, source: str | None) -> str:
    """The private key of an IMPORTED wallet from a file or stdin ("-"): never from the command line."""
    if source is None:
        return ""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise app.error(
            ExitCode.INVALID_ARGUMENT, f"--private-key-file: cannot read {source}: {exc.strerror}"
        ) from None
    return text.strip().removeprefix("0x")


def _policy(app: App, path: Path | None) -> pb.SigningPolicy | None:
    if path is None:
        return None
    try:
        return json_format.Parse(path.read_text(), pb.SigningPolicy())
    except (OSError, json_format.ParseError, json.JSONDecodeError) as exc:
        raise app.error(ExitCode.INVALID_ARGUMENT, f"--policy {path}: {exc}") from None


@command(wallets, "create")
@click.option("--owner", required=True, help="Owner (merchant, user or operator id) of the wallet.")
@click.option(
    "--kind", type=click.Choice(sorted(KINDS)), default="hd", show_default=True, help="How it holds keys."
)
@click.option("--name", default="", help="Display name.")
@click.option("--label", "labels", multiple=True, help="A label (repeatable).")
@click.option("--address", default="", help="WATCH_ONLY: the address to watch.")
@click.option("--xpub", default="", help="WATCH_ONLY: the account xpub to watch.")
@click.option(
    "--private-key-file",
    default=None,
    help="IMPORTED: a file holding the private key as 64 hex characters, or - for stdin "
    "(never on the command line).",
)
@click.option(
    "--policy",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Signing policy as JSON (the SigningPolicy message, e.g. "
    '{"allowedContractTypes": ["CONTRACT_TYPE_TRIGGER_SMART_CONTRACT"], '
    '"allowedCallers": ["usdt-manager"]}).',
)
@click.option(
    "--account-index", type=click.IntRange(0, 2**31 - 1), default=0, help="LEDGER/TREZOR: BIP44 account."
)
@request_id_option
def create(
    app: App,
    owner: str,
    kind: str,
    name: str,
    labels: tuple[str, ...],
    address: str,
    xpub: str,
    private_key_file: str | None,
    policy: Path | None,
    account_index: int,
    request_id: str | None,
) -> None:
    """Create a wallet. TronLink wallets need a signed challenge and are created through the REST API."""
    wallet = pb.Wallet(
        owner_id=owner, kind=KINDS[kind], display_name=name, labels=list(labels), address=address, xpub=xpub
    )
    signing = _policy(app, policy)
    if signing is not None:
        wallet.policy.CopyFrom(signing)
    request = pb.CreateWalletRequest(
        request_id=request_id or new_request_id(),
        wallet=wallet,
        private_key=_private_key(app, private_key_file),
        account_index=account_index,
    )
    response = app.call(stub(app).CreateWallet, request)
    _show_wallet(app, response)


@command(wallets, "get")
@click.argument("wallet_id")
def get(app: App, wallet_id: str) -> None:
    """Show a wallet."""
    response = app.call(stub(app).GetWallet, pb.GetWalletRequest(wallet_id=wallet_id))
    _show_wallet(app, response)


@command(wallets, "balance")
@click.argument("wallet_id")
def balance(app: App, wallet_id: str) -> None:
    """Show a wallet's TRX, USDT and token balances, energy and bandwidth."""
    response = app.call(stub(app).GetWalletBalance, pb.GetWalletBalanceRequest(wallet_id=wallet_id))
    if app.as_json:
        output.print_json(response)
        return
    rows = [("TRX", "", output.units(response.trx_balance_sun), response.trx_balance_sun)]
    rows += [
        (b.symbol or output.enum_name(common_pb2.Asset, b.asset, "ASSET_"), b.token_address,
         output.units(b.amount, b.decimals), b.amount)
        for b in response.token_balances
    ]  # fmt: skip
    title = f"wallet {response.wallet_id} ({response.address}) at block {response.block_number}"
    output.stdout.print(output.table(title, ("asset", "token", "balance", "base units"), rows))
    resources = [
        (output.enum_name(common_pb2.ResourceType, r.resource, "RESOURCE_TYPE_"), r.limit, r.used,
         output.units(r.staked_sun))
        for r in response.resources
    ]  # fmt: skip
    output.stdout.print(output.table("resources", ("resource", "limit", "used", "staked TRX"), resources))


@command(wallets, "transactions")
@click.argument("wallet_id")
@click.option("--page-size", type=click.IntRange(0, 1000), default=0, help="Entries per page (0: 50).")
@click.option("--page-token", default="", help="The next_page_token of an earlier page.")
def transactions(app: App, wallet_id: str, page_size: int, page_token: str) -> None:
    """List a wallet's transfers (TRX and tokens), newest first."""
    request = pb.ListWalletTransactionsRequest(
        wallet_id=wallet_id, page_size=page_size, page_token=page_token
    )
    response = app.call(stub(app).ListWalletTransactions, request)
    if app.as_json:
        output.print_json(response)
        return
    rows = [
        (t.txid, output.enum_name(common_pb2.Direction, t.direction, "DIRECTION_"),
         output.asset_amount(t.amount, t.asset), t.from_address, t.to_address, t.block_number,
         output.enum_name(common_pb2.TransferState, t.state, "TRANSFER_STATE_"))
        for t in response.transactions
    ]  # fmt: skip
    columns = ("txid", "direction", "amount", "from", "to", "block", "state")
    output.stdout.print(output.table(f"transactions of {wallet_id}", columns, rows))
    if response.next_page_token:
        output.line(f"next page: --page-token {response.next_page_token}")
