"""The world state the TVM executes against, as the chain provides it.

Addresses here are the 20-byte TVM form (no 0x41 prefix); slots and values are ints (uint256).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@runtime_checkable
class WorldState(Protocol):
    """Structural interface the chain's versioned state implements (devnet/DESIGN.md, tvm/)."""

    def balance(self, a: bytes) -> int: ...

    def set_balance(self, a: bytes, value: int) -> None: ...

    def code(self, a: bytes) -> bytes: ...

    def set_code(self, a: bytes, code: bytes) -> None: ...

    def storage(self, a: bytes, slot: int) -> int: ...

    def set_storage(self, a: bytes, slot: int, value: int) -> None: ...

    def exists(self, a: bytes) -> bool: ...

    def create_account(self, a: bytes) -> None: ...


@dataclass
class DictWorldState:
    """A plain in-memory WorldState (tests, benchmarks, constant-call scratch state)."""

    balances: dict[bytes, int] = field(default_factory=dict)
    codes: dict[bytes, bytes] = field(default_factory=dict)
    storages: dict[tuple[bytes, int], int] = field(default_factory=dict)
    accounts: set[bytes] = field(default_factory=set)

    def balance(self, a: bytes) -> int:
        return self.balances.get(a, 0)

    def set_balance(self, a: bytes, value: int) -> None:
        self.accounts.add(a)
        self.balances[a] = value

    def code(self, a: bytes) -> bytes:
        return self.codes.get(a, b"")

    def set_code(self, a: bytes, code: bytes) -> None:
        self.accounts.add(a)
        self.codes[a] = code

    def storage(self, a: bytes, slot: int) -> int:
        return self.storages.get((a, slot), 0)

    def set_storage(self, a: bytes, slot: int, value: int) -> None:
        if value:
            self.storages[(a, slot)] = value
        else:
            self.storages.pop((a, slot), None)

    def exists(self, a: bytes) -> bool:
        return a in self.accounts

    def create_account(self, a: bytes) -> None:
        self.accounts.add(a)
