"""Wiring of tron-client: the node pool, block sync, its servicer, settings and the indexes its collections
need."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.mongo import IndexSpec
from services.common.server import Runtime, ServiceSpec
from services.common.settings import ServiceName
from services.tron_client import transfers, watch
from services.tron_client.builder import TransactionService
from services.tron_client.network import Network
from services.tron_client.pool import NodePool
from services.tron_client.queries import Queries
from services.tron_client.rescan import RESCANS, RescanJobs
from services.tron_client.servicer import TronClientServicer
from services.tron_client.settings import TronClientSettings
from services.tron_client.sync import start_block_sync
from services.tron_client.transfer_rpcs import TransferRpcs
from services.tron_client.transfers import TransferStore
from services.tron_client.watch import WatchList

INDEXES: Sequence[IndexSpec] = (
    *transfers.INDEXES,
    *watch.INDEXES,
    IndexSpec(RESCANS, [("done", 1), ("create_time", 1)], name="open_jobs"),
)


async def build(rt: Runtime[TronClientSettings]) -> Sequence[object]:
    """The servicers of tronpay.tron_client.v1."""
    settings = rt.settings
    pool = NodePool(settings)
    pool.start()  # background health probe: head/latency of every node, set-aside nodes probed back
    rt.on_stop(pool.close)
    network = Network(settings, pool)
    watch_list = WatchList(rt.db)
    store = TransferStore(rt.db, watch_list.watchers_of)
    sync = start_block_sync(rt, pool.call_any, store, watch_list)  # None when TRON_SYNC_ENABLED is off
    rescans = RescanJobs(rt.db) if sync is not None else None
    rpcs = TransferRpcs(
        store, watch_list, settings.TRON_SYNC_POLL_SECONDS, rescans, settings.TRON_RESCAN_MAX_BLOCKS
    )
    txs = TransactionService(settings, pool, network)
    return [TronClientServicer(rt, network, txs, Queries(pool, network), rpcs, sync)]


SERVICE = ServiceSpec(ServiceName.TRON_CLIENT, TronClientSettings, build, indexes=INDEXES, finished=True)
