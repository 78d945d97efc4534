"""py-evm computation with TVM semantics: energy table, no refunds, TRON contract creation rules."""

from __future__ import annotations

from typing import Any

from eth._utils.address import force_bytes_to_address
from eth.abc import ComputationAPI, MessageAPI, StateAPI, TransactionContextAPI
from eth.exceptions import Halt, InsufficientFunds, OutOfGas, VMError
from eth.vm.forks.shanghai.computation import ShanghaiComputation
from eth.vm.logic.invalid import InvalidOpcode
from eth.vm.memory import Memory

from devnet.tvm.fast import FastStack, TVMCodeStream, dispatch_table
from devnet.tvm.opcodes import TVM_OPCODES

MEM_LIMIT = 3 * 1024 * 1024  # EnergyCost.MEM_LIMIT
MAX_DEPTH = 64  # Program.MAX_DEPTH: a frame at depth 64 can make no further call/create
CREATE_DATA = 200  # energy per byte of deployed code
FACTOR_DECIMAL = 10_000  # DYNAMIC_ENERGY_FACTOR_DECIMAL: energy_factor 34 000 = 4.4 times an opcode's energy


class OutOfEnergy(OutOfGas):
    """OutOfGas that remembers the numbers java-tron puts into its message (penalty: frames with a factor)."""

    def __init__(self, op_energy: int, invoke_limit: int, used: int, penalty: int | None = None) -> None:
        super().__init__(f"Out of energy: needed {op_energy}, limit {invoke_limit}, used {used}")
        self.op_energy = op_energy
        self.invoke_limit = invoke_limit
        self.used = used
        self.penalty = penalty


class CodeDepositOutOfEnergy(OutOfGas):
    """Not enough energy left to store the created contract's code (200 energy per byte)."""

    def __init__(self, need: int, left: int) -> None:
        # java-tron VMActuator: notEnoughSpendEnergy("save just created contract code", need, left)
        super().__init__(
            f"Not enough energy for 'save just created contract code' executing: needEnergy[{need}], "
            f"leftEnergy[{left}];"
        )


class OutOfMemory(VMError):
    """Memory beyond TVM's 3 MiB limit."""


class CallDepthExceeded(VMError):
    """A call/create beyond MAX_DEPTH: java-tron pushes 0 and refunds the energy (no exception)."""

    burns_gas = False
    erases_return_data = True


class InvalidCode(VMError):
    """Deployed code starting with 0xEF (java-tron: INVALID_CODE since allowTvmLondon)."""


class EnergyMeter:
    """Minimal gas meter: TVM has no refunds, and this runs for every opcode."""

    __slots__ = ("gas_refunded", "gas_remaining", "start_gas")

    def __init__(self, start_gas: int) -> None:
        self.start_gas = start_gas
        self.gas_remaining = start_gas
        self.gas_refunded = 0

    def consume_gas(self, amount: int, reason: str) -> None:
        if amount > self.gas_remaining:
            raise OutOfEnergy(amount, self.start_gas, self.start_gas - self.gas_remaining)
        self.gas_remaining -= amount

    def return_gas(self, amount: int) -> None:
        self.gas_remaining += amount

    def refund_gas(self, amount: int) -> None:
        pass  # no SSTORE/SELFDESTRUCT refunds in the TVM

    def hand_over(self, amount: int) -> None:
        """Energy given to a child frame (callers check it is there): not an opcode's cost, so no penalty."""
        self.gas_remaining -= amount


class PenaltyMeter(EnergyMeter):
    """Meter of a frame whose contract has a dynamic-energy factor (TIP-491, java-tron VM.play): every opcode
    costs its energy + energy * factor // 10 000. The floor is taken once per opcode, so `op_energy` sums
    the current opcode's parts (static, memory, SSTORE, ...); the interpreter loop resets it per opcode."""

    __slots__ = ("factor", "op_energy", "penalty")

    def __init__(self, start_gas: int, factor: int) -> None:
        super().__init__(start_gas)
        self.factor = factor
        self.op_energy = 0
        self.penalty = 0  # penalties spent by this frame (its share of energy_penalty_total)

    def consume_gas(self, amount: int, reason: str) -> None:
        before = self.op_energy
        self.op_energy = after = before + amount
        earlier = before * self.factor // FACTOR_DECIMAL  # penalty already paid on this opcode's parts
        penalty = after * self.factor // FACTOR_DECIMAL - earlier
        if amount + penalty > self.gas_remaining:
            # java-tron prices the whole opcode before spending any of it: report and count it that way.
            self.penalty -= earlier
            used = self.start_gas - self.gas_remaining - before - earlier
            raise OutOfEnergy(after, self.start_gas, used, earlier + penalty)
        self.gas_remaining -= amount + penalty
        self.penalty += penalty


