"""Bandwidth and energy accounting (java-tron BandwidthProcessor / EnergyProcessor / ResourceProcessor).

Times are in slots (block timestamp ms // 3000); usage recovers linearly over a 24 h window (28 800 slots).
Exceptions: `ResourceInsufficient` = AccountResourceInsufficientException (→ BANDWITH_ERROR),
`ContractValidateError` for the paths java-tron validates (unknown owner account).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from devnet.params import BLOCK_INTERVAL_MS, MAX_RESULT_SIZE_IN_TX, TRX_PRECISION, WINDOW_SLOTS, Params
from devnet.state import AccountState, World

PRECISION = 1_000_000


class ResourceInsufficient(Exception):
    """AccountResourceInsufficientException: broadcast code BANDWITH_ERROR."""


def slot_of(timestamp_ms: int) -> int:
    return timestamp_ms // BLOCK_INTERVAL_MS


def _divide_ceil(a: int, b: int) -> int:
    return -(-a // b)


def increase(last_usage: int, usage: int, last_time: int, now: int, window: int = WINDOW_SLOTS) -> int:
    """ResourceProcessor.increase: decay last_usage from last_time to now, then add usage."""
    avg_last = _divide_ceil(last_usage * PRECISION, window)
    avg_new = _divide_ceil(usage * PRECISION, window)
    if last_time != now:
        if last_time + window > now:
            decay = (window - (now - last_time)) / window
            avg_last = math.floor(avg_last * decay + 0.5)  # java Math.round
        else:
            avg_last = 0
    return (avg_last + avg_new) * window // PRECISION


def recovered(usage: int, last_time: int, now: int, window: int = WINDOW_SLOTS) -> int:
    """Usage as of `now` (what getaccountresource shows)."""
    return increase(usage, 0, last_time, now, window)


# ---- limits from stake ------------------------------------------------------------------------------------


def frozen_for(acc: AccountState, resource: int) -> int:
    """Staked sun giving `resource` (0 bandwidth, 1 energy): own frozenV2 + acquired delegations."""
    return acc.frozen[resource] + acc.acquired[resource]


def weight_for(acc: AccountState, resource: int) -> int:
    """The account's contribution to TotalNetWeight / TotalEnergyWeight (whole TRX, incl. delegated away)."""
    return (acc.frozen[resource] + acc.delegated_out[resource]) // TRX_PRECISION


def net_limit(world: World, params: Params, acc: AccountState) -> int:
    total_weight = world.glob("total_net_weight")
    if total_weight <= 0:
        return 0
    weight = frozen_for(acc, 0) // TRX_PRECISION
    return int(weight * (params.total_net_limit / total_weight))


def energy_limit(world: World, params: Params, acc: AccountState) -> int:
    total_weight = world.glob("total_energy_weight")
    if total_weight <= 0:
        return 0
    weight = frozen_for(acc, 1) // TRX_PRECISION
    return int(weight * (params.total_energy_limit / total_weight))


def energy_left(world: World, params: Params, acc: AccountState, now_slot: int) -> int:
    used = recovered(acc.energy_usage, acc.latest_consume_time_for_energy, now_slot)
    return max(energy_limit(world, params, acc) - used, 0)


def add_weight(world: World, resource: int, delta_trx: int) -> None:
    if delta_trx:
        name = ("total_net_weight", "total_energy_weight", "total_tron_power_weight")[resource]
        world.set_glob(name, world.glob(name) + delta_trx)


# ---- bandwidth ---------------------------------------------------------------------------------------------


def tx_bytes(tx_size_without_ret: int, contracts: int = 1) -> int:
    """Bandwidth bytes: serialized tx without ret + 64 per contract (MAX_RESULT_SIZE_IN_TX)."""
    return tx_size_without_ret + MAX_RESULT_SIZE_IN_TX * contracts


@dataclass
class NetBill:
    net_usage: int = 0  # bytes from staked or free bandwidth
    net_fee: int = 0  # sun burned


def consume_bandwidth(
    world: World, params: Params, owner: AccountState, nbytes: int, creates_account: bool, now_ms: int
) -> NetBill:
    """Charge bandwidth for a tx; mutates `owner` (caller stores it). Raises ResourceInsufficient."""
    now = slot_of(now_ms)
    if creates_account:
        need = nbytes * params.create_new_account_bandwidth_rate
        used = recovered(owner.net_usage, owner.latest_consume_time, now)
        if need <= net_limit(world, params, owner) - used:
            owner.net_usage = increase(owner.net_usage, need, owner.latest_consume_time, now)
            owner.latest_consume_time = now
            owner.latest_operation_time = now_ms
            return NetBill(net_usage=need)
        fee = params.create_account_fee
        if owner.balance < fee:
            raise ResourceInsufficient("Account resource insufficient error.")
        owner.balance -= fee
        owner.latest_operation_time = now_ms
        return NetBill(net_fee=fee)
    # staked bandwidth
    used = recovered(owner.net_usage, owner.latest_consume_time, now)
    if nbytes <= net_limit(world, params, owner) - used:
        owner.net_usage = increase(owner.net_usage, nbytes, owner.latest_consume_time, now)
        owner.latest_consume_time = now
        owner.latest_operation_time = now_ms
        return NetBill(net_usage=nbytes)
    # free bandwidth
    free_used = recovered(owner.free_net_usage, owner.latest_consume_free_time, now)
    if nbytes <= params.free_net_limit - free_used:
        owner.free_net_usage = increase(owner.free_net_usage, nbytes, owner.latest_consume_free_time, now)
        owner.latest_consume_free_time = now
        owner.latest_operation_time = now_ms
        return NetBill(net_usage=nbytes)
    fee = nbytes * params.transaction_fee
    if owner.balance < fee:
        raise ResourceInsufficient("Account resource insufficient error.")
    owner.balance -= fee
    owner.latest_operation_time = now_ms
    return NetBill(net_fee=fee)


