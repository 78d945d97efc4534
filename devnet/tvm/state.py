"""Journaled overlay over a WorldState: the subset of py-evm's StateAPI that computations call.

py-evm's own State/AccountDB keeps a trie and journals per account; per transaction that costs far more than
the contract code itself. This overlay reads through to the chain's WorldState, keeps every write in plain
dicts with an undo journal (snapshot = journal length), and hands the writes to the WorldState only when
`flush()` is called after a successful, non-constant execution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth_hash.auto import keccak

from devnet.tvm.world import WorldState

_MISSING: Any = object()


class ExecutionContext:
    """What py-evm's opcodes read as `state.execution_context` (only chain_id is used)."""

    __slots__ = ("chain_id",)

    def __init__(self, chain_id: int) -> None:
        self.chain_id = chain_id


class TVMState:
    """One execution's view of the world plus TVM block context (COINBASE, TIMESTAMP, ...)."""

    logger = None  # py-evm never logs through the state on the paths we use

    def __init__(
        self,
        world: WorldState,
        *,
        tx_id: bytes,
        coinbase: bytes,
        timestamp: int,
        block_number: int,
        chain_id: int,
        base_fee: int,
        ancestor_hash: Callable[[int], bytes] | None,
        energy_factor: Callable[[bytes], int] | None = None,
    ) -> None:
        self.world = world
        self.tx_id = tx_id
        self._factor_of = energy_factor
        self._factors: dict[bytes, int] = {}
        self.energy_penalty = 0  # dynamic-energy penalties spent by all frames of this execution
        # Running counter of internal transactions of the root tx: TVM's CREATE address input.
        self.internal_nonce = 0
        self.coinbase = coinbase
        self.timestamp = timestamp
        self.block_number = block_number
        self.execution_context = ExecutionContext(chain_id)
        self.base_fee = base_fee
        self.difficulty = 0
        self.mix_hash = b"\x00" * 32
        self.gas_limit = 0  # TVM's GASLIMIT is 0
        self._ancestor_hash = ancestor_hash
        self._storage: dict[tuple[bytes, int], int] = {}
        self._balance: dict[bytes, int] = {}
        self._code: dict[bytes, bytes] = {}
        self._created: dict[bytes, bool] = {}
        self._deleted: dict[bytes, bool] = {}
        self._written_storage: set[tuple[bytes, int]] = set()
        self._written_balance: set[bytes] = set()
        self._written_code: set[bytes] = set()
        self._journal: list[tuple[dict[Any, Any], Any, Any]] = []

    # -- journal ------------------------------------------------------------------------------------
    def snapshot(self) -> int:
        return len(self._journal)

    def revert(self, snapshot: int) -> None:
        journal = self._journal
        while len(journal) > snapshot:
            table, key, old = journal.pop()
            if old is _MISSING:
                table.pop(key, None)
            else:
                table[key] = old

    def commit(self, snapshot: int) -> None:
        # Nested commits keep their entries: an outer revert must still undo them.
        pass

    def _record(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        self._journal.append((table, key, table.get(key, _MISSING)))
        table[key] = value

    # -- storage ------------------------------------------------------------------------------------
    def get_storage(self, address: bytes, slot: int, from_journal: bool = True) -> int:
        key = (address, slot)
        value = self._storage.get(key, _MISSING)
        if value is _MISSING:
            value = 0 if address in self._deleted else self.world.storage(address, slot)
            self._storage[key] = value  # read cache: reverting to it later restores the same value
        return value

    def set_storage(self, address: bytes, slot: int, value: int) -> None:
        key = (address, slot)
        self._written_storage.add(key)
        self._record(self._storage, key, value)

    def delete_storage(self, address: bytes) -> None:
        # Only reached for CREATE2 targets, which are fresh addresses with empty storage.
        pass

    # -- balance ------------------------------------------------------------------------------------
    def get_balance(self, address: bytes) -> int:
        value = self._balance.get(address, _MISSING)
        if value is _MISSING:
            value = self.world.balance(address)
            self._balance[address] = value
        return value

    def set_balance(self, address: bytes, balance: int) -> None:
        if not self.account_exists(address):
            self._record(self._created, address, True)
        self._written_balance.add(address)
        self._record(self._balance, address, balance)

    def delta_balance(self, address: bytes, delta: int) -> None:
        self.set_balance(address, self.get_balance(address) + delta)

    # -- code ---------------------------------------------------------------------------------------
    def get_code(self, address: bytes) -> bytes:
        code = self._code.get(address, _MISSING)
        if code is _MISSING:
            code = self.world.code(address)
            self._code[address] = code
        return code

    def set_code(self, address: bytes, code: bytes) -> None:
        if not self.account_exists(address):
            self._record(self._created, address, True)
        self._written_code.add(address)
        self._record(self._code, address, code)

    def get_code_hash(self, address: bytes) -> bytes:
        code = self.get_code(address)
        return keccak(code) if code else EMPTY_SHA3

    # -- accounts -----------------------------------------------------------------------------------
    def account_exists(self, address: bytes) -> bool:
        if address in self._created:
            return True
        return self.world.exists(address)

    def account_is_empty(self, address: bytes) -> bool:
        # TVM's "dead account" test is existence only (EnergyCost.isDeadAccount).
        return not self.account_exists(address)

    def touch_account(self, address: bytes) -> None:
        pass

    def get_nonce(self, address: bytes) -> int:
        return 0  # TVM has no account nonces; CREATE uses internal_nonce instead

    def increment_nonce(self, address: bytes) -> None:
        pass

    def has_code_or_nonce(self, address: bytes) -> bool:
        return bool(self.get_code(address))

    def delete_account(self, address: bytes) -> None:
        self._record(self._deleted, address, True)
        self.set_code(address, b"")
        self.set_balance(address, 0)

    # -- EIP-2929 access lists do not exist in the TVM ------------------------------------------------
    def is_address_warm(self, address: bytes) -> bool:
        return True

    def mark_address_warm(self, address: bytes) -> None:
        pass

    def is_storage_warm(self, address: bytes, slot: int) -> bool:
        return True

    def mark_storage_warm(self, address: bytes, slot: int) -> None:
        pass

    # -- dynamic energy (TIP-491) -------------------------------------------------------------------
    def energy_factor(self, address: bytes) -> int:
        """The dynamic-energy factor (scale 10 000) of the contract whose frame runs at `address`, 0 for
        none or when the chain gave no lookup (dynamic energy off). Fixed for the execution: cached."""
        lookup = self._factor_of
        if lookup is None:
            return 0
        factor = self._factors.get(address)
        if factor is None:
            factor = self._factors[address] = lookup(address)
        return factor

    # -- block context ------------------------------------------------------------------------------
    def get_ancestor_hash(self, block_number: int) -> bytes:
        if self._ancestor_hash is None or block_number >= self.block_number:
            return b"\x00" * 32
        if self.block_number - block_number > 256:
            return b"\x00" * 32
        return self._ancestor_hash(block_number) or b"\x00" * 32

    def get_gas_price(self, transaction: object) -> int:
        return 0

    @property
    def state_root(self) -> bytes:
        return BLANK_ROOT_HASH

    # -- results ------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every surviving change to the WorldState (call once, after a successful execution)."""
        world = self.world
        for address in self._created:
            if not world.exists(address):
                world.create_account(address)
        for address, slot in self._written_storage:
            value = self._storage.get((address, slot), _MISSING)
            if value is not _MISSING:
                world.set_storage(address, slot, value)
        # Values restored by a revert equal what the world holds, so re-writing them is harmless.
        for address in self._written_balance:
            balance = self._balance.get(address, _MISSING)
            if balance is not _MISSING:
                world.set_balance(address, balance)
        for address in self._written_code:
            code = self._code.get(address, _MISSING)
            if code is not _MISSING:
                world.set_code(address, code)
