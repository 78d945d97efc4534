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
        return tuple(x if x.__class__ is int else int.from_bytes(x, "big") for x in items)  # type: ignore[arg-type]


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


# ---- stack, memory and arithmetic opcodes working on the stack list directly ---------------------------

_MASK = (1 << 256) - 1


def _as_int(x: int | bytes) -> int:
    return x if x.__class__ is int else int.from_bytes(x, "big")  # type: ignore[arg-type]


def _make_dup(n: int) -> Callable[[ComputationAPI], None]:
    def dup(computation: ComputationAPI) -> None:
        values = computation._stack.values  # type: ignore[attr-defined]
        if len(values) < n:
            raise InsufficientStack(f"Insufficient stack items for DUP{n}")
        if len(values) > 1023:
            raise FullStack("Stack limit reached")
        values.append(values[-n])

    return dup


def _make_swap(n: int) -> Callable[[ComputationAPI], None]:
    def swap(computation: ComputationAPI) -> None:
        values = computation._stack.values  # type: ignore[attr-defined]
        if len(values) <= n:
            raise InsufficientStack(f"Insufficient stack items for SWAP{n}")
        values[-1], values[-1 - n] = values[-1 - n], values[-1]

    return swap


def pop(computation: ComputationAPI) -> None:
    values = computation._stack.values  # type: ignore[attr-defined]
    if not values:
        raise InsufficientStack("Wanted 1 stack item, had none")
    values.pop()


def _make_binary(fn: Callable[[int, int], int]) -> Callable[[ComputationAPI], None]:
    """Pops a (top) and b, pushes fn(a, b)."""

    def binary(computation: ComputationAPI) -> None:
        values = computation._stack.values  # type: ignore[attr-defined]
        if len(values) < 2:
            raise InsufficientStack(f"Wanted 2 stack items, only had {len(values)}")
        a = values.pop()
        b = values[-1]
        values[-1] = fn(_as_int(a), _as_int(b))

    return binary


def iszero(computation: ComputationAPI) -> None:
    values = computation._stack.values  # type: ignore[attr-defined]
    if not values:
        raise InsufficientStack("Wanted 1 stack item, had none")
    values[-1] = 0 if _as_int(values[-1]) else 1


def not_op(computation: ComputationAPI) -> None:
    values = computation._stack.values  # type: ignore[attr-defined]
    if not values:
        raise InsufficientStack("Wanted 1 stack item, had none")
    values[-1] = _MASK ^ _as_int(values[-1])


def mload(computation: ComputationAPI) -> None:
    values = computation._stack.values  # type: ignore[attr-defined]
    if not values:
        raise InsufficientStack("Wanted 1 stack item, had none")
    start = _as_int(values[-1])
    computation.extend_memory(start, 32)
    values[-1] = int.from_bytes(computation._memory._bytes[start : start + 32], "big")  # type: ignore[attr-defined]


def mstore(computation: ComputationAPI) -> None:
    values = computation._stack.values  # type: ignore[attr-defined]
    if len(values) < 2:
        raise InsufficientStack(f"Wanted 2 stack items, only had {len(values)}")
    start = _as_int(values.pop())
    value = values.pop()
    data = value.to_bytes(32, "big") if value.__class__ is int else value.rjust(32, b"\0")
    computation.extend_memory(start, 32)
    computation._memory._bytes[start : start + 32] = data  # type: ignore[attr-defined]


BINARY: dict[int, Callable[[ComputationAPI], None]] = {
    op.ADD: _make_binary(lambda a, b: (a + b) & _MASK),
    op.SUB: _make_binary(lambda a, b: (a - b) & _MASK),
    op.AND: _make_binary(lambda a, b: a & b),
    op.OR: _make_binary(lambda a, b: a | b),
    op.XOR: _make_binary(lambda a, b: a ^ b),
    op.EQ: _make_binary(lambda a, b: 1 if a == b else 0),
    op.LT: _make_binary(lambda a, b: 1 if a < b else 0),
    op.GT: _make_binary(lambda a, b: 1 if a > b else 0),
    op.SHL: _make_binary(lambda shift, value: (value << shift) & _MASK if shift < 256 else 0),
    op.SHR: _make_binary(lambda shift, value: value >> shift if shift < 256 else 0),
}
DUPS: dict[int, Callable[[ComputationAPI], None]] = {op.DUP1 + i: _make_dup(i + 1) for i in range(16)}
SWAPS: dict[int, Callable[[ComputationAPI], None]] = {op.SWAP1 + i: _make_swap(i + 1) for i in range(16)}
