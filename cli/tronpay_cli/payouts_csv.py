"""A payout file: CSV with the columns recipient,amount[,reference,asset], checked whole before sending.

A header row naming the columns is optional (without one the order is recipient,amount,reference,asset).
Amounts are base units, or whole USDT/TRX with --decimal (converted exactly). `asset` is USDT or TRX and
defaults to the command's --asset. Every refused line is reported with its line number; nothing is sent
unless the whole file is good. The batch's idempotency key is derived from the file's bytes (and the wallet
and asset it pays from), so running the same file again returns the batch it created instead of paying twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

import base58
from tronpay.common.v1 import common_pb2

from tronpay_cli.amounts import parse_amount

COLUMNS = ("recipient", "amount", "reference", "asset")
REQUIRED = ("recipient", "amount")
ASSETS: dict[str, common_pb2.Asset.ValueType] = {"usdt": common_pb2.ASSET_USDT, "trx": common_pb2.ASSET_TRX}
MAX_ITEMS = 10_000  # CreatePayoutBatch's limit per batch (one batch per asset)
MAX_REFERENCE = 128
_ADDRESS = re.compile(r"T[1-9A-HJ-NP-Za-km-z]{33}")


@dataclass(frozen=True)
class PayoutRow:
    """One good line of the file."""

    line: int
    recipient: str
    amount: int
    reference: str
    asset: common_pb2.Asset.ValueType


class PayoutFileRefused(Exception):
    """The file has bad lines: (line number, what is wrong) for each, in file order (0: the whole file)."""

    def __init__(self, problems: Sequence[tuple[int, str]]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = list(problems)


def address_problem(value: str) -> str | None:
    """Why `value` is not a TRON address (base58check of 0x41 + 20 bytes), or None."""
    if not _ADDRESS.fullmatch(value):
        return "not a TRON address (T followed by 33 base58 characters)"
    try:
        raw = base58.b58decode_check(value)
    except ValueError:
        return "not a TRON address (its checksum does not match)"
    return None if len(raw) == 21 and raw[0] == 0x41 else "not a TRON address"


def asset_of(name: str) -> common_pb2.Asset.ValueType | None:
    """common.v1.Asset of "USDT"/"trx"/"ASSET_USDT", or None."""
    return ASSETS.get(name.strip().lower().removeprefix("asset_"))


def _header(cells: list[str]) -> list[str] | None:
    """The column order a header row names, or None when the row is data."""
    names = [c.strip().lower() for c in cells]
    return names if names and names[0] in COLUMNS else None


def read(data: bytes, *, decimal: bool, default_asset: common_pb2.Asset.ValueType) -> list[PayoutRow]:
    """The rows of a payout file, or PayoutFileRefused naming every bad line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PayoutFileRefused([(0, f"not UTF-8 text (byte {exc.start})")]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    problems: list[tuple[int, str]] = []
    rows: list[PayoutRow] = []
    columns: list[str] | None = None
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue  # blank lines
            if columns is None:
                header = _header(cells)
                if header is not None:
                    unknown = [c for c in header if c not in COLUMNS]
                    missing = [c for c in REQUIRED if c not in header]
                    if unknown or missing or len(set(header)) != len(header):
                        problems.append((line, f"header {','.join(header)}: the columns are "
                                               f"{','.join(COLUMNS)} "
                                               "(recipient and amount required, each once)"))  # fmt: skip
                    columns = header
                    continue
                columns = list(COLUMNS)
            row = _row(line, cells, columns, decimal=decimal, default_asset=default_asset, problems=problems)
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        problems.append((reader.line_num, f"not CSV: {exc}"))
    if not rows and not problems:
        problems.append((0, "no payouts in the file"))
    for asset in {r.asset for r in rows}:
        count = sum(1 for r in rows if r.asset == asset)
        if count > MAX_ITEMS:
            name = common_pb2.Asset.Name(asset).removeprefix("ASSET_")
            problems.append((0, f"{count} {name} payouts: at most {MAX_ITEMS} per batch (split the file)"))
    if problems:
        raise PayoutFileRefused(problems)
    return rows


def _row(
    line: int,
    cells: list[str],
    columns: list[str],
    *,
    decimal: bool,
    default_asset: common_pb2.Asset.ValueType,
    problems: list[tuple[int, str]],
) -> PayoutRow | None:
    if len(cells) > len(columns) or len(cells) < len(REQUIRED):
        problems.append((line, f"{len(cells)} columns; expected {','.join(columns)}"))
        return None
    values = dict(zip(columns, (c.strip() for c in cells), strict=False))
    found: list[str] = []
    recipient = values.get("recipient", "")
    if (why := address_problem(recipient)) is not None:
        found.append(f"recipient {recipient!r}: {why}")
    try:
        amount = parse_amount(values.get("amount", ""), decimal=decimal)
    except ValueError as exc:
        found.append(f"amount {exc}")
        amount = 0
    reference = values.get("reference", "")
    if len(reference) > MAX_REFERENCE:
        found.append(f"reference longer than {MAX_REFERENCE} characters")
    asset = asset_of(values["asset"]) if values.get("asset") else default_asset
    if asset is None:
        found.append(f"asset {values['asset']!r}: USDT or TRX")
    if found or asset is None:
        problems.extend((line, what) for what in found)
        return None
    return PayoutRow(line, recipient, amount, reference, asset)


def request_id(data: bytes, wallet_id: str, asset: int) -> str:
    """The batch's idempotency key: the same file paid from the same wallet in the same asset is one batch."""
    digest = hashlib.sha256(
        b"\0".join((b"tronpay-payouts-v1", wallet_id.encode(), str(asset).encode(), data))
    )
    return f"csv-{digest.hexdigest()[:48]}"
