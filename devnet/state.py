"""Versioned world state.

`VersionedStore` keeps, for every key, the list of (height, value) versions written by committed blocks.
Reads at a height see the latest version <= that height (walletsolidity reads at the solid height);
`rollback(h)` drops newer versions (forks); `compact(h)` drops versions shadowed below h (solidified).
`Overlay` layers uncommitted writes (the pending block, one transaction) on top of a read view; `World` gives
typed access (accounts, contracts, storage, witnesses, delegations, globals) over any view and implements the
TVM's `WorldState` protocol with 20-byte addresses.

Keys are small tuples; values are treated as immutable once stored — callers clone before mutating
(`World.account_for_update`). `None` as a value means "deleted".
"""

from __future__ import annotations

import copy
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

Key = tuple[Any, ...]
_MISSING = object()


class Reader(Protocol):
    def get(self, key: Key) -> Any: ...


class VersionedStore:
    def __init__(self) -> None:
        self._versions: dict[Key, list[tuple[int, Any]]] = {}
        self._written_at: dict[int, list[Key]] = {}
        self._dirty: set[Key] = set()
        self.height = -1

    def get(self, key: Key, at: int | None = None) -> Any:
        versions = self._versions.get(key)
        if not versions:
            return None
        if at is None or at >= self.height:
            return versions[-1][1]
        for h, value in reversed(versions):
            if h <= at:
                return value
        return None

    def commit(self, height: int, writes: dict[Key, Any]) -> None:
        if height <= self.height:
            raise ValueError(f"commit at {height} <= current height {self.height}")
        for key, value in writes.items():
            versions = self._versions.get(key)
            if versions is None:
                self._versions[key] = [(height, value)]
            else:
                versions.append((height, value))
                self._dirty.add(key)
        self._written_at[height] = list(writes)
        self.height = height

    def rollback(self, height: int) -> None:
        """Forget every version written above `height`."""
        for h in sorted((h for h in self._written_at if h > height), reverse=True):
            for key in self._written_at.pop(h):
                versions = self._versions.get(key)
                while versions and versions[-1][0] > height:
                    versions.pop()
                if versions is not None and not versions:
                    del self._versions[key]
        self.height = min(self.height, height)

    def compact(self, upto: int) -> None:
        """Keep only the newest version <= upto (plus newer ones); `upto` must never be rolled back past."""
        for key in self._dirty:
            versions = self._versions.get(key)
            if not versions or len(versions) < 2:
                continue
            idx = 0
            for i, (h, _) in enumerate(versions):
                if h <= upto:
                    idx = i
            if idx:
                del versions[:idx]
        self._dirty = {k for k in self._dirty if len(self._versions.get(k) or ()) > 1}
        for h in [h for h in self._written_at if h <= upto]:
            del self._written_at[h]

    def at(self, height: int | None = None) -> Snapshot:
        return Snapshot(self, height)


class Snapshot:
    """Read-only view of a store at a height (None = latest)."""

    __slots__ = ("height", "store")

    def __init__(self, store: VersionedStore, height: int | None) -> None:
        self.store = store
        self.height = height

    def get(self, key: Key) -> Any:
        return self.store.get(key, self.height)


class Overlay:
    """Uncommitted writes over a parent view. `merge()` pushes them into the parent overlay."""

    __slots__ = ("parent", "writes")

    def __init__(self, parent: Reader) -> None:
        self.parent = parent
        self.writes: dict[Key, Any] = {}

    def get(self, key: Key) -> Any:
        value = self.writes.get(key, _MISSING)
        if value is _MISSING:
            return self.parent.get(key)
        return value

    def set(self, key: Key, value: Any) -> None:
        self.writes[key] = value

    def merge(self) -> None:
        parent = self.parent
        if not isinstance(parent, Overlay):
            raise TypeError("can only merge into an Overlay")
        parent.writes.update(self.writes)
        self.writes = {}


# ---- state records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PermissionState:
    type: int  # 0 Owner, 1 Witness, 2 Active
    id: int
    name: str
    threshold: int
    keys: tuple[tuple[bytes, int], ...]
    operations: bytes = b""
    parent_id: int = 0

    def weight_of(self, addr: bytes) -> int:
        for a, w in self.keys:
            if a == addr:
                return w
        return 0


