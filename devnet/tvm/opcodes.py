"""java-tron's TVM energy table applied to py-evm's Shanghai opcode set.

Costs follow java-tron `org.tron.core.vm.EnergyCost` / `OperationRegistry` (TRON_V1_3 = Shanghai set):
- SLOAD 50; SSTORE 20 000 when a zero slot becomes non-zero, else 5 000 (clearing too); no refunds.
- BALANCE 20, EXTCODESIZE 20, EXTCODECOPY 20 (+3/word +memory), EXTCODEHASH 400, BLOCKHASH 20.
- EXP 10 + 10/exponent byte (the pre-EIP-160 price).
- MLOAD/MSTORE/MSTORE8 1 + memory (the "adjusted" table of allowHigherLimitForMaxCpuTimeOfOneTx);
  CALLDATACOPY/CODECOPY/RETURNDATACOPY have no base cost, only memory + 3/word.
- CALL 40 (+9 000 with value, +25 000 more if the callee account does not exist), CALLCODE 40 (+9 000 with
  value), DELEGATECALL/STATICCALL 40; the callee gets min(requested, all that is left) — no 63/64 rule —
  plus the 2 300 stipend with value.
- CREATE/CREATE2 32 000 (+6/word of init code for CREATE2) and the child gets all remaining energy;
  contract addresses use TRON's rules (see `Create`/`Create2` below).
- SELFDESTRUCT 0. No EIP-2929 warm/cold surcharges anywhere.
Everything else (tiers, SHA3, LOG, JUMPDEST, memory expansion) equals the EVM schedule py-evm implements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth import constants
from eth.abc import ComputationAPI, OpcodeAPI
from eth.exceptions import OutOfGas, WriteProtection
from eth.vm import mnemonics
from eth.vm import opcode_values as op
from eth.vm.forks.byzantium.opcodes import ensure_no_static
from eth.vm.forks.shanghai.opcodes import SHANGHAI_OPCODES
from eth.vm.logic import arithmetic, block, context, memory, system
from eth.vm.logic.call import CallByzantium, CallCode, DelegateCall, StaticCall
from eth.vm.logic.system import Create2, CreateByzantium, CreateOpcodeStackData
from eth.vm.opcode import Opcode, as_opcode
from eth_hash.auto import keccak
from eth_typing import Address

from devnet.tvm import fast
from devnet.tvm.fast import PUSHES, jump, jumpi

_MNEMONICS = {
    op.SLOAD: mnemonics.SLOAD,
    op.SSTORE: mnemonics.SSTORE,
    op.BALANCE: mnemonics.BALANCE,
    op.EXTCODESIZE: mnemonics.EXTCODESIZE,
    op.EXTCODECOPY: mnemonics.EXTCODECOPY,
    op.EXTCODEHASH: mnemonics.EXTCODEHASH,
    op.BLOCKHASH: mnemonics.BLOCKHASH,
    op.COINBASE: mnemonics.COINBASE,
    op.EXP: mnemonics.EXP,
    op.MLOAD: mnemonics.MLOAD,
    op.MSTORE: mnemonics.MSTORE,
    op.MSTORE8: mnemonics.MSTORE8,
    op.CALLDATACOPY: mnemonics.CALLDATACOPY,
    op.CODECOPY: mnemonics.CODECOPY,
    op.RETURNDATACOPY: mnemonics.RETURNDATACOPY,
    op.SELFDESTRUCT: mnemonics.SELFDESTRUCT,
}

SLOAD = 50
SSTORE_SET = 20_000
SSTORE_RESET = 5_000
BALANCE = 20
EXT_CODE_SIZE = 20
EXT_CODE_COPY = 20
EXT_CODE_HASH = 400
BLOCKHASH = 20
CALL = 40
VT_CALL = 9_000
NEW_ACCT_CALL = 25_000
STIPEND_CALL = 2_300
CREATE = 32_000


def sload(computation: ComputationAPI) -> None:
    slot = computation.stack_pop1_int()
    computation.stack_push_int(computation.state.get_storage(computation.msg.storage_address, slot))


def sstore(computation: ComputationAPI) -> None:
    slot, value = computation.stack_pop_ints(2)
    address = computation.msg.storage_address
    state = computation.state
    current = state.get_storage(address, slot)
    computation.consume_gas(SSTORE_SET if (not current and value) else SSTORE_RESET, mnemonics.SSTORE)
    state.set_storage(address, slot, value)


def coinbase(computation: ComputationAPI) -> None:
    # java-tron pushes the 21-byte witness address (0x41 || 20) right-aligned in the word.
    computation.stack_push_bytes(b"\x41" + computation.state.coinbase[-20:])


def _child_gas(
    computation: ComputationAPI, gas: int, extra: int, value: int, mnemonic: str
) -> tuple[int, int]:
    """(the callee's energy, 0): charges the value-transfer cost and hands the callee its energy here, so
    py-evm's own charge of the returned fee is 0. Only `extra` is the op's cost (dynamic-energy penalty)."""
    remaining = computation.get_gas_remaining()
    if remaining < extra:
        raise OutOfGas(f"Out of gas: Needed {extra} - Remaining {remaining} - Reason: {mnemonic}")
    computation.consume_gas(extra, mnemonic)
    meter: Any = computation.get_gas_meter()
    # Program.getCallEnergy: min(requested, available); no EIP-150 63/64 reservation.
    gas = min(gas, meter.gas_remaining)
    meter.hand_over(gas)
    return gas + (STIPEND_CALL if value else 0), 0


class Call(CallByzantium):
    def compute_msg_extra_gas(self, computation: ComputationAPI, gas: int, to: Address, value: int) -> int:
        if not value:
            return 0
        return VT_CALL + (0 if computation.state.account_exists(to) else NEW_ACCT_CALL)

    def compute_msg_gas(
        self, computation: ComputationAPI, gas: int, to: Address, value: int
    ) -> tuple[int, int]:
        extra = self.compute_msg_extra_gas(computation, gas, to, value)
        return _child_gas(computation, gas, extra, value, self.mnemonic)


class CallCodeTVM(CallCode):
    def compute_msg_extra_gas(self, computation: ComputationAPI, gas: int, to: Address, value: int) -> int:
        return VT_CALL if value else 0

    def compute_msg_gas(
        self, computation: ComputationAPI, gas: int, to: Address, value: int
    ) -> tuple[int, int]:
        extra = self.compute_msg_extra_gas(computation, gas, to, value)
        return _child_gas(computation, gas, extra, value, self.mnemonic)


class DelegateCallTVM(DelegateCall):
    def compute_msg_gas(
        self, computation: ComputationAPI, gas: int, to: Address, value: int
    ) -> tuple[int, int]:
        # The inherited value of a DELEGATECALL is not transferred: no stipend.
        return _child_gas(computation, gas, 0, 0, self.mnemonic)


class StaticCallTVM(StaticCall):
    def compute_msg_extra_gas(self, computation: ComputationAPI, gas: int, to: Address, value: int) -> int:
        return 0

    def compute_msg_gas(
        self, computation: ComputationAPI, gas: int, to: Address, value: int
    ) -> tuple[int, int]:
        return _child_gas(computation, gas, 0, 0, self.mnemonic)


class _HandOverCreate(Opcode):
    """py-evm's CREATE/CREATE2 steps, except that the child's energy (all that is left) is handed over rather
    than charged as the op's cost: a frame with a dynamic-energy factor pays no penalty on it."""

    def __call__(self, computation: ComputationAPI) -> None:
        if computation.msg.is_static:
            raise WriteProtection("Cannot modify state while inside of a STATICCALL context")
        data = self.get_stack_data(computation)  # type: ignore[attr-defined]
        computation.consume_gas(self.get_gas_cost(data), reason=self.mnemonic)  # type: ignore[attr-defined]
        computation.extend_memory(data.memory_start, data.memory_length)
        if computation.state.get_balance(computation.msg.storage_address) < data.endowment:
            computation.stack_push_int(0)
            computation.return_data = b""
            return
        call_data = computation.memory_read_bytes(data.memory_start, data.memory_length)
        meter: Any = computation.get_gas_meter()
        gas = meter.gas_remaining
        meter.hand_over(gas)
        address = self.generate_contract_address(data, call_data, computation)  # type: ignore[attr-defined]
        if computation.state.has_code_or_nonce(address):  # collision: the handed-over energy is lost
            computation.stack_push_int(0)
            computation.return_data = b""
            return
        child_msg = computation.prepare_child_message(
            gas=gas,
            to=constants.CREATE_CONTRACT_ADDRESS,
            value=data.endowment,
            data=b"",
            code=call_data,
            create_address=address,
        )
        self.apply_create_message(computation, child_msg)  # type: ignore[attr-defined]


class Create(_HandOverCreate, CreateByzantium):
    """CREATE: address = keccak(rootTxID || internal nonce as 8-byte BE)[12:]; child gets all energy."""

    def generate_contract_address(
        self, stack_data: CreateOpcodeStackData, call_data: bytes, computation: ComputationAPI
    ) -> Address:
        state: Any = computation.state  # a TVMState
        return Address(keccak(state.tx_id + state.internal_nonce.to_bytes(8, "big"))[12:])


class Create2TVM(_HandOverCreate, Create2):
    """CREATE2: keccak(0x41 || sender || salt || keccak(init_code))[12:] (0x41 replaces EIP-1014's 0xff)."""

    def generate_contract_address(
        self, stack_data: CreateOpcodeStackData, call_data: bytes, computation: ComputationAPI
    ) -> Address:
        salt = (stack_data.salt or 0).to_bytes(32, "big")
        return Address(keccak(b"\x41" + computation.msg.storage_address + salt + keccak(call_data))[12:])


def _gas(opcode: int, logic_fn: Callable[[ComputationAPI], None], gas_cost: int) -> OpcodeAPI:
    return as_opcode(logic_fn=logic_fn, mnemonic=_MNEMONICS[opcode], gas_cost=gas_cost)


def _build() -> dict[int, OpcodeAPI]:
    table = dict(SHANGHAI_OPCODES)
    # Same costs as py-evm's, faster logic (integer pushes, cached jump-destination analysis).
    for code, push in PUSHES.items():
        table[code] = as_opcode(
            logic_fn=push, mnemonic=f"PUSH{code - op.PUSH1 + 1}", gas_cost=constants.GAS_VERYLOW
        )
    table[op.JUMP] = as_opcode(logic_fn=jump, mnemonic=mnemonics.JUMP, gas_cost=constants.GAS_MID)
    table[op.JUMPI] = as_opcode(logic_fn=jumpi, mnemonic=mnemonics.JUMPI, gas_cost=constants.GAS_HIGH)
    for group in (fast.BINARY, fast.DUPS, fast.SWAPS):
        for code, fn in group.items():
            table[code] = as_opcode(
                logic_fn=fn, mnemonic=SHANGHAI_OPCODES[code].mnemonic, gas_cost=constants.GAS_VERYLOW
            )
    table[op.ISZERO] = as_opcode(
        logic_fn=fast.iszero, mnemonic=mnemonics.ISZERO, gas_cost=constants.GAS_VERYLOW
    )
    table[op.NOT] = as_opcode(logic_fn=fast.not_op, mnemonic=mnemonics.NOT, gas_cost=constants.GAS_VERYLOW)
    table[op.POP] = as_opcode(logic_fn=fast.pop, mnemonic=mnemonics.POP, gas_cost=constants.GAS_BASE)
    table.update(
        {
            op.SLOAD: _gas(op.SLOAD, sload, SLOAD),
            op.SSTORE: _gas(op.SSTORE, ensure_no_static(sstore), 0),
            op.BALANCE: _gas(op.BALANCE, context.balance, BALANCE),
            op.EXTCODESIZE: _gas(op.EXTCODESIZE, context.extcodesize, EXT_CODE_SIZE),
            op.EXTCODECOPY: _gas(op.EXTCODECOPY, context.extcodecopy, EXT_CODE_COPY),
            op.EXTCODEHASH: _gas(op.EXTCODEHASH, context.extcodehash, EXT_CODE_HASH),
            op.BLOCKHASH: _gas(op.BLOCKHASH, block.blockhash, BLOCKHASH),
            op.COINBASE: _gas(op.COINBASE, coinbase, constants.GAS_BASE),
            op.EXP: _gas(op.EXP, arithmetic.exp(gas_per_byte=10), 10),
            op.MLOAD: _gas(op.MLOAD, fast.mload, 1),
            op.MSTORE: _gas(op.MSTORE, fast.mstore, 1),
            op.MSTORE8: _gas(op.MSTORE8, memory.mstore8, 1),
            op.CALLDATACOPY: _gas(op.CALLDATACOPY, context.calldatacopy, 0),
            op.CODECOPY: _gas(op.CODECOPY, context.codecopy, 0),
            op.RETURNDATACOPY: _gas(op.RETURNDATACOPY, context.returndatacopy, 0),
            op.SELFDESTRUCT: _gas(op.SELFDESTRUCT, ensure_no_static(system.selfdestruct), 0),
            op.CALL: Call.configure(__name__="opcode:CALL", mnemonic=mnemonics.CALL, gas_cost=CALL)(),
            op.CALLCODE: CallCodeTVM.configure(
                __name__="opcode:CALLCODE", mnemonic=mnemonics.CALLCODE, gas_cost=CALL
            )(),
            op.DELEGATECALL: DelegateCallTVM.configure(
                __name__="opcode:DELEGATECALL", mnemonic=mnemonics.DELEGATECALL, gas_cost=CALL
            )(),
            op.STATICCALL: StaticCallTVM.configure(
                __name__="opcode:STATICCALL", mnemonic=mnemonics.STATICCALL, gas_cost=CALL
            )(),
            op.CREATE: Create.configure(
                __name__="opcode:CREATE", mnemonic=mnemonics.CREATE, gas_cost=CREATE
            )(),
            op.CREATE2: Create2TVM.configure(
                __name__="opcode:CREATE2", mnemonic=mnemonics.CREATE2, gas_cost=CREATE
            )(),
        }
    )
    return table


TVM_OPCODES: dict[int, OpcodeAPI] = _build()
