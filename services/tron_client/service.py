"""Wiring of tron-client: the node client, its servicers and the indexes its collections need."""

from __future__ import annotations

from collections.abc import Sequence

from services.common import idempotency
from services.common.contract import registrations
from services.common.mongo import IndexSpec
from services.common.server import Registration, Runtime
from services.tron_client.network import Network
from services.tron_client.servicer import TronClientServicer

INDEXES: Sequence[IndexSpec] = (*idempotency.INDEXES,)


async def build(rt: Runtime) -> list[Registration]:
    """The servicers of every gRPC service in tronpay.tron_client.v1."""
    network = Network(rt.settings)
    rt.on_stop(network.close)
    # The class decorator fills the generated ABC's methods at runtime, which mypy cannot see.
    return registrations("tron_client", [TronClientServicer(rt, network)])  # type: ignore[abstract]
