"""Wiring of payout-router: its servicer, settings, the payout dispatcher and lifecycle (driven in the
background from start-up to shutdown) and the indexes its collections need."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.server import Runtime, ServiceSpec
from services.common.settings import ServiceName
from services.payout_router.allowlist import Allowlist
from services.payout_router.chain import Chain
from services.payout_router.payouts import INDEXES, Payouts
from services.payout_router.servicer import PayoutRouterServicer
from services.payout_router.settings import PayoutRouterSettings


async def build(rt: Runtime[PayoutRouterSettings]) -> Sequence[object]:
    """The servicer of tronpay.payout_router.v1."""
    chain = Chain(rt.clients)
    allowlist = Allowlist(rt, chain)
    payouts = Payouts(rt, chain, allowlist)
    payouts.start()
    rt.on_stop(payouts.stop)
    return [PayoutRouterServicer(rt, payouts, allowlist)]


SERVICE = ServiceSpec(ServiceName.PAYOUT_ROUTER, PayoutRouterSettings, build, INDEXES)
