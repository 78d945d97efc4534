"""Wiring of payment-gateway: its servicers, settings and the indexes its collections need.

Unfinished: no RPC is implemented yet, so every RPC answers UNIMPLEMENTED (HTTP 501 at the edge)."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.server import Runtime, ServiceSpec
from services.common.settings import ServiceName, Settings


async def build(rt: Runtime[Settings]) -> Sequence[object]:
    """The servicers of tronpay.payment_gateway.v1 (none yet)."""
    return ()


SERVICE = ServiceSpec(ServiceName.PAYMENT_GATEWAY, Settings, build, finished=False)