# ---- energy ----------------------------------------------------------------------------------------


def caller_energy_limit(
    world: World, params: Params, acc: AccountState, fee_limit: int, call_value: int, now_slot: int
) -> int:
    """VMActuator.getAccountEnergyLimitWithFixRatio: min(staked left + spendable balance/E, fee_limit/E)."""
    price = params.energy_fee
    left = energy_left(world, params, acc, now_slot)
    from_balance = max(acc.balance - call_value, 0) // price
    return min(left + from_balance, fee_limit // price)


def total_energy_limit(
    world: World,
    params: Params,
    caller: AccountState,
    origin: AccountState | None,
    percent: int,
    origin_energy_limit: int,
    fee_limit: int,
    call_value: int,
    now_slot: int,
) -> tuple[int, int]:
    """(total, caller) energy limits incl. the deployer share (getTotalEnergyLimitWithFixRatio)."""
    caller_limit = caller_energy_limit(world, params, caller, fee_limit, call_value, now_slot)
    if origin is None or origin.address == caller.address or percent >= 100:
        return caller_limit, caller_limit
    origin_left = energy_left(world, params, origin, now_slot)
    if percent <= 0:
        origin_limit = min(origin_left, origin_energy_limit)
    else:
        origin_limit = min(caller_limit * (100 - percent) // percent, origin_left, origin_energy_limit)
    return caller_limit + origin_limit, caller_limit


@dataclass
class EnergyBill:
    energy_usage: int = 0  # caller's staked energy used
    energy_fee: int = 0  # sun burned
    origin_energy_usage: int = 0
    energy_usage_total: int = 0
    energy_penalty_total: int = 0  # dynamic-energy extra, included in energy_usage_total


def pay_energy(
    world: World,
    params: Params,
    caller: AccountState,
    origin: AccountState | None,
    percent: int,
    origin_energy_limit: int,
    used: int,
    now_slot: int,
) -> EnergyBill:
    """ReceiptCapsule.payEnergyBill: deployer share from its stake, caller's from stake then burned TRX.
    Mutates caller/origin (callers store them)."""
    bill = EnergyBill(energy_usage_total=used)
    caller_part = used
    if origin is not None and origin.address != caller.address and percent < 100:
        origin_share = used * (100 - percent) // 100
        origin_part = min(origin_share, energy_left(world, params, origin, now_slot), origin_energy_limit)
        if origin_part > 0:
            origin.energy_usage = increase(
                origin.energy_usage, origin_part, origin.latest_consume_time_for_energy, now_slot
            )
            origin.latest_consume_time_for_energy = now_slot
            bill.origin_energy_usage = origin_part
        caller_part = used - max(origin_part, 0)
    staked = min(caller_part, energy_left(world, params, caller, now_slot))
    if staked > 0:
        caller.energy_usage = increase(
            caller.energy_usage, staked, caller.latest_consume_time_for_energy, now_slot
        )
        caller.latest_consume_time_for_energy = now_slot
        bill.energy_usage = staked
    burn = caller_part - staked
    if burn > 0:
        fee = burn * params.energy_fee
        fee = min(fee, caller.balance)  # the limit was computed from the balance; never go negative
        caller.balance -= fee
        bill.energy_fee = fee
    return bill


# ---- views for getaccountresource / getaccountnet ---------------------------------------------------


def account_net(world: World, params: Params, acc: AccountState, now_ms: int) -> dict[str, int]:
    now = slot_of(now_ms)
    return {
        "freeNetUsed": recovered(acc.free_net_usage, acc.latest_consume_free_time, now),
        "freeNetLimit": params.free_net_limit,
        "NetUsed": recovered(acc.net_usage, acc.latest_consume_time, now),
        "NetLimit": net_limit(world, params, acc),
        "TotalNetLimit": params.total_net_limit,
        "TotalNetWeight": world.glob("total_net_weight"),
    }


def account_resource(world: World, params: Params, acc: AccountState, now_ms: int) -> dict[str, int]:
    now = slot_of(now_ms)
    out = account_net(world, params, acc, now_ms)
    out.update(
        {
            "TotalTronPowerWeight": world.glob("total_net_weight")
            + world.glob("total_energy_weight")
            + world.glob("total_tron_power_weight"),
            "tronPowerUsed": acc.votes_used(),
            "tronPowerLimit": acc.tron_power() // TRX_PRECISION,
            "EnergyUsed": recovered(acc.energy_usage, acc.latest_consume_time_for_energy, now),
            "EnergyLimit": energy_limit(world, params, acc),
            "TotalEnergyLimit": params.total_energy_limit,
            "TotalEnergyWeight": world.glob("total_energy_weight"),
        }
    )
    return out
