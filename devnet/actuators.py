"""validate + execute for each contract type (java-tron org.tron.core.actuator.*, VMActuator).

`run(ctx)` validates (raising `ContractValidateError` with java-tron's message) and executes against
`ctx.world` (a per-transaction overlay), returning an `Outcome` the chain turns into Transaction.ret and
TransactionInfo. Bandwidth / multi-sign / memo fees are charged by the chain before this runs.
Rewards: per-block accrual into per-witness "reward per vote" accumulators (voters settle lazily).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devnet import crypto
from devnet.params import (
    ACTIVE_DEFAULT_OPERATIONS,
    MAX_UNFREEZE_TIMES,
    MAX_VOTE_NUMBER,
    TRX_PRECISION,
    Params,
)
from devnet.pb import contract_pb2, tron_pb2
from devnet.resources import (
    EnergyBill,
    add_weight,
    increase,
    net_limit,
    pay_energy,
    recovered,
    slot_of,
    total_energy_limit,
    weight_for,
)
from devnet.state import AccountState, ContractState, Delegation, PermissionState, Unfreeze, World
from devnet.tvm import TVMValidationError

REWARD_SCALE = 10**18
RESOURCE_NAMES = ("BANDWIDTH", "ENERGY", "TRON_POWER")


class ContractValidateError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ContractExeError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Ctx:
    world: World
    params: Params
    type_name: str
    contract: Any  # the unpacked contract message
    txid: bytes
    now_ms: int  # timestamp of the block being built
    block_number: int
    fee_limit: int = 0
    vm: Any = None  # devnet.tvm.TVM-like engine (call/create)
    block_ctx: Any = None  # devnet.tvm.BlockContext


@dataclass
class Outcome:
    fee: int = 0  # actuator fee (new-account fee, permission-update fee): part of ret.fee / info.fee
    ret: str = "SUCCESS"  # Transaction.Result.contractResult name
    is_vm: bool = False
    contract_result: bytes = b""
    contract_address: bytes = b""
    logs: list[Any] = field(default_factory=list)  # tvm Log(address20, topics, data)
    res_message: str = ""
    energy: EnergyBill | None = None
    withdraw_amount: int = 0
    unfreeze_amount: int = 0
    withdraw_expire_amount: int = 0
    cancel_unfreeze: dict[str, int] = field(default_factory=dict)


# ---- helpers ------------------------------------------------------------------------------------


def readable(addr: bytes) -> str:
    return addr.hex()


def default_owner(addr: bytes) -> PermissionState:
    return PermissionState(type=0, id=0, name="owner", threshold=1, keys=((addr, 1),))


def default_active(addr: bytes) -> PermissionState:
    return PermissionState(
        type=2, id=2, name="active", threshold=1, keys=((addr, 1),), operations=ACTIVE_DEFAULT_OPERATIONS
    )


def new_account(addr: bytes, now_ms: int, acc_type: int = 0) -> AccountState:
    return AccountState(
        address=addr,
        create_time=now_ms,
        type=acc_type,
        owner_permission=default_owner(addr),
        active_permissions=(default_active(addr),),
    )


def permission_by_id(acc: AccountState | None, owner: bytes, pid: int) -> PermissionState | None:
    """getPermissionById incl. the defaults of accounts that do not exist yet."""
    if acc is None:
        return default_owner(owner) if pid == 0 else default_active(owner) if pid == 2 else None
    if pid == 0:
        return acc.owner_permission or default_owner(acc.address)
    if pid == 1:
        return acc.witness_permission
    if not acc.active_permissions and pid == 2:
        return default_active(acc.address)
    return acc.permission(pid)


def _owner(ctx: Ctx, missing: str = "not exists") -> tuple[bytes, AccountState]:
    addr = ctx.contract.owner_address
    if not crypto.is_address(addr):
        raise ContractValidateError("Invalid address")
    acc = ctx.world.account_for_update(addr)
    if acc is None:
        raise ContractValidateError(f"Account[{readable(addr)}] {missing}")
    return addr, acc


def withdraw_matured(acc: AccountState, now_ms: int) -> int:
    matured = sum(u.amount for u in acc.unfrozen if u.expire_ms <= now_ms)
    if matured:
        acc.unfrozen = [u for u in acc.unfrozen if u.expire_ms > now_ms]
        acc.balance += matured
    return matured


# ---- rewards ------------------------------------------------------------------------------------


def _acc_key(w: bytes) -> tuple[str, bytes]:
    return ("reward_acc", w)


def _votes_key(w: bytes) -> tuple[str, bytes]:
    return ("live_votes", w)


def pending_reward(world: World, acc: AccountState) -> int:
    total = 0
    for w, count in acc.votes:
        total += count * (world.glob(_acc_key(w)) - acc.reward_snapshot.get(w, 0)) // REWARD_SCALE
    return total


def settle_reward(world: World, acc: AccountState) -> None:
    """Move the voter's accrued reward into allowance and restart its accumulators (mutates acc)."""
    acc.allowance += pending_reward(world, acc)
    acc.reward_snapshot = {w: world.glob(_acc_key(w)) for w, _ in acc.votes}


