"""Wiring of wallet-manager: its servicers and the indexes its collections need."""

from __future__ import annotations

from collections.abc import Sequence

from services.common import idempotency
from services.common.contract import registrations
from services.common.mongo import IndexSpec
from services.common.server import Registration, Runtime
from services.wallet_manager.servicer import WalletManagerServicer

INDEXES: Sequence[IndexSpec] = (*idempotency.INDEXES,)


async def build(rt: Runtime) -> list[Registration]:
    """The servicers of every gRPC service in tronpay.wallet_manager.v1."""
    # The class decorator fills the generated ABC's methods at runtime, which mypy cannot see.
    return registrations("wallet_manager", [WalletManagerServicer(rt)])  # type: ignore[abstract]
