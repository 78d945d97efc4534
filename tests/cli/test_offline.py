"""The CLI's pieces that need no cluster: exact amounts, the payout file's checks, the status -> exit code
mapping, and the exit codes and commands docs/cli.md documents."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import grpc
import pytest
from click.testing import CliRunner
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from tronpay.audit.v1 import audit_pb2
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2
from tronpay_cli import payouts_csv
from tronpay_cli.amounts import parse_amount
from tronpay_cli.connection import is_loopback, rpc_name
from tronpay_cli.errors import EXIT_CODE_HELP, ExitCode, from_rpc_error
from tronpay_cli.main import cli
from tronpay_cli.sync import Rate, eta_seconds

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "cli.md"
USDT = common_pb2.ASSET_USDT
TRX = common_pb2.ASSET_TRX
A = "TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HC"
B = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"


@pytest.mark.parametrize(
    ("text", "decimal", "units"),
    [("2.5", True, 2_500_000), ("0.000001", True, 1), (".5", True, 500_000), ("10", True, 10_000_000),
     ("9223372036854.775807", True, 2**63 - 1), ("2500000", False, 2_500_000), (" 7 ", False, 7)],
)  # fmt: skip
def test_amounts_convert_exactly(text: str, decimal: bool, units: int) -> None:
    assert parse_amount(text, decimal=decimal) == units


@pytest.mark.parametrize(
    ("text", "decimal", "why"),
    [("1.0000001", True, "more than 6 decimal places"),
     ("1.0000000000000000000000000001", True, "more than 6 decimal places"),  # beyond Decimal's 28 digits
     ("1e3", True, "no sign, exponent"), ("-1", True, "no sign"), ("1,5", True, "not a decimal"),
     ("NaN", True, "not a decimal"), ("9223372036854.775808", True, "too large"),
     ("2.5", False, "pass --decimal"), ("0", False, "must be positive"), ("", False, "not a whole number")],
)  # fmt: skip
def test_amounts_that_do_not_convert_exactly_are_refused(text: str, decimal: bool, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_amount(text, decimal=decimal)


def test_zero_is_an_amount_where_allowed() -> None:
    assert parse_amount("0", decimal=True, allow_zero=True) == 0


def test_a_payout_file_with_or_without_header() -> None:
    with_header = f"\ufeffamount,recipient,asset,reference\n1.5,{A},trx,r1\n\n2,{B},,\n".encode()
    rows = payouts_csv.read(with_header, decimal=True, default_asset=USDT)
    assert [(r.line, r.recipient, r.amount, r.asset, r.reference) for r in rows] == [
        (2, A, 1_500_000, TRX, "r1"),
        (4, B, 2_000_000, USDT, ""),
    ]
    plain = payouts_csv.read(f"{A},100\n{B},200,ref,USDT\n".encode(), decimal=False, default_asset=TRX)
    assert [(r.line, r.amount, r.asset) for r in plain] == [(1, 100, TRX), (2, 200, USDT)]


def test_every_bad_line_of_a_payout_file_is_named() -> None:
    text = (
        "recipient,amount,reference,asset\n"
        f"{A},1\n"
        "TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HD,1\n"  # checksum off by one character
        f"{A},1.5\n"  # not base units
        f"{A},1,{'x' * 129}\n"
        f"{A},1,r,EUR\n"
        f"{A},1,r,USDT,extra\n"
    )
    with pytest.raises(payouts_csv.PayoutFileRefused) as refused:
        payouts_csv.read(text.encode(), decimal=False, default_asset=USDT)
    assert [(line, what.split(" ")[0]) for line, what in refused.value.problems] == [
        (3, "recipient"),
        (4, "amount"),
        (5, "reference"),
        (6, "asset"),
        (7, "5"),
    ]
    assert "checksum" in refused.value.problems[0][1]


@pytest.mark.parametrize(
    ("data", "problem"),
    [(b"", (0, "no payouts in the file")), (b"recipient,amount\n", (0, "no payouts in the file")),
     (b"recipient,sum\n", (1, "header recipient,sum")), (b"\xff\xfe", (0, "not UTF-8")),
     (f"{A},1\n".encode() * (payouts_csv.MAX_ITEMS + 1), (0, "10001 USDT payouts"))],
)  # fmt: skip
def test_a_payout_file_without_good_payouts_is_refused(data: bytes, problem: tuple[int, str]) -> None:
    with pytest.raises(payouts_csv.PayoutFileRefused) as refused:
        payouts_csv.read(data, decimal=False, default_asset=USDT)
    line, what = refused.value.problems[0]
    assert line == problem[0] and what.startswith(problem[1])


def test_the_batch_key_follows_the_file_wallet_and_asset() -> None:
    key = payouts_csv.request_id(b"a,1\n", "wal_1", USDT)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}", key)  # CreatePayoutBatchRequest.request_id
    assert key == payouts_csv.request_id(b"a,1\n", "wal_1", USDT)
    others = {
        payouts_csv.request_id(b"a,2\n", "wal_1", USDT),
        payouts_csv.request_id(b"a,1\n", "wal_2", USDT),
        payouts_csv.request_id(b"a,1\n", "wal_1", TRX),
    }
    assert key not in others and len(others) == 3


class FakeError(grpc.RpcError, grpc.Call):
    """A failed call as grpc raises it, with a google.rpc.Status in the trailers."""

    def __init__(self, code: grpc.StatusCode, details: str, *extras: Any) -> None:
        self._code, self._details = code, details
        status = status_pb2.Status(code=code.value[0], message=details)
        for extra in extras:
            packed = any_pb2.Any()
            packed.Pack(extra)
            status.details.append(packed)
        self._trailers = (("grpc-status-details-bin", status.SerializeToString()),)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailers

    def initial_metadata(self) -> Any:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


S = grpc.StatusCode


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [(S.NOT_FOUND, 3), (S.INVALID_ARGUMENT, 4), (S.OUT_OF_RANGE, 4), (S.FAILED_PRECONDITION, 5),
     (S.ALREADY_EXISTS, 5), (S.UNAUTHENTICATED, 6), (S.PERMISSION_DENIED, 6), (S.UNAVAILABLE, 7),
     (S.DEADLINE_EXCEEDED, 7), (S.RESOURCE_EXHAUSTED, 7), (S.ABORTED, 7), (S.UNIMPLEMENTED, 8),
     (S.INTERNAL, 1), (S.UNKNOWN, 1)],
)  # fmt: skip
def test_statuses_map_to_exit_codes(code: grpc.StatusCode, exit_code: int) -> None:
    assert from_rpc_error(FakeError(code, "x"), "S/M", "edge:8080").exit_code == exit_code


def test_an_error_line_names_the_reason_and_the_fields() -> None:
    err = FakeError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid address",
        error_details_pb2.ErrorInfo(reason="INVALID_ADDRESS", domain="usdt-manager"),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="to_address", description="bad")
            ]
        ),
    )
    error = from_rpc_error(err, "UsdtManagerService/CreateTransfer", "localhost:8080")
    assert error.line() == (
        "tronpay: error: INVALID_ARGUMENT INVALID_ADDRESS: UsdtManagerService/CreateTransfer: "
        "invalid address [to_address: bad]"
    )
    error.as_json = True
    assert '"fieldViolations": ["to_address: bad"]' in error.line() and "\n" not in error.line()
    unimplemented = from_rpc_error(FakeError(grpc.StatusCode.UNIMPLEMENTED, "Method not found!"), "P/Q", "e")
    assert "P/Q: not served by the service yet" in unimplemented.line() and unimplemented.exit_code == 8


def test_rpc_names_and_loopback() -> None:
    assert rpc_name(wallet_manager_pb2.GetWalletRequest()) == "WalletManagerService/GetWallet"
    assert rpc_name(audit_pb2.VerifyAuditLogRequest()) == "AuditService/VerifyAuditLog"
    assert all(is_loopback(s) for s in ("localhost:8080", "127.0.0.1:8080", "[::1]:8080"))
    assert not any(is_loopback(s) for s in ("api.example.com:443", "10.0.0.1:8080"))


def test_eta_from_the_observed_rate() -> None:
    rate = Rate(window=60)
    assert rate.per_second() is None
    for second, lag in ((0, 1000), (10, 900), (20, 800)):
        rate.add(second, lag)
    assert rate.per_second() == -10
    assert eta_seconds(800, 10) == 80 and eta_seconds(0, None) == 0 and eta_seconds(5, 0) is None


def _commands(group: click.Group, prefix: str = "") -> Iterator[str]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}"


def test_docs_list_every_command_and_exit_code() -> None:
    doc = DOC.read_text()
    for command in _commands(cli):
        assert f"| `{command}" in doc, command
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", doc, re.M))
    assert rows == {str(int(code)): text for code, text in EXIT_CODE_HELP.items()}
    assert set(EXIT_CODE_HELP) == set(ExitCode)
    shown = CliRunner().invoke(cli, ["--help"], terminal_width=120)
    assert shown.exit_code == 0
    for code, text in EXIT_CODE_HELP.items():
        assert f"{int(code):>2}  {text}" in shown.output


def test_a_bad_file_is_refused_before_any_connection(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{A},1\n{A},x\n")
    result = CliRunner().invoke(
        cli, ["--server", "127.0.0.1:9", "payouts", "batch", str(bad), "--wallet", "w"]
    )
    assert result.exit_code == 4 and result.stdout == ""
    assert f"{bad}:2: amount 'x' is not a whole number" in result.stderr
