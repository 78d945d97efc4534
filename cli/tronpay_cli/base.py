"""What commands share: the decorator adding `--json` and the App, the request id option, time options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
from google.protobuf.timestamp_pb2 import Timestamp

from tronpay_cli.connection import App
from tronpay_cli.errors import ExitCode

Command = Callable[..., Any]


def command(group: click.Group, name: str, **attrs: Any) -> Callable[[Command], click.Command]:
    """Register `f(app, **options)` as `group name` with a --json flag."""

    def decorator(f: Command) -> click.Command:
        @group.command(name, **attrs)
        @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON to stdout.")
        @click.pass_obj
        @functools.wraps(f)
        def run(app: App, *args: Any, as_json: bool, **kwargs: Any) -> Any:
            app.as_json = as_json
            return f(app, *args, **kwargs)

        return run

    return decorator


def request_id_option(f: Command) -> Command:
    """--request-id: the idempotency key of a mutating call (a fresh one when not given)."""
    return click.option(
        "--request-id",
        default=None,
        help="Idempotency key: the same key and request returns the first result instead of acting twice "
        "(default: a fresh one, printed with the result).",
    )(f)


def parse_time(app: App, value: str | None, option: str) -> Timestamp | None:
    """An ISO 8601 time with a UTC offset from an option (None when not given); exit 4 when it is not one."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise app.error(ExitCode.INVALID_ARGUMENT, f"{option}: {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise app.error(
            ExitCode.INVALID_ARGUMENT, f"{option}: {value!r} needs a UTC offset (e.g. Z or +00:00)"
        )
    out = Timestamp()
    out.FromDatetime(moment)
    return out
