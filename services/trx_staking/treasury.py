"""Treasury automation of the staking wallet, every switch off by default, and the staking gauges.

One round every STAKING_TREASURY_SECONDS reads the staking wallet's account and resources, sets the gauges
and, unless an automation operation is still on its way, starts at most one operation, the first that
applies of:
  - claim (STAKING_AUTO_CLAIM): the reward is at least STAKING_AUTO_CLAIM_MIN_SUN and a claim is allowed
    again; with STAKING_AUTO_RESTAKE the claimed TRX is staked for energy once the claim is confirmed;
  - stake (STAKING_AUTO_STAKE): the energy of the whole stake for energy is below
    STAKING_AUTO_STAKE_TARGET_ENERGY: stake what the network's energy per TRX asks for, out of the liquid
    TRX above STAKING_AUTO_STAKE_FLOOR_SUN;
  - vote (STAKING_AUTO_VOTE): the votes are not all the tron power split evenly across
    STAKING_AUTO_VOTE_WITNESSES.
An automation operation's id comes from its kind and the round's time slot, so replicas running the same
round create it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client import Gauge
from pymongo.errors import PyMongoError
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc

from services.common import errors
from services.common.chain_ops import operation_id
from services.common.logging import get_logger
from services.common.server import Runtime
from services.trx_staking.broker import EnergyBroker
from services.trx_staking.chain import Chain, EnergyRate
from services.trx_staking.operations import PREFIX, TREASURY, StakingOperations
from services.trx_staking.rules import Intent, Kind, resource_name
from services.trx_staking.settings import TRX, TrxStakingSettings

log = get_logger("trx_staking.treasury")

ENERGY = common_pb2.RESOURCE_TYPE_ENERGY
STAKED = Gauge(
    "tronpay_staking_staked_sun",
    "TRX the staking wallet has staked, per resource (including what it delegates).",
    ["resource"],
)
DELEGATED_OUT = Gauge(
    "tronpay_staking_delegated_out_sun", "Staked TRX the staking wallet delegates to others, per resource.",
    ["resource"],
)  # fmt: skip


def even_votes(power: int, witnesses: tuple[str, ...]) -> dict[str, int]:
    """All of `power` split across `witnesses`, the remainder to the first."""
    share, rest = divmod(power, len(witnesses))
    return {w: share + (rest if i == 0 else 0) for i, w in enumerate(witnesses)}


class Treasury:
    """See the module docstring."""

    def __init__(
        self, rt: Runtime[TrxStakingSettings], chain: Chain, ops: StakingOperations, broker: EnergyBroker
    ) -> None:
        self._settings = rt.settings
        self._chain = chain
        self._ops = ops
        self._broker = broker
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._settings.STAKING_WALLET_ID:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except (PyMongoError, errors.DomainError) as exc:
                log.warning("treasury round failed: %s", getattr(exc, "reason", type(exc).__name__))
            except Exception:  # a bug must not stop the automation for good
                log.exception("treasury round failed")
            await asyncio.sleep(self._settings.STAKING_TREASURY_SECONDS)

    async def round(self) -> None:
        s = self._settings
        staking = await self._broker.staking_address()
        account, res = await asyncio.gather(self._chain.account(staking), self._chain.resources(staking))
        for resource, delegated in (
            (common_pb2.RESOURCE_TYPE_BANDWIDTH, account.delegated_bandwidth_sun),
            (ENERGY, account.delegated_energy_sun),
        ):
            own = sum(f.amount_sun for f in account.frozen if f.resource == resource)
            STAKED.labels(resource_name(resource)).set(own + delegated)
            DELEGATED_OUT.labels(resource_name(resource)).set(delegated)
        if not (s.STAKING_AUTO_CLAIM or s.STAKING_AUTO_STAKE or s.STAKING_AUTO_VOTE):
            return
        if await self._ops.active(origin=TREASURY, signer=staking):
            return
        intent = await self._next(staking, account, res)
        if intent is None:
            return
        slot = int(time.time() // s.STAKING_TREASURY_SECONDS)
        op_id = operation_id(PREFIX[intent.kind], f"treasury:{slot}")
        restake = intent.kind is Kind.CLAIM_REWARDS and s.STAKING_AUTO_RESTAKE
        extra = {"restake": True, "restake_resource": ENERGY} if restake else {}
        try:
            op = await self._ops.create(
                op_id, intent, request_id=f"treasury:{intent.kind}:{slot}", fingerprint=repr(intent),
                wallet_id=s.STAKING_WALLET_ID, origin=TREASURY, extra=extra,
            )  # fmt: skip
        except errors.FailedPrecondition as exc:  # the rules (or another replica's same-slot intent) said no
            log.info("treasury action skipped", extra={"fields": {"kind": intent.kind, "reason": exc.reason}})
            return
        log.info(
            "treasury action",
            extra={"fields": {"op": op.id, "kind": intent.kind, "amount_sun": intent.amount}},
        )

    async def _next(self, staking: str, account: tc.Account, res: tc.AccountResource) -> Intent | None:
        s = self._settings
        if s.STAKING_AUTO_CLAIM and account.reward_sun >= s.STAKING_AUTO_CLAIM_MIN_SUN:
            head = await self._chain.height()
            if self._ops.rules.next_claim_ms(account) <= head.time_ms:
                return Intent(Kind.CLAIM_REWARDS, staking)
        if s.STAKING_AUTO_STAKE and s.STAKING_AUTO_STAKE_TARGET_ENERGY:
            rate = EnergyRate(res.total_energy_limit, res.total_energy_weight)
            staked = (
                sum(f.amount_sun for f in account.frozen if f.resource == ENERGY)
                + account.delegated_energy_sun
            )
            have = staked // TRX
            if rate.total_weight <= 0 or rate.energy_of(have) < s.STAKING_AUTO_STAKE_TARGET_ENERGY:
                need = rate.trx_for(s.STAKING_AUTO_STAKE_TARGET_ENERGY, have) if rate.total_weight > 0 else 1
                spare = max(0, account.balance_sun - s.STAKING_AUTO_STAKE_FLOOR_SUN) // TRX
                if min(need, spare) >= 1:
                    return Intent(Kind.STAKE, staking, min(need, spare) * TRX, ENERGY)
        if s.STAKING_AUTO_VOTE and res.tron_power_limit >= len(s.witnesses):
            wanted = even_votes(res.tron_power_limit, s.witnesses)
            if {v.witness_address: v.vote_count for v in account.votes} != wanted:
                return Intent(Kind.VOTE, staking, votes=tuple(wanted.items()))
        return None
