"""Wiring of usdt-manager: its servicer, settings, the transfer and approval lifecycles (driven in the
background from start-up to shutdown) and the indexes its collections need."""

from __future__ import annotations

from collections.abc import Sequence

from services.common import chain_ops
from services.common.server import Runtime, ServiceSpec
from services.common.settings import ServiceName
from services.usdt_manager import holds
from services.usdt_manager.chain import Chain
from services.usdt_manager.operations import APPROVALS, TRANSFERS, UsdtOperations
from services.usdt_manager.servicer import UsdtManagerServicer
from services.usdt_manager.settings import UsdtManagerSettings

INDEXES = (*chain_ops.indexes(TRANSFERS), *chain_ops.indexes(APPROVALS))


async def build(rt: Runtime[UsdtManagerSettings]) -> Sequence[object]:
    """The servicer of tronpay.usdt_manager.v1."""
    chain = Chain(rt.clients)
    ops = UsdtOperations(rt, chain, holds.Holds(rt.db))
    ops.start()
    rt.on_stop(ops.stop)
    return [UsdtManagerServicer(rt, ops, chain)]


SERVICE = ServiceSpec(ServiceName.USDT_MANAGER, UsdtManagerSettings, build, INDEXES)
