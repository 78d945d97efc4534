"""Staking status and rewards of an address, read from the chain when asked (through tron-client), plus the
claims the cluster made (its own operations).

The reward estimate is labelled as one in the contract: for each vote, the voted witness's daily pay (its
share of the standby pay, getWitness127PayPerBlock x blocks per day x its votes / the votes of the top 127,
plus getWitnessPayPerBlock x its share of the blocks if it is one of the 27 producers), less its brokerage,
times this address's share of its votes. Votes not yet counted (before the next maintenance) count as if
they were.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.trx_staking.v1 import trx_staking_pb2 as pb

from services.common.timestamps import timestamp_ms
from services.trx_staking.chain import Chain
from services.trx_staking.operations import StakingOperations
from services.trx_staking.rules import MAX_PENDING_UNSTAKES, Rules

BLOCKS_PER_DAY = 28_800  # 3-second slots
PRODUCERS = 27  # super representatives producing blocks
STANDBY = 127  # witnesses sharing the standby pay
RESOURCES = (common_pb2.RESOURCE_TYPE_BANDWIDTH, common_pb2.RESOURCE_TYPE_ENERGY)


def _delegations(records: Iterable[tc.DelegatedResource]) -> list[pb.Delegation]:
    return [
        pb.Delegation(
            from_address=d.from_address,
            to_address=d.to_address,
            resource=d.resource,
            amount_sun=d.amount_sun,
            lock_expire_time=d.lock_expire_time if d.HasField("lock_expire_time") else None,
        )
        for d in records
    ]


def _votes(account: tc.Account) -> list[pb.WitnessVote]:
    return [pb.WitnessVote(witness_address=v.witness_address, vote_count=v.vote_count) for v in account.votes]


def daily_reward(votes: Iterable[tuple[int, tc.WitnessStanding]], pay: int, standby_pay: int) -> int:
    """The estimate of the module docstring, in sun."""
    total = 0
    for n, st in votes:
        if not st.rank:  # not a witness (any more)
            continue
        counted = max(st.vote_count, n)
        income = 0
        if st.rank <= STANDBY:
            income += standby_pay * BLOCKS_PER_DAY * counted // max(st.standby_votes_total, counted)
        producers = min(PRODUCERS, st.witness_count)
        if st.rank <= producers:
            income += pay * BLOCKS_PER_DAY // producers
        total += income * (100 - st.brokerage_percent) * n // (100 * counted)
    return total


class Reports:
    def __init__(self, chain: Chain, ops: StakingOperations, rules: Rules) -> None:
        self._chain = chain
        self._ops = ops
        self._rules = rules

    async def status(self, address: str) -> pb.StakingStatus:
        account, res, head = await asyncio.gather(
            self._chain.account(address, staking=True), self._chain.resources(address), self._chain.height()
        )
        out = pb.StakingStatus(
            address=address, balance_sun=account.balance_sun, energy_limit=res.energy_limit,
            energy_used=res.energy_used, bandwidth_limit=res.net_limit + res.free_net_limit,
            bandwidth_used=res.net_used + res.free_net_used, tron_power=res.tron_power_limit,
            tron_power_used=res.tron_power_used,
            votes=_votes(account), delegated_out=_delegations(account.delegated_out),
            delegated_in=_delegations(account.delegated_in),
        )  # fmt: skip
        delegated = {
            common_pb2.RESOURCE_TYPE_BANDWIDTH: account.delegated_bandwidth_sun,
            common_pb2.RESOURCE_TYPE_ENERGY: account.delegated_energy_sun,
        }
        for resource in RESOURCES:
            amount = sum(f.amount_sun for f in account.frozen if f.resource == resource) + delegated[resource]
            if amount:
                out.staked.add(resource=resource, amount_sun=amount)
        out.total_staked_sun = sum(s.amount_sun for s in out.staked)
        for u in account.unfreezing:
            at = u.unfreeze_expire_time.ToMilliseconds()
            if at <= head.time_ms:
                out.withdrawable_sun += u.amount_sun
            else:
                out.pending_unstakes.add(
                    resource=u.resource, amount_sun=u.amount_sun, withdrawable_time=timestamp_ms(at)
                )
        out.available_unstake_count = MAX_PENDING_UNSTAKES - len(out.pending_unstakes)
        out.update_time.GetCurrentTime()
        return out

    async def rewards(self, address: str) -> pb.GetStakingRewardsResponse:
        account, claimed = await asyncio.gather(
            self._chain.account(address), self._ops.claimed_total(address)
        )
        out = pb.GetStakingRewardsResponse(
            address=address, unclaimed_reward_sun=account.reward_sun, claimed_reward_sun=claimed,
            votes=_votes(account),
        )  # fmt: skip
        if account.HasField("latest_withdraw_time"):
            out.last_claim_time.CopyFrom(account.latest_withdraw_time)
            out.next_claim_time.FromMilliseconds(self._rules.next_claim_ms(account))
        if account.votes:
            witnesses, params = await asyncio.gather(
                self._chain.accounts([v.witness_address for v in account.votes], staking=True),
                self._chain.parameters(),
            )
            out.estimated_reward_per_day_sun = daily_reward(
                ((v.vote_count, w.witness) for v, w in zip(account.votes, witnesses, strict=True)),
                params.get("getWitnessPayPerBlock", 0), params.get("getWitness127PayPerBlock", 0),
            )  # fmt: skip
        return out