@dataclass
class Unfreeze:
    resource: int
    amount: int
    expire_ms: int


@dataclass
class AccountState:
    address: bytes
    balance: int = 0
    create_time: int = 0
    type: int = 0  # AccountType: 0 Normal, 2 Contract
    latest_operation_time: int = 0
    # bandwidth / energy usage, times in slots (timestamp_ms // 3000)
    net_usage: int = 0
    latest_consume_time: int = 0
    free_net_usage: int = 0
    latest_consume_free_time: int = 0
    energy_usage: int = 0
    latest_consume_time_for_energy: int = 0
    # Stake 2.0: frozen[resource] for 0 BANDWIDTH, 1 ENERGY, 2 TRON_POWER
    frozen: list[int] = field(default_factory=lambda: [0, 0, 0])
    unfrozen: list[Unfreeze] = field(default_factory=list)
    delegated_out: list[int] = field(default_factory=lambda: [0, 0])  # [bandwidth, energy]
    acquired: list[int] = field(default_factory=lambda: [0, 0])
    votes: list[tuple[bytes, int]] = field(default_factory=list)
    # rewards: settled allowance (voter + witness share) and per-witness accumulator snapshots
    allowance: int = 0
    reward_snapshot: dict[bytes, int] = field(default_factory=dict)
    latest_withdraw_time: int = 0
    is_witness: bool = False
    account_name: bytes = b""
    owner_permission: PermissionState | None = None
    witness_permission: PermissionState | None = None
    active_permissions: tuple[PermissionState, ...] = ()

    def clone(self) -> AccountState:
        c = copy.copy(self)
        c.frozen = list(self.frozen)
        c.unfrozen = [Unfreeze(u.resource, u.amount, u.expire_ms) for u in self.unfrozen]
        c.delegated_out = list(self.delegated_out)
        c.acquired = list(self.acquired)
        c.votes = list(self.votes)
        c.reward_snapshot = dict(self.reward_snapshot)
        return c

    def tron_power(self) -> int:
        """All staked sun that carries votes (own frozen incl. what is delegated away)."""
        return sum(self.frozen) + sum(self.delegated_out)

    def votes_used(self) -> int:
        return sum(c for _, c in self.votes)

    def permission(self, pid: int) -> PermissionState | None:
        if pid == 0:
            return self.owner_permission
        if pid == 1:
            return self.witness_permission
        for p in self.active_permissions:
            if p.id == pid:
                return p
        return None


@dataclass(frozen=True)
class ContractState:
    """A deployed contract (the SmartContract message is kept serialized; runtime code lives under "code")."""

    address: bytes
    origin_address: bytes
    smart_contract: bytes  # serialized SmartContract (abi, bytecode, name, limits, hashes)
    consume_user_resource_percent: int
    origin_energy_limit: int
    energy_factor: int = 0


@dataclass
class WitnessState:
    address: bytes
    url: str
    vote_count: int = 0  # tallied at maintenance
    total_produced: int = 0
    total_missed: int = 0
    latest_block_num: int = 0
    latest_slot_num: int = 0
    brokerage: int = 20

    def clone(self) -> WitnessState:
        return copy.copy(self)


@dataclass(frozen=True)
class Delegation:
    """DelegatedResource from→to (one record for unlocked, one for locked delegations)."""

    bandwidth: int = 0
    energy: int = 0
    expire_bandwidth: int = 0
    expire_energy: int = 0


# ---- typed view -----------------------------------------------------------------------------------------

ACC = "a"
CONTRACT = "c"
CODE = "code"
SLOT = "s"
WITNESS = "w"
DELEG = "d"
DELEG_INDEX = "di"
GLOBAL = "g"

PREFIX = 0x41


