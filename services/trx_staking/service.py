"""Wiring of trx-staking: its servicer, settings, the operation lifecycle, the energy broker and the treasury
automation (driven in the background from start-up to shutdown) and the indexes its collections need."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.server import Runtime, ServiceSpec
from services.common.settings import ServiceName
from services.trx_staking import broker, operations
from services.trx_staking.chain import Chain
from services.trx_staking.reports import Reports
from services.trx_staking.rules import Rules
from services.trx_staking.servicer import TrxStakingServicer
from services.trx_staking.settings import TrxStakingSettings
from services.trx_staking.treasury import Treasury

INDEXES = (*operations.INDEXES, *broker.INDEXES)


async def build(rt: Runtime[TrxStakingSettings]) -> Sequence[object]:
    """The servicer of tronpay.trx_staking.v1."""
    chain = Chain(rt.clients)
    rules = Rules(chain, rt.settings.STAKING_CLAIM_INTERVAL_SECONDS)
    ops = operations.StakingOperations(rt, chain, rules)
    energy = broker.EnergyBroker(rt, chain, ops)
    treasury = Treasury(rt, chain, ops, energy)
    ops.start()
    energy.start()
    treasury.start()
    rt.on_stop(treasury.stop)
    rt.on_stop(energy.stop)
    rt.on_stop(ops.stop)
    return [TrxStakingServicer(rt, ops, Reports(chain, ops, rules), energy)]


SERVICE = ServiceSpec(ServiceName.TRX_STAKING, TrxStakingSettings, build, INDEXES)