_PRECOMPILES: dict[Any, Any] = {
    addr: fn
    for addr, fn in ShanghaiComputation.get_precompiles().items()
    # 0x09 is BatchValidateSign in the TVM, not blake2f; it is left unimplemented (empty account).
    if addr != force_bytes_to_address(b"\x09")
}


class TVMComputation(ShanghaiComputation):
    opcodes = TVM_OPCODES
    _precompiles = _PRECOMPILES

    def __init__(
        self, state: StateAPI, message: MessageAPI, transaction_context: TransactionContextAPI
    ) -> None:
        # Skips Shanghai's warm-coinbase bookkeeping and the debug-logging set-up of the base class.
        self.state = state
        self.msg = message
        self.transaction_context = transaction_context
        self.code = TVMCodeStream(message.code)
        self._gas_meter = EnergyMeter(message.gas)  # type: ignore[assignment]
        self.children = []
        self.accounts_to_delete = []
        self.beneficiaries = []
        self._stack = FastStack()
        self._memory = Memory()
        self._log_entries = []
        self.data_floor_cost = 0

    def extend_memory(self, start_position: int, size: int) -> None:
        if not size:
            return
        end = start_position + size
        if end > MEM_LIMIT:
            raise OutOfMemory(f"Out of Memory when '{self._current_mnemonic()}' operation executing")
        current = len(self._memory)
        if end <= current:
            return
        new_words = (end + 31) // 32
        old_words = current // 32
        cost = (new_words * 3 + new_words * new_words // 512) - (old_words * 3 + old_words * old_words // 512)
        self._gas_meter.consume_gas(cost, "memory")
        self._memory.extend(start_position, size)

    def _current_mnemonic(self) -> str:
        return opcode_name(self.code[max(self.code.program_counter - 1, 0)]) if len(self.code) else "STOP"

    @classmethod
    def consume_initcode_gas_cost(cls, computation: ComputationAPI) -> None:
        pass  # no EIP-3860 initcode charge in the TVM

    @classmethod
    def validate_create_message(cls, message: MessageAPI) -> None:
        pass  # no EIP-3860 initcode size limit in the TVM

    @classmethod
    def apply_message(
        cls,
        state: StateAPI,
        message: MessageAPI,
        transaction_context: TransactionContextAPI,
        parent_computation: ComputationAPI | None = None,
    ) -> ComputationAPI:
        if message.depth > MAX_DEPTH:
            refused = cls(state, message, transaction_context)
            refused._error = CallDepthExceeded(f"call depth {message.depth} exceeds {MAX_DEPTH}")
            return refused
        snapshot = state.snapshot()
        if message.depth:
            # Every internal call/create is an internal transaction: it bumps the root tx's nonce.
            state.internal_nonce += 1  # type: ignore[attr-defined]
        if message.should_transfer_value and message.value:
            sender_balance = state.get_balance(message.sender)
            if sender_balance < message.value:
                raise InsufficientFunds(f"Insufficient funds: {sender_balance} < {message.value}")
            if message.sender != message.storage_address:
                state.delta_balance(message.sender, -message.value)
                state.delta_balance(message.storage_address, message.value)
        computation = cls.apply_computation(state, message, transaction_context)
        if computation.is_error:
            state.revert(snapshot)
        return computation

    @classmethod
    def apply_create_message(
        cls,
        state: StateAPI,
        message: MessageAPI,
        transaction_context: TransactionContextAPI,
        parent_computation: ComputationAPI | None = None,
    ) -> ComputationAPI:
        snapshot = state.snapshot()
        computation = cls.apply_message(state, message, transaction_context)
        if computation.is_error:
            return computation
        code = computation.output
        try:
            if code[:1] == b"\xef":
                raise InvalidCode("invalid code: must not begin with 0xef")
            deposit = len(code) * CREATE_DATA
            meter = computation.get_gas_meter()
            if deposit > meter.gas_remaining:
                raise CodeDepositOutOfEnergy(deposit, meter.gas_remaining)
            meter.gas_remaining -= deposit
        except VMError as err:
            computation.error = err
            computation._gas_meter.gas_remaining = 0
            state.revert(snapshot)
            return computation
        state.set_code(message.storage_address, code)
        return computation

    @classmethod
    def apply_computation(
        cls,
        state: StateAPI,
        message: MessageAPI,
        transaction_context: TransactionContextAPI,
        parent_computation: ComputationAPI | None = None,
    ) -> ComputationAPI:
        computation = cls(state, message, transaction_context)
        precompile = _PRECOMPILES.get(message.code_address)
        try:
            if precompile is not None:
                if not message.is_delegation:
                    precompile(computation)
                return computation
            factor = state.energy_factor(message.storage_address)  # type: ignore[attr-defined]
            if factor > 0:
                _run_with_penalty(computation, factor)
                return computation
            table = _DISPATCH
            meter = computation._gas_meter
            code: Any = computation.code
            raw = code._raw_code_bytes
            size = len(raw)
            try:
                while True:
                    pc = code.program_counter
                    if pc >= size:
                        break  # running off the end is STOP
                    opcode = raw[pc]
                    code.program_counter = pc + 1
                    cost, fn = table[opcode]
                    if cost >= 0:
                        # Inlined EnergyMeter.consume_gas for opcodes with a static cost.
                        if cost > meter.gas_remaining:
                            raise OutOfEnergy(cost, meter.start_gas, meter.start_gas - meter.gas_remaining)
                        meter.gas_remaining -= cost
                        fn(computation)
                    elif fn is not None:
                        fn(computation=computation)
                    else:
                        InvalidOpcode(opcode)(computation=computation)
            except Halt:
                pass
        except VMError as err:
            computation._error = err
            if err.burns_gas:
                computation._gas_meter.gas_remaining = 0
            if err.erases_return_data:
                computation.return_data = b""
        return computation


_DISPATCH = dispatch_table(TVM_OPCODES)
_PENALTY_DISPATCH: dict[int, list[tuple[int, int, Any]]] = {}


def _penalty_dispatch(factor: int) -> list[tuple[int, int, Any]]:
    """_DISPATCH with each static cost's penalty: (static energy, penalty, logic_fn) or (-1, 0, opcode)."""
    table = _PENALTY_DISPATCH.get(factor)
    if table is None:
        table = [(cost, cost * factor // FACTOR_DECIMAL if cost > 0 else 0, fn) for cost, fn in _DISPATCH]
        if len(_PENALTY_DISPATCH) >= 64:
            _PENALTY_DISPATCH.clear()
        _PENALTY_DISPATCH[factor] = table
    return table


def _run_with_penalty(computation: TVMComputation, factor: int) -> None:
    """apply_computation's loop for a contract with a dynamic-energy factor (kept apart: factor 0 frames run
    the plain loop untouched). Child frames are charged by their own contract's factor, not this one's."""
    meter = PenaltyMeter(computation.msg.gas, factor)
    computation._gas_meter = meter  # type: ignore[assignment]
    table = _penalty_dispatch(factor)
    code: Any = computation.code
    raw = code._raw_code_bytes
    size = len(raw)
    try:
        while True:
            pc = code.program_counter
            if pc >= size:
                break
            opcode = raw[pc]
            code.program_counter = pc + 1
            cost, penalty, fn = table[opcode]
            if cost >= 0:
                if cost + penalty > meter.gas_remaining:
                    used = meter.start_gas - meter.gas_remaining
                    raise OutOfEnergy(cost, meter.start_gas, used, penalty)
                meter.gas_remaining -= cost + penalty
                meter.penalty += penalty
                meter.op_energy = cost  # dynamic parts of this opcode (memory) add to it
                fn(computation)
            else:
                meter.op_energy = 0
                if fn is not None:
                    fn(computation=computation)
                else:
                    InvalidOpcode(opcode)(computation=computation)
    except Halt:
        pass
    finally:
        # java-tron merges every child's penalty into the receipt, failed frames included.
        computation.state.energy_penalty += meter.penalty  # type: ignore[attr-defined]


def opcode_name(opcode: int) -> str:
    fn: Any = TVM_OPCODES.get(opcode)
    if fn is None:
        return f"0x{opcode:02x}"
    name = getattr(fn, "mnemonic", None) or getattr(getattr(fn, "__wrapped__", None), "mnemonic", None)
    return str(name or "UNKNOWN")
