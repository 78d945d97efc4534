"""Request-scoped values (request id, end-user subject, calling service) carried across awaits."""

from __future__ import annotations

import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass

# Metadata keys. x-tronpay-subject is set by Envoy from the JWT `sub` (clients' copies are stripped);
# x-tronpay-caller names the internal service that made the call.
REQUEST_ID_KEY = "x-request-id"
SUBJECT_KEY = "x-tronpay-subject"
CALLER_KEY = "x-tronpay-caller"


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who asked, and under which request id."""

    request_id: str
    subject: str = ""
    caller: str = ""
    method: str = ""


_current: ContextVar[CallContext | None] = ContextVar("tronpay_call_context", default=None)


def current() -> CallContext | None:
    """The context of the RPC being served, if any."""
    return _current.get()


def bind(ctx: CallContext) -> Token[CallContext | None]:
    """Make ctx current; returns a token for `reset`."""
    return _current.set(ctx)


def reset(token: Token[CallContext | None]) -> None:
    """Restore the context that was current before `bind`."""
    _current.reset(token)


def new_request_id() -> str:
    """A fresh request id for calls that did not bring one."""
    return uuid.uuid4().hex


def from_metadata(metadata: tuple[tuple[str, str | bytes], ...] | None, method: str) -> CallContext:
    """Build the call context from incoming metadata, generating a request id when absent."""
    values: dict[str, str] = {}
    for key, value in metadata or ():
        if key in (REQUEST_ID_KEY, SUBJECT_KEY, CALLER_KEY) and isinstance(value, str):
            values[key] = value[:128]  # bound what a client can put into every log line
    return CallContext(
        request_id=values.get(REQUEST_ID_KEY) or new_request_id(),
        subject=values.get(SUBJECT_KEY, ""),
        caller=values.get(CALLER_KEY, ""),
        method=method,
    )
