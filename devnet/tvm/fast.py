"""Hot-path replacements for py-evm pieces (same semantics, less per-opcode overhead).

A token transfer runs ~330 opcodes; py-evm spends most of its time in per-opcode plumbing (gas meter method
chains, stack type validation, jump-destination analysis redone for every message). These keep py-evm's
data model (Stack values are int or bytes, CodeStream.program_counter) but cut that overhead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth.abc import ComputationAPI
from eth.exceptions import FullStack, InsufficientStack, InvalidJumpDestination
from eth.vm import opcode_values as op
from eth.vm.code_stream import CodeStream
from eth.vm.stack import Stack

_JUMPDEST_CACHE: dict[bytes, frozenset[int]] = {}
_JUMPDEST_CACHE_MAX = 1024


def jumpdests(code: bytes) -> frozenset[int]:
    """Positions of JUMPDEST opcodes that are not PUSH data (cached per code)."""
    found = _JUMPDEST_CACHE.get(code)
    if found is None:
        positions = []
        i, n = 0, len(code)
        while i < n:
            byte = code[i]
            if byte == op.JUMPDEST:
                positions.append(i)
            elif op.PUSH1 <= byte <= op.PUSH32:
                i += byte - op.PUSH1 + 1
            i += 1
        found = frozenset(positions)
        if len(_JUMPDEST_CACHE) >= _JUMPDEST_CACHE_MAX:
            _JUMPDEST_CACHE.clear()
        _JUMPDEST_CACHE[code] = found
    return found


class TVMCodeStream(CodeStream):
    __slots__ = ["jumpdests"]

    def __init__(self, code_bytes: bytes) -> None:
        self.program_counter = 0
        self._raw_code_bytes = code_bytes
        self._length_cache = len(code_bytes)
        self.invalid_positions = set()
        self.valid_positions = set()
        self.jumpdests = jumpdests(code_bytes)

    def is_valid_opcode(self, position: int) -> bool:
        # Only asked by jumps; any valid JUMPDEST position is an opcode position.
        return position in self.jumpdests or super().is_valid_opcode(position)


class FastStack(Stack):
    """py-evm Stack without per-push type validation (every pusher here pushes int < 2**256 or bytes<=32)."""

    def push_int(self, value: int) -> None:
        if len(self.values) > 1023:
            raise FullStack("Stack limit reached")
        self._append(value)

    push_bytes = push_int  # type: ignore[assignment]

    def pop_ints(self, num_items: int) -> tuple[int, ...]:
        values = self.values
        if num_items > len(values):
            raise InsufficientStack(f"Wanted {num_items} stack items, only had {len(values)}")
        items = values[-num_items:]
        del values[-num_items:]
        items.reverse()
        return tuple(x if x.__class__ is int else int.from_bytes(x, "big") for x in items)


class BadJumpDestination(InvalidJumpDestination):
    def __init__(self, dest: int) -> None:
        super().__init__(f"Invalid Jump Destination {dest}")
        # java-tron reports the target, or -1 when it does not fit 4 bytes (Program.verifyJumpDest).
        self.dest = dest if dest.bit_length() <= 31 else -1


def jump(computation: ComputationAPI) -> None:
    dest = computation.stack_pop1_int()
    code = computation.code
    if dest not in code.jumpdests:  # type: ignore[attr-defined]
        raise BadJumpDestination(dest)
    code.program_counter = dest


def jumpi(computation: ComputationAPI) -> None:
    dest, condition = computation.stack_pop_ints(2)
    if condition:
        code = computation.code
        if dest not in code.jumpdests:  # type: ignore[attr-defined]
            raise BadJumpDestination(dest)
        code.program_counter = dest


def _make_push(size: int) -> Callable[[ComputationAPI], None]:
    def push(computation: ComputationAPI) -> None:
        code = computation.code
        pc = code.program_counter
        raw = code._raw_code_bytes[pc : pc + size]  # type: ignore[attr-defined]
        code.program_counter = pc + size
        value = int.from_bytes(raw, "big")
        if len(raw) != size:  # PUSH data running past the end of code is zero-padded on the right
            value <<= 8 * (size - len(raw))
        computation.stack_push_int(value)

    push.__name__ = f"push{size}"
    return push


PUSHES: dict[int, Callable[[ComputationAPI], None]] = {op.PUSH1 + i: _make_push(i + 1) for i in range(32)}


def dispatch_table(opcodes: dict[int, Any]) -> list[tuple[int, Any]]:
    """256 entries of (static gas, logic_fn) for simple opcodes, or (-1, opcode object) for the rest."""
    table: list[tuple[int, Any]] = []
    for code in range(256):
        fn = opcodes.get(code)
        if fn is None:
            table.append((-1, None))
        elif hasattr(fn, "logic_fn") and type(fn).__name__ == "_FastOpcode":
            table.append((fn.gas_cost, fn.logic_fn))
        else:
            table.append((-1, fn))
    return table
