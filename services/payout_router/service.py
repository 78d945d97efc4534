"""Wiring of payout-router: its servicers, settings and the indexes its collections need.

Unfinished: no RPC is implemented yet, so every RPC answers UNIMPLEMENTED (HTTP 501 at the edge)."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.server import Runtime, ServiceSpec
from services.common.settings import ServiceName
from services.payout_router.settings import PayoutRouterSettings


async def build(rt: Runtime[PayoutRouterSettings]) -> Sequence[object]:
    """The servicers of tronpay.payout_router.v1 (none yet)."""
    return ()


SERVICE = ServiceSpec(ServiceName.PAYOUT_ROUTER, PayoutRouterSettings, build, finished=False)