class World:
    """Typed access to a view (Snapshot or Overlay). Writes require an Overlay. Also the TVM WorldState."""

    __slots__ = ("view",)

    def __init__(self, view: Any) -> None:
        self.view = view

    # -- accounts
    def account(self, addr: bytes) -> AccountState | None:
        return self.view.get((ACC, addr))

    def account_for_update(self, addr: bytes) -> AccountState | None:
        acc = self.view.get((ACC, addr))
        return acc.clone() if acc is not None else None

    def existing_account_for_update(self, addr: bytes) -> AccountState:
        """account_for_update of an account known to exist (validated earlier): KeyError if it does not."""
        acc = self.account_for_update(addr)
        if acc is None:
            raise KeyError(f"account {addr.hex()} does not exist")
        return acc

    def put_account(self, acc: AccountState) -> None:
        self.view.set((ACC, acc.address), acc)

    # -- globals (total weights, reward accumulators, maintenance time, …)
    def glob(self, name: Hashable, default: Any = 0) -> Any:
        value = self.view.get((GLOBAL, name))
        return default if value is None else value

    def set_glob(self, name: Hashable, value: Any) -> None:
        self.view.set((GLOBAL, name), value)

    # -- contracts
    def contract(self, addr: bytes) -> ContractState | None:
        return self.view.get((CONTRACT, addr))

    def put_contract(self, c: ContractState) -> None:
        self.view.set((CONTRACT, c.address), c)

    # -- witnesses
    def witness(self, addr: bytes) -> WitnessState | None:
        return self.view.get((WITNESS, addr))

    def put_witness(self, w: WitnessState) -> None:
        self.view.set((WITNESS, w.address), w)
        addrs = self.glob("witnesses", ())
        if w.address not in addrs:
            self.set_glob("witnesses", (*addrs, w.address))

    def witness_addresses(self) -> tuple[bytes, ...]:
        return self.glob("witnesses", ())

    # -- delegations
    def delegation(self, frm: bytes, to: bytes, lock: bool) -> Delegation | None:
        return self.view.get((DELEG, frm, to, lock))

    def put_delegation(self, frm: bytes, to: bytes, lock: bool, d: Delegation | None) -> None:
        if d is not None and not (d.bandwidth or d.energy):
            d = None
        self.view.set((DELEG, frm, to, lock), d)
        both_empty = d is None and self.delegation(frm, to, not lock) is None
        for owner, other, slot in ((frm, to, 1), (to, frm, 0)):
            index = self.view.get((DELEG_INDEX, owner)) or ((), ())
            lst = list(index[slot])
            if both_empty and other in lst:
                lst.remove(other)
            elif not both_empty and other not in lst:
                lst.append(other)
            new = (tuple(lst), index[1]) if slot == 0 else (index[0], tuple(lst))
            self.view.set((DELEG_INDEX, owner), new)

    def delegation_index(self, addr: bytes) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """(from accounts that delegated to addr, to accounts addr delegated to)."""
        return self.view.get((DELEG_INDEX, addr)) or ((), ())

    # -- TVM WorldState protocol (20-byte addresses) -------------------------------------------------
    def balance(self, a: bytes) -> int:
        acc = self.view.get((ACC, bytes([PREFIX]) + a))
        return acc.balance if acc is not None else 0

    def set_balance(self, a: bytes, value: int) -> None:
        addr = bytes([PREFIX]) + a
        acc = self.account_for_update(addr)
        if acc is None:
            acc = AccountState(address=addr, create_time=self.glob("block_time", 0))
        acc.balance = value
        self.put_account(acc)

    def code(self, a: bytes) -> bytes:
        return self.view.get((CODE, a)) or b""

    def set_code(self, a: bytes, code: bytes) -> None:
        self.view.set((CODE, a), code)
        addr = bytes([PREFIX]) + a
        acc = self.account_for_update(addr)
        if acc is None:
            acc = AccountState(address=addr, create_time=self.glob("block_time", 0))
        if code and acc.type != 2:
            acc.type = 2
        self.put_account(acc)

    def storage(self, a: bytes, slot: int) -> int:
        return self.view.get((SLOT, a, slot)) or 0

    def set_storage(self, a: bytes, slot: int, value: int) -> None:
        self.view.set((SLOT, a, slot), value if value else None)

    def exists(self, a: bytes) -> bool:
        return self.view.get((ACC, bytes([PREFIX]) + a)) is not None

    def create_account(self, a: bytes) -> None:
        addr = bytes([PREFIX]) + a
        if self.view.get((ACC, addr)) is None:
            self.put_account(AccountState(address=addr, create_time=self.glob("block_time", 0)))
