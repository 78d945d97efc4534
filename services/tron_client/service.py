"""Wiring of tron-client: the node pool, its servicers and the indexes its collections need."""

from __future__ import annotations

from collections.abc import Sequence

from services.common import idempotency
from services.common.contract import registrations
from services.common.mongo import IndexSpec
from services.common.server import Registration, Runtime
from services.tron_client.builder import TransactionService
from services.tron_client.network import Network
from services.tron_client.pool import NodePool
from services.tron_client.queries import Queries
from services.tron_client.servicer import TronClientServicer
from services.tron_client.sync import INDEXES as SYNC_INDEXES
from services.tron_client.sync import start_block_sync

INDEXES: Sequence[IndexSpec] = (*idempotency.INDEXES, *SYNC_INDEXES)


async def build(rt: Runtime) -> list[Registration]:
    """The servicers of every gRPC service in tronpay.tron_client.v1."""
    pool = NodePool(rt.settings)
    pool.start()  # background health probe: head/latency of every node, set-aside nodes probed back
    rt.on_stop(pool.close)
    network = Network(rt.settings, pool)
    # The class decorator fills the generated ABC's methods at runtime, which mypy cannot see.
    servicer = TronClientServicer(  # type: ignore[abstract]
        rt, network, TransactionService(rt.settings, pool, network), Queries(pool, network)
    )
    servicer.init_transfer_rpcs(start_block_sync(rt, pool.call_any))  # block sync task + watch/transfer RPCs
    return registrations("tron_client", [servicer])