def live_votes(world: World, w: bytes) -> int:
    return world.glob(_votes_key(w))


def set_votes(world: World, acc: AccountState, votes: list[tuple[bytes, int]]) -> None:
    settle_reward(world, acc)
    for w, count in acc.votes:
        world.set_glob(_votes_key(w), world.glob(_votes_key(w)) - count)
    for w, count in votes:
        world.set_glob(_votes_key(w), world.glob(_votes_key(w)) + count)
    acc.votes = list(votes)
    acc.reward_snapshot = {w: world.glob(_acc_key(w)) for w, _ in votes}


def pay_block_rewards(world: World, params: Params, producer: bytes) -> None:
    """Block reward to the producer and the 127-standby pay pro-rata to live votes; each witness keeps its
    brokerage share (allowance) and passes the rest to its voters via the accumulator."""
    shares: dict[bytes, int] = {producer: params["getWitnessPayPerBlock"]}
    witnesses = world.witness_addresses()
    vote_sum = sum(live_votes(world, w) for w in witnesses)
    standby = params["getWitness127PayPerBlock"]
    if vote_sum > 0 and standby > 0:
        for w in witnesses:
            v = live_votes(world, w)
            if v > 0:
                shares[w] = shares.get(w, 0) + standby * v // vote_sum
    for w, amount in shares.items():
        if amount <= 0:
            continue
        wit = world.witness(w)
        votes = live_votes(world, w)
        keep = amount if votes <= 0 or wit is None else amount * wit.brokerage // 100
        if amount - keep > 0:
            world.set_glob(_acc_key(w), world.glob(_acc_key(w)) + (amount - keep) * REWARD_SCALE // votes)
        acc = world.account_for_update(w)
        if acc is not None and keep > 0:
            acc.allowance += keep
            world.put_account(acc)


# ---- system contracts ------------------------------------------------------------------------------


def transfer(ctx: Ctx, out: Outcome) -> None:
    c, w, p = ctx.contract, ctx.world, ctx.params
    if not crypto.is_address(c.owner_address):
        raise ContractValidateError("Invalid ownerAddress!")
    if not crypto.is_address(c.to_address):
        raise ContractValidateError("Invalid toAddress!")
    if c.to_address == c.owner_address:
        raise ContractValidateError("Cannot transfer TRX to yourself.")
    owner = w.account_for_update(c.owner_address)
    if owner is None:
        raise ContractValidateError("Validate TransferContract error, no OwnerAccount.")
    if c.amount <= 0:
        raise ContractValidateError("Amount must be greater than 0.")
    to = w.account_for_update(c.to_address)
    fee = p.create_new_account_fee_in_system_contract if to is None else 0
    if owner.balance < c.amount + fee:
        raise ContractValidateError("Validate TransferContract error, balance is not sufficient.")
    if to is not None and to.balance + c.amount >= 2**63:
        raise ContractValidateError("long overflow")
    if to is None:
        to = new_account(c.to_address, ctx.now_ms)
    owner.balance -= c.amount + fee
    to.balance += c.amount
    w.put_account(owner)
    w.put_account(to)
    out.fee = fee


def account_create(ctx: Ctx, out: Outcome) -> None:
    c, w, p = ctx.contract, ctx.world, ctx.params
    if not crypto.is_address(c.owner_address):
        raise ContractValidateError("Invalid ownerAddress")
    owner = w.account_for_update(c.owner_address)
    if owner is None:
        raise ContractValidateError(f"Account[{readable(c.owner_address)}] not exists")
    fee = p.create_new_account_fee_in_system_contract
    if owner.balance < fee:
        raise ContractValidateError("Validate CreateAccountActuator error, insufficient fee.")
    if not crypto.is_address(c.account_address):
        raise ContractValidateError("Invalid account address")
    if w.account(c.account_address) is not None:
        raise ContractValidateError("Account has existed")
    owner.balance -= fee
    w.put_account(owner)
    w.put_account(new_account(c.account_address, ctx.now_ms, c.type))
    out.fee = fee


def freeze_v2(ctx: Ctx, out: Outcome) -> None:
    c, w = ctx.contract, ctx.world
    _, acc = _owner(ctx)
    amount, res = c.frozen_balance, c.resource
    if amount <= 0:
        raise ContractValidateError("frozenBalance must be positive")
    if amount < TRX_PRECISION:
        raise ContractValidateError("frozenBalance must be greater than or equal to 1 TRX")
    if amount > acc.balance:
        raise ContractValidateError("frozenBalance must be less than or equal to accountBalance")
    if res not in (0, 1, 2):
        raise ContractValidateError("ResourceCode error, valid ResourceCode[BANDWIDTH、ENERGY、TRON_POWER]")
    old = _weight(acc, res)
    acc.balance -= amount
    acc.frozen[res] += amount
    add_weight(w, res, _weight(acc, res) - old)
    w.put_account(acc)


def _weight(acc: AccountState, res: int) -> int:
    return weight_for(acc, res) if res < 2 else acc.frozen[2] // TRX_PRECISION


def _shrink_votes(w: World, acc: AccountState) -> None:
    """After losing tron power, scale votes down so they fit (UnfreezeBalanceV2Actuator.updateVote)."""
    power = acc.tron_power() // TRX_PRECISION
    used = acc.votes_used()
    if used <= power:
        return
    if power <= 0:
        set_votes(w, acc, [])
        return
    scaled = [(addr, n * power // used) for addr, n in acc.votes]
    set_votes(w, acc, [(a, n) for a, n in scaled if n > 0])


def unfreeze_v2(ctx: Ctx, out: Outcome) -> None:
    c, w, p = ctx.contract, ctx.world, ctx.params
    _, acc = _owner(ctx, "does not exist")
    res, amount = c.resource, c.unfreeze_balance
    if res not in (0, 1, 2):
        raise ContractValidateError("ResourceCode error.valid ResourceCode[BANDWIDTH、Energy]")
    if acc.frozen[res] <= 0:
        raise ContractValidateError(f"no frozenBalance({('BANDWIDTH', 'Energy', 'TronPower')[res]})")
    if amount <= 0 or amount > acc.frozen[res]:
        raise ContractValidateError(f"Invalid unfreeze_balance, [{amount}] is error")
    pending = sum(1 for u in acc.unfrozen if u.expire_ms > ctx.now_ms)
    if pending >= MAX_UNFREEZE_TIMES:
        raise ContractValidateError("Invalid unfreeze operation, unfreezing times is over limit")
    out.withdraw_expire_amount = withdraw_matured(acc, ctx.now_ms)
    old = _weight(acc, res)
    acc.frozen[res] -= amount
    add_weight(w, res, _weight(acc, res) - old)
    acc.unfrozen.append(Unfreeze(res, amount, ctx.now_ms + p.unfreeze_delay_ms))
    if res == 2:  # new resource model: only TRON_POWER unfreezes touch votes (updateVote)
        _shrink_votes(w, acc)
    w.put_account(acc)


def withdraw_expire_unfreeze(ctx: Ctx, out: Outcome) -> None:
    _, acc = _owner(ctx)
    if not any(u.expire_ms <= ctx.now_ms for u in acc.unfrozen):
        raise ContractValidateError("no unFreeze balance to withdraw ")
    out.withdraw_expire_amount = withdraw_matured(acc, ctx.now_ms)
    ctx.world.put_account(acc)


def cancel_all_unfreeze_v2(ctx: Ctx, out: Outcome) -> None:
    w = ctx.world
    if not ctx.params["getAllowCancelAllUnfreezeV2"]:
        raise ContractValidateError(
            "Not support CancelAllUnfreezeV2 transaction, need to be opened by the committee"
        )
    _, acc = _owner(ctx)
    if not acc.unfrozen:
        raise ContractValidateError("No unfreezeV2 list to cancel")
    cancelled = {name: 0 for name in RESOURCE_NAMES}
    for u in acc.unfrozen:
        if u.expire_ms <= ctx.now_ms:
            out.withdraw_expire_amount += u.amount
            acc.balance += u.amount
        else:
            old = _weight(acc, u.resource)
            acc.frozen[u.resource] += u.amount
            add_weight(w, u.resource, _weight(acc, u.resource) - old)
            cancelled[RESOURCE_NAMES[u.resource]] += u.amount
    acc.unfrozen = []
    out.cancel_unfreeze = cancelled
    w.put_account(acc)


def _usage_in_sun(ctx: Ctx, acc: AccountState, res: int) -> int:
    """Stake (sun) backing the account's current usage (DelegateResourceActuator's availability rule)."""
    w, p = ctx.world, ctx.params
    now = slot_of(ctx.now_ms)
    if res == 0:
        used = recovered(acc.net_usage, acc.latest_consume_time, now)
        total_w, total_l = w.glob("total_net_weight"), p.total_net_limit
    else:
        used = recovered(acc.energy_usage, acc.latest_consume_time_for_energy, now)
        total_w, total_l = w.glob("total_energy_weight"), p.total_energy_limit
    usage = int(used * TRX_PRECISION * (total_w / total_l)) if total_l else 0
    return max(usage - acc.acquired[res], 0)


def can_delegate_max(ctx: Ctx, acc: AccountState, res: int) -> int:
    return max(acc.frozen[res] - _usage_in_sun(ctx, acc, res), 0)


def delegate_resource(ctx: Ctx, out: Outcome) -> None:
    c, w, p = ctx.contract, ctx.world, ctx.params
    if not p["getAllowDelegateResource"]:
        raise ContractValidateError("No support for resource delegate")
    owner_addr, acc = _owner(ctx)
    res, amount = c.resource, c.balance
    if amount < TRX_PRECISION:
        raise ContractValidateError("delegateBalance must be greater than or equal to 1 TRX")
    if res == 0:
        if can_delegate_max(ctx, acc, 0) < amount:
            raise ContractValidateError(
                "delegateBalance must be less than or equal to available FreezeBandwidthV2 balance"
            )
    elif res == 1:
        if can_delegate_max(ctx, acc, 1) < amount:
            raise ContractValidateError(
                "delegateBalance must be less than or equal to available FreezeEnergyV2 balance"
            )
    else:
        raise ContractValidateError("ResourceCode error, valid ResourceCode[BANDWIDTH、ENERGY]")
    recv_addr = c.receiver_address
    if not crypto.is_address(recv_addr):
        raise ContractValidateError("Invalid receiverAddress")
    if recv_addr == owner_addr:
        raise ContractValidateError("receiverAddress must not be the same as ownerAddress")
    recv = w.account_for_update(recv_addr)
    if recv is None:
        raise ContractValidateError(f"Account[{readable(recv_addr)}] not exists")
    if recv.type == 2:
        raise ContractValidateError("Do not allow delegate resources to contract addresses")
    max_lock = p["getMaxDelegateLockPeriod"]
    lock_period = c.lock_period
    if c.lock:
        if lock_period < 0 or lock_period > max_lock:
            raise ContractValidateError(
                f"The lock period of delegate resource cannot be less than 0 and cannot exceed {max_lock}!"
            )
        if lock_period == 0:
            lock_period = p["devnetDefaultDelegateLockPeriod"]
    prev = w.delegation(owner_addr, recv_addr, c.lock) or Delegation()
    expire = ctx.now_ms + lock_period * 3000 if c.lock else 0
    if c.lock:
        remaining = (prev.expire_bandwidth if res == 0 else prev.expire_energy) - ctx.now_ms
        if remaining > lock_period * 3000:
            name = "BANDWIDTH" if res == 0 else "ENERGY"
            raise ContractValidateError(
                f"The lock period for {name} this time cannot be less than the remaining time"
                f"[{remaining}ms] of the last lock period for {name}!"
            )
    acc.frozen[res] -= amount
    acc.delegated_out[res] += amount
    recv.acquired[res] += amount
    if res == 0:
        new = Delegation(
            prev.bandwidth + amount, prev.energy, expire or prev.expire_bandwidth, prev.expire_energy
        )
    else:
        new = Delegation(
            prev.bandwidth, prev.energy + amount, prev.expire_bandwidth, expire or prev.expire_energy
        )
    w.put_account(acc)
    w.put_account(recv)
    w.put_delegation(owner_addr, recv_addr, c.lock, new)


def undelegate_resource(ctx: Ctx, out: Outcome) -> None:
    c, w = ctx.contract, ctx.world
    owner_addr, acc = _owner(ctx)
    recv_addr = c.receiver_address
    if not crypto.is_address(recv_addr):
        raise ContractValidateError("Invalid receiverAddress")
    if recv_addr == owner_addr:
        raise ContractValidateError("receiverAddress must not be the same as ownerAddress")
    res, amount = c.resource, c.balance
    if amount <= 0:
        raise ContractValidateError("unDelegateBalance must be more than 0 TRX")
    if res not in (0, 1):
        raise ContractValidateError("ResourceCode error.valid ResourceCode[BANDWIDTH、Energy]")
    unlocked = w.delegation(owner_addr, recv_addr, False) or Delegation()
    locked = w.delegation(owner_addr, recv_addr, True) or Delegation()
    u_amt = unlocked.bandwidth if res == 0 else unlocked.energy
    l_amt = locked.bandwidth if res == 0 else locked.energy
    l_exp = locked.expire_bandwidth if res == 0 else locked.expire_energy
    available = u_amt + (l_amt if l_exp <= ctx.now_ms else 0)
    if u_amt + l_amt == 0:
        raise ContractValidateError("delegated Resource does not exist")
    if amount > available:
        which = "BANDWIDTH" if res == 0 else "Energy"
        verb = "delegatedFrozenBalance" if res == 0 else "delegateFrozenBalance"
        raise ContractValidateError(
            f"insufficient {verb}({which}), request={amount}, unlock_balance={available}"
        )
    take_u = min(amount, u_amt)
    take_l = amount - take_u
    for lock, rec, take in ((False, unlocked, take_u), (True, locked, take_l)):
        if take:
            if res == 0:
                rec = Delegation(rec.bandwidth - take, rec.energy, rec.expire_bandwidth, rec.expire_energy)
            else:
                rec = Delegation(rec.bandwidth, rec.energy - take, rec.expire_bandwidth, rec.expire_energy)
            w.put_delegation(owner_addr, recv_addr, lock, rec)
    recv = w.account_for_update(recv_addr)
    if recv is not None:
        _move_usage(recv, acc, res, amount, slot_of(ctx.now_ms))
        recv.acquired[res] = max(recv.acquired[res] - amount, 0)
        w.put_account(recv)
    acc.delegated_out[res] -= amount
    acc.frozen[res] += amount
    w.put_account(acc)


def _move_usage(recv: AccountState, owner: AccountState, res: int, amount: int, now: int) -> None:
    """UnDelegateResource: the receiver's usage backed by the reclaimed stake moves to the owner."""
    total = recv.frozen[res] + recv.acquired[res]
    if total <= 0:
        return
    if res == 0:
        used = recovered(recv.net_usage, recv.latest_consume_time, now)
        moved = int(used * (amount / total))
        recv.net_usage, recv.latest_consume_time = max(used - moved, 0), now
        owner.net_usage = increase(owner.net_usage, moved, owner.latest_consume_time, now)
        owner.latest_consume_time = now
    else:
        used = recovered(recv.energy_usage, recv.latest_consume_time_for_energy, now)
        moved = int(used * (amount / total))
        recv.energy_usage, recv.latest_consume_time_for_energy = max(used - moved, 0), now
        owner.energy_usage = increase(owner.energy_usage, moved, owner.latest_consume_time_for_energy, now)
        owner.latest_consume_time_for_energy = now


def vote_witness(ctx: Ctx, out: Outcome) -> None:
    c, w = ctx.contract, ctx.world
    if not crypto.is_address(c.owner_address):
        raise ContractValidateError("Invalid address")
    if len(c.votes) <= 0:
        raise ContractValidateError("VoteNumber must more than 0")
    if len(c.votes) > MAX_VOTE_NUMBER:
        raise ContractValidateError(f"VoteNumber more than maxVoteNumber {MAX_VOTE_NUMBER}")
    total = 0
    votes: list[tuple[bytes, int]] = []
    for v in c.votes:
        if not crypto.is_address(v.vote_address):
            raise ContractValidateError("Invalid vote address!")
        if v.vote_count <= 0:
            raise ContractValidateError("vote count must be greater than 0")
        if w.account(v.vote_address) is None:
            raise ContractValidateError(f"Account[{readable(v.vote_address)}] not exists")
        if w.witness(v.vote_address) is None:
            raise ContractValidateError(f"Witness[{readable(v.vote_address)}] not exists")
        total += v.vote_count
        votes.append((v.vote_address, v.vote_count))
    acc = w.account_for_update(c.owner_address)
    if acc is None:
        raise ContractValidateError(f"Account[{readable(c.owner_address)}] not exists")
    power = acc.tron_power()
    if total * TRX_PRECISION > power:
        raise ContractValidateError(
            f"The total number of votes[{total * TRX_PRECISION}] is greater than the tronPower[{power}]"
        )
    set_votes(w, acc, votes)
    w.put_account(acc)


def withdraw_balance(ctx: Ctx, out: Outcome) -> None:
    c, w, p = ctx.contract, ctx.world, ctx.params
    _, acc = _owner(ctx)
    interval = p["devnetWithdrawIntervalMs"]
    if acc.latest_withdraw_time and ctx.now_ms - acc.latest_withdraw_time < interval:
        raise ContractValidateError(
            f"The last withdraw time is {acc.latest_withdraw_time}, less than 24 hours"
        )
    settle_reward(w, acc)
    if acc.allowance <= 0:
        raise ContractValidateError("witnessAccount does not have any reward")
    out.withdraw_amount = acc.allowance
    acc.balance += acc.allowance
    acc.allowance = 0
    acc.latest_withdraw_time = ctx.now_ms
    w.put_account(acc)
    del c


def _check_permission(perm: tron_pb2.Permission, kind: str, p: Params) -> None:
    if len(perm.keys) > p.total_sign_num:
        raise ContractValidateError(
            f"number of keys in permission should not be greater than {p.total_sign_num}"
        )
    if not perm.keys:
        raise ContractValidateError("key's count should be greater than 0")
    if kind == "witness" and len(perm.keys) != 1:
        raise ContractValidateError("Witness permission's key count should be 1")
    if perm.threshold <= 0:
        raise ContractValidateError("permission's threshold should be greater than 0")
    if len(perm.permission_name) > 32:
        raise ContractValidateError("permission's name is too long")
    if perm.parent_id != 0:
        raise ContractValidateError("permission's parent should be owner")
    seen: set[bytes] = set()
    weight_sum = 0
    for k in perm.keys:
        if not crypto.is_address(k.address):
            raise ContractValidateError("key is not a validate address")
        if k.weight <= 0:
            raise ContractValidateError("key's weight should be greater than 0")
        if k.address in seen:
            kind_name = tron_pb2.Permission.PermissionType.Name(perm.type)
            raise ContractValidateError(f"address should be distinct in permission {kind_name}")
        seen.add(k.address)
        weight_sum += k.weight
    if weight_sum < perm.threshold:
        raise ContractValidateError(
            "sum of all key's weight should not be less than threshold in permission "
            f"{tron_pb2.Permission.PermissionType.Name(perm.type)}"
        )
    if kind != "active":
        if perm.operations:
            raise ContractValidateError(f"{kind} permission needn't operations")
    elif len(perm.operations) != 32:
        raise ContractValidateError("operations size must 32")


def _perm_state(perm: tron_pb2.Permission, pid: int) -> PermissionState:
    return PermissionState(
        type=perm.type,
        id=pid,
        name=perm.permission_name,
        threshold=perm.threshold,
        keys=tuple((k.address, k.weight) for k in perm.keys),
        operations=bytes(perm.operations),
        parent_id=0,
    )


def account_permission_update(ctx: Ctx, out: Outcome) -> None:
    c, w, p = ctx.contract, ctx.world, ctx.params
    if not p["getAllowMultiSign"]:
        raise ContractValidateError("multi sign is not allowed, need to be opened by the committee")
    if not crypto.is_address(c.owner_address):
        raise ContractValidateError("invalidate ownerAddress")
    acc = w.account_for_update(c.owner_address)
    if acc is None:
        raise ContractValidateError("ownerAddress account does not exist")
    if not c.HasField("owner"):
        raise ContractValidateError("owner permission is missed")
    if acc.is_witness:
        if not c.HasField("witness"):
            raise ContractValidateError("witness permission is missed")
    elif c.HasField("witness"):
        raise ContractValidateError("account isn't witness can't set witness permission")
    if not c.actives:
        raise ContractValidateError("active permission is missed")
    if len(c.actives) > 8:
        raise ContractValidateError("active permission is too many")
    if c.owner.type != 0:
        raise ContractValidateError("owner permission type is error")
    _check_permission(c.owner, "owner", p)
    if acc.is_witness:
        if c.witness.type != 1:
            raise ContractValidateError("witness permission type is error")
        _check_permission(c.witness, "witness", p)
    for a in c.actives:
        if a.type != 2:
            raise ContractValidateError("active permission type is error")
        _check_permission(a, "active", p)
    fee = p.update_account_permission_fee
    if acc.balance < fee:
        raise ContractValidateError("balance is not sufficient")
    acc.owner_permission = _perm_state(c.owner, 0)
    if acc.is_witness:
        acc.witness_permission = _perm_state(c.witness, 1)
    acc.active_permissions = tuple(_perm_state(a, 2 + i) for i, a in enumerate(c.actives))
    acc.balance -= fee
    w.put_account(acc)
    out.fee = fee


# ---- smart contracts -------------------------------------------------------------------------------


def _check_fee_limit(ctx: Ctx) -> None:
    max_fee = ctx.params.max_fee_limit
    if ctx.fee_limit < 0 or ctx.fee_limit > max_fee:
        raise ContractValidateError(f"feeLimit must be >= 0 and <= {max_fee}")


def contract_address_for(txid: bytes, owner: bytes) -> bytes:
    return b"\x41" + crypto.keccak256(txid + owner)[12:]


def create_smart_contract(ctx: Ctx, out: Outcome) -> None:
    c, w, p = ctx.contract, ctx.world, ctx.params
    out.is_vm = True
    nc = c.new_contract
    if not p["getAllowCreationOfContracts"]:
        raise ContractValidateError("contract creation is not allowed")
    if not crypto.is_address(c.owner_address) or nc.origin_address != c.owner_address:
        raise ContractValidateError("OwnerAddress is not equals OriginAddress")
    if len(nc.name.encode()) > 32:
        raise ContractValidateError("contractName's length cannot be greater than 32")
    if not 0 <= nc.consume_user_resource_percent <= 100:
        raise ContractValidateError("percent must be >= 0 and <= 100")
    addr = contract_address_for(ctx.txid, c.owner_address)
    if w.account(addr) is not None:
        raise ContractValidateError(
            f"Trying to create a contract with existing contract address: {crypto.to_base58(addr)}"
        )
    _check_fee_limit(ctx)
    owner = w.account_for_update(c.owner_address)
    if owner is None:
        raise ContractValidateError("Validate CreateSmartContract error, no owner account")
    if nc.origin_energy_limit <= 0:
        raise ContractValidateError("The originEnergyLimit must be > 0")
    if nc.call_value < 0:
        raise ContractValidateError("callValue must be >= 0")
    if owner.balance < nc.call_value:
        raise ContractValidateError("balance is not sufficient")
    now_slot = slot_of(ctx.now_ms)
    limit, _ = total_energy_limit(w, p, owner, None, 100, 0, ctx.fee_limit, nc.call_value, now_slot)
    out.contract_address = addr
    res = _vm(
        ctx.vm.create,
        w,
        ctx.block_ctx,
        origin=c.owner_address[1:],
        address=addr[1:],
        init_code=bytes(nc.bytecode),
        value=nc.call_value,
        energy_limit=limit,
        tx_id=ctx.txid,
        energy_factor=energy_factors(p, w),
    )
    _apply_vm_result(ctx, out, res)
    if res.result == "SUCCESS":
        runtime = w.code(addr[1:])
        stored = contract_pb2.SmartContract()
        stored.CopyFrom(nc)
        stored.contract_address = addr
        stored.code_hash = crypto.keccak256(runtime)
        stored.trx_hash = ctx.txid
        w.put_contract(
            ContractState(
                address=addr,
                origin_address=c.owner_address,
                smart_contract=stored.SerializeToString(),
                consume_user_resource_percent=nc.consume_user_resource_percent,
                origin_energy_limit=nc.origin_energy_limit,
            )
        )
        acc = w.account_for_update(addr) or new_account(addr, ctx.now_ms, 2)
        acc.type = 2
        acc.account_name = nc.name.encode()
        w.put_account(acc)
    owner = w.existing_account_for_update(c.owner_address)  # validated above; the VM deletes no account
    out.energy = pay_energy(w, p, owner, None, 100, 0, res.energy_used, now_slot)
    out.energy.energy_penalty_total = res.energy_penalty
    w.put_account(owner)


def trigger_smart_contract(ctx: Ctx, out: Outcome) -> None:
    c, w, p = ctx.contract, ctx.world, ctx.params
    out.is_vm = True
    if not crypto.is_address(c.owner_address):
        raise ContractValidateError("Invalid ownerAddress")
    cs = w.contract(c.contract_address) if crypto.is_address(c.contract_address) else None
    if cs is None:
        raise ContractValidateError("No contract or not a valid smart contract")
    _check_fee_limit(ctx)
    caller = w.account_for_update(c.owner_address)
    if caller is None:
        raise ContractValidateError("Validate TriggerSmartContract error, no OwnerAccount.")
    if c.call_value < 0:
        raise ContractValidateError("callValue must be >= 0")
    if caller.balance < c.call_value:
        raise ContractValidateError("balance is not sufficient")
    origin = w.account(cs.origin_address)
    pct, origin_limit = cs.consume_user_resource_percent, cs.origin_energy_limit
    now_slot = slot_of(ctx.now_ms)
    limit, _ = total_energy_limit(
        w, p, caller, origin, pct, origin_limit, ctx.fee_limit, c.call_value, now_slot
    )
    out.contract_address = c.contract_address
    res = _vm(
        ctx.vm.call,
        w,
        ctx.block_ctx,
        origin=c.owner_address[1:],
        caller=c.owner_address[1:],
        contract=c.contract_address[1:],
        value=c.call_value,
        data=bytes(c.data),
        energy_limit=limit,
        tx_id=ctx.txid,
        energy_factor=energy_factors(p, w),
    )
    _apply_vm_result(ctx, out, res)
    caller = w.existing_account_for_update(c.owner_address)  # validated above; the VM deletes no account
    origin_upd = w.account_for_update(cs.origin_address) if cs.origin_address != c.owner_address else None
    out.energy = pay_energy(w, p, caller, origin_upd, pct, origin_limit, res.energy_used, now_slot)
    out.energy.energy_penalty_total = res.energy_penalty
    w.put_account(caller)
    if origin_upd is not None:
        w.put_account(origin_upd)


def energy_factors(params: Params, world: World) -> Callable[[bytes], int] | None:
    """The TVM's lookup of a contract's dynamic-energy factor (getcontractinfo's energy_factor; 20-byte
    address), or None when the model is off (getAllowDynamicEnergy 0). Held constant: the devnet does not
    re-tally factors per maintenance cycle."""
    if not params["getAllowDynamicEnergy"]:
        return None

    def factor(address: bytes) -> int:
        cs = world.contract(b"\x41" + address)
        return cs.energy_factor if cs is not None else 0

    return factor


def _vm(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except TVMValidationError as exc:
        raise ContractValidateError(str(exc)) from None


def _apply_vm_result(ctx: Ctx, out: Outcome, res: Any) -> None:
    out.ret = res.result
    out.contract_result = bytes(res.return_data or b"")
    out.logs = list(res.logs) if res.result == "SUCCESS" else []
    out.res_message = res.message or ""


ACTUATORS: dict[str, Callable[[Ctx, Outcome], None]] = {
    "TransferContract": transfer,
    "AccountCreateContract": account_create,
    "FreezeBalanceV2Contract": freeze_v2,
    "UnfreezeBalanceV2Contract": unfreeze_v2,
    "WithdrawExpireUnfreezeContract": withdraw_expire_unfreeze,
    "CancelAllUnfreezeV2Contract": cancel_all_unfreeze_v2,
    "DelegateResourceContract": delegate_resource,
    "UnDelegateResourceContract": undelegate_resource,
    "VoteWitnessContract": vote_witness,
    "WithdrawBalanceContract": withdraw_balance,
    "AccountPermissionUpdateContract": account_permission_update,
    "CreateSmartContract": create_smart_contract,
    "TriggerSmartContract": trigger_smart_contract,
}


def run(ctx: Ctx) -> Outcome:
    """Validate and execute one contract; ContractValidateError leaves ctx.world to be discarded."""
    fn = ACTUATORS.get(ctx.type_name)
    if fn is None:
        raise ContractValidateError(f"No support for contract type {ctx.type_name}")
    out = Outcome()
    fn(ctx, out)
    return out


def creates_account(world: World, type_name: str, contract: Any) -> bool:
    """Bandwidth's create-account path: AccountCreate, or a transfer to an address without an account."""
    if type_name == "AccountCreateContract":
        return True
    if type_name == "TransferContract":
        return crypto.is_address(contract.to_address) and world.account(contract.to_address) is None
    return False


def delegatable(world: World, params: Params, acc: AccountState, res: int, now_ms: int) -> int:
    ctx = Ctx(world, params, "", None, b"", now_ms, 0)
    return can_delegate_max(ctx, acc, res)


__all__ = ["ACTUATORS", "Ctx", "Outcome", "net_limit", "run"]
