"""Request-scoped values (request id, who is calling and for whom) carried across awaits.

`caller` is the peer's certificate identity (services.common.tls): "edge", a service ("usdt-manager") or
"operator". `subject`, `roles` and `tenant` are the end user's, from the identity metadata the edge sets from
a verified JWT and the services forward on the calls they make for that user; they are read only from a peer
whose certificate proves it is one of ours (the edge strips client copies).
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass

from services.common.access import ROLES_KEY, SUBJECT_KEY, TENANT_KEY, Peer, Role, parse_roles

REQUEST_ID_KEY = "x-request-id"
_KEYS = (REQUEST_ID_KEY, SUBJECT_KEY, ROLES_KEY, TENANT_KEY)


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who asked, for whom, and under which request id."""

    request_id: str
    subject: str = ""
    caller: str = ""
    method: str = ""
    roles: frozenset[Role] = frozenset()
    tenant: str = ""

    @property
    def tenant_scope(self) -> str | None:
        """The tenant whose resources this call is confined to, or None for every tenant (an admin, a
        platform-wide token, or a service working for no end user)."""
        if not self.tenant or Role.ADMIN in self.roles:
            return None
        return self.tenant

    def identity_metadata(self) -> list[tuple[str, str]]:
        """The end-user identity to forward on calls made for this one."""
        out = [(SUBJECT_KEY, self.subject)] if self.subject else []
        if self.roles:
            out.append((ROLES_KEY, ",".join(sorted(self.roles))))
        if self.tenant:
            out.append((TENANT_KEY, self.tenant))
        return out


_current: ContextVar[CallContext | None] = ContextVar("tronpay_call_context", default=None)


def current() -> CallContext | None:
    """The context of the RPC being served, if any."""
    return _current.get()


def tenant_scope() -> str | None:
    """The current call's tenant confinement (None: all tenants, also outside any RPC)."""
    ctx = _current.get()
    return ctx.tenant_scope if ctx else None


def bind(ctx: CallContext) -> Token[CallContext | None]:
    """Make ctx current; returns a token for `reset`."""
    return _current.set(ctx)


def reset(token: Token[CallContext | None]) -> None:
    """Restore the context that was current before `bind`."""
    _current.reset(token)


def new_request_id() -> str:
    """A fresh request id for calls that did not bring one."""
    return uuid.uuid4().hex


def from_metadata(
    metadata: tuple[tuple[str, str | bytes], ...] | None, method: str, peer: Peer | None = None
) -> CallContext:
    """Build the call context from incoming metadata and the peer's certificate identity, generating a
    request id when absent. Identity metadata counts only when `peer` is known."""
    values: dict[str, str] = {}
    for key, value in metadata or ():
        if key in _KEYS and isinstance(value, str):
            values[key] = value[:128]  # bound what a client can put into every log line
    trusted = peer is not None
    return CallContext(
        request_id=values.get(REQUEST_ID_KEY) or new_request_id(),
        subject=values.get(SUBJECT_KEY, "") if trusted else "",
        caller=peer.value if peer else "",
        method=method,
        roles=parse_roles(values.get(ROLES_KEY, "")) if trusted else frozenset(),
        tenant=values.get(TENANT_KEY, "") if trusted else "",
    )
