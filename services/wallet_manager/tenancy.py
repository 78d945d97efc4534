"""Who sees which wallet: a token's tenant claim confines it to its tenant's wallets (another tenant's
answers NOT_FOUND, as if it did not exist); admins, platform-wide tokens and services working for no end
user see all (services.common.context.CallContext.tenant_scope)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from services.common import context
from services.common.access import Peer, Role
from services.wallet_manager.convert import wallet_to_pb


def creating_tenant() -> str:
    """The tenant a new wallet belongs to: the token's claim ("" for a platform-wide caller)."""
    call = context.current()
    return call.tenant if call else ""


def in_scope(doc: Mapping[str, Any]) -> bool:
    """Whether the call may see the wallet: its tenant's, or any for admins and platform-wide callers."""
    scope = context.tenant_scope()
    return scope is None or doc.get("tenant", "") == scope


def shown(doc: Mapping[str, Any]) -> pb.Wallet:
    """The wallet as the caller may see it: through the edge the xpub (which predicts every deposit address)
    only for its owner and admins; services and the operator's tools get it whole."""
    w = wallet_to_pb(doc)
    call = context.current()
    if call is None or call.caller != Peer.EDGE or Role.ADMIN in call.roles:
        return w
    if not call.subject or call.subject != doc["owner_id"]:
        w.xpub = ""
    return w
