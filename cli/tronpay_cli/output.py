"""Output: JSON for scripts (stdout), Rich tables for people (stdout), progress and notes on stderr.

JSON is the proto3 JSON mapping the REST edge also answers with (lowerCamelCase keys, every field printed
with its zero value, enums by name, int64 as strings), keys sorted, so a script can rely on the shape.
Amounts are base units; the human tables also show them in whole USDT/TRX, exactly (Decimal, never floats).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from tronpay.common.v1 import common_pb2

# Piped or logged output keeps each row on one line, whole ids and addresses (grep, less -S), unless COLUMNS
# says otherwise; a terminal has its own width.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 1000
stdout = Console(width=_WIDTH)
stderr = Console(stderr=True)

USDT_DECIMALS = 6
TRX_DECIMALS = 6  # 1 TRX = 1,000,000 sun


def message_dict(message: Message) -> dict[str, Any]:
    """A message as the proto3 JSON mapping (what the REST edge returns)."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def print_json(value: Message | Mapping[str, Any] | list[Any]) -> None:
    """One JSON document on stdout, keys sorted."""
    data = message_dict(value) if isinstance(value, Message) else value
    print(json.dumps(data, indent=2, sort_keys=True))


def print_json_line(value: Mapping[str, Any]) -> None:
    """One JSON object on one line (the --watch modes print a stream of them)."""
    print(json.dumps(value, sort_keys=True, separators=(",", ":")), flush=True)


def units(amount: int, decimals: int = USDT_DECIMALS) -> str:
    """Base units as an exact decimal string: 2500000 -> "2.500000"."""
    return f"{Decimal(amount).scaleb(-decimals):.{decimals}f}"


def asset_amount(amount: int, asset: int) -> str:
    """An amount of a common.v1.Asset for people: "2.500000 USDT", "1.000000 TRX", or base units."""
    if asset == common_pb2.ASSET_USDT:
        return f"{units(amount)} USDT"
    if asset == common_pb2.ASSET_TRX:
        return f"{units(amount, TRX_DECIMALS)} TRX"
    return f"{amount} units"


def enum_name(enum: Any, value: int, prefix: str = "") -> str:
    """An enum value's name without its type prefix: OPERATION_STATE_CONFIRMED -> CONFIRMED."""
    try:
        name: str = enum.Name(value)
    except ValueError:
        return str(value)
    return name.removeprefix(prefix) if prefix else name


def when(ts: Timestamp) -> str:
    """A timestamp in RFC 3339, or "" when unset."""
    return ts.ToJsonString() if ts.seconds or ts.nanos else ""


def line(text: str) -> None:
    """A line of plain text on stdout (data in it is never read as Rich markup)."""
    stdout.print(text, markup=False, highlight=False, soft_wrap=True)


def note(text: str) -> None:
    """A line of plain text on stderr: progress, state changes, diagnostics."""
    stderr.print(text, markup=False, highlight=False, soft_wrap=True)


def table(title: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    """A Rich table with these columns and rows; cells are plain text (str), never markup."""
    out = Table(title=Text(title), box=box.SIMPLE_HEAVY, title_justify="left")
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*(Text(str(cell)) for cell in row))
    return out


def fields(title: str, pairs: Iterable[tuple[str, Any]]) -> Table:
    """A two-column table of a resource's fields (empty values left out)."""
    return table(title, ("field", "value"), ((k, v) for k, v in pairs if v not in ("", None)))
