"""Amounts from the command line and CSV files: base units as integers, or with --decimal a decimal string
converted exactly (Decimal, never floats) to base units; anything that does not convert exactly is refused."""

from __future__ import annotations

import re
from decimal import Decimal, Inexact, localcontext

from tronpay_cli.connection import App
from tronpay_cli.errors import ExitCode

INT64_MAX = 2**63 - 1
_INTEGER = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


def parse_amount(text: str, *, decimal: bool, decimals: int = 6, allow_zero: bool = False) -> int:
    """Base units of `text`: "2500000" as given, or with `decimal` "2.5" -> 2500000 (6 decimals).

    Raises ValueError with a message naming what is wrong (sign, exponent, too many decimals, range)."""
    value = text.strip()
    if decimal:
        if not _DECIMAL.fullmatch(value):
            raise ValueError(f"{text!r} is not a decimal amount like 2.5 (no sign, exponent or separators)")
        with localcontext() as context:
            context.prec = len(value) + decimals  # enough digits that scaling never rounds
            context.traps[Inexact] = True
            exact = Decimal(value).scaleb(decimals)
        if exact != exact.to_integral_value():
            raise ValueError(f"{text!r} has more than {decimals} decimal places")
        amount = int(exact)
    else:
        if not _INTEGER.fullmatch(value):
            hint = " (pass --decimal for amounts like 2.5)" if _DECIMAL.fullmatch(value) else ""
            raise ValueError(f"{text!r} is not a whole number of base units{hint}")
        amount = int(value)
    if amount == 0 and not allow_zero:
        raise ValueError(f"{text!r}: the amount must be positive")
    if amount > INT64_MAX:
        raise ValueError(f"{text!r} is too large (at most {INT64_MAX} base units)")
    return amount


def option_amount(app: App, text: str, option: str, *, decimal: bool, allow_zero: bool = False) -> int:
    """parse_amount for a command-line option: INVALID_ARGUMENT (exit 4) naming the option when it does not
    parse."""
    try:
        return parse_amount(text, decimal=decimal, allow_zero=allow_zero)
    except ValueError as exc:
        raise app.error(ExitCode.INVALID_ARGUMENT, f"{option}: {exc}") from None
