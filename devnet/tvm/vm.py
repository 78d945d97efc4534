"""`TVM`: executes TriggerSmartContract calls and CreateSmartContract init code against a WorldState."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from eth.abc import StateAPI
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.exceptions import (
    FullStack,
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfGas,
    Revert,
    StackDepthLimit,
    VMError,
    WriteProtection,
)
from eth.vm.message import Message
from eth.vm.transaction_context import BaseTransactionContext
from eth_typing import Address

from devnet.tvm.computation import (
    CodeDepositOutOfEnergy,
    InvalidCode,
    OutOfEnergy,
    OutOfMemory,
    TVMComputation,
    opcode_name,
)
from devnet.tvm.state import TVMState
from devnet.tvm.world import WorldState

FactorLookup = Callable[[bytes], int]  # 20-byte contract address -> dynamic-energy factor (scale 10 000)
_MS_THRESHOLD = 100_000_000_000  # timestamps at or above this are milliseconds (year 5138 in seconds)


class TVMValidationError(ValueError):
    """The call cannot start (java-tron rejects it before the VM runs: CONTRACT_VALIDATE_ERROR)."""


@dataclass(frozen=True)
class BlockContext:
    """Block the execution belongs to (for constant calls: the head block).

    timestamp: block time in milliseconds as in TRON block headers (values below 1e11 are taken as seconds);
    the TIMESTAMP opcode returns seconds. coinbase: the witness address, 20 or 21 bytes. chain_id: what
    CHAINID returns (int of the last 4 bytes of the genesis block id). energy_fee: BASEFEE (getEnergyFee).
    block_hash: optional number -> 32-byte block id, for BLOCKHASH over the last 256 blocks.
    """

    number: int
    timestamp: int
    coinbase: bytes
    chain_id: int
    energy_fee: int = 100
    block_hash: Callable[[int], bytes] | None = None

    @property
    def timestamp_seconds(self) -> int:
        return self.timestamp // 1000 if self.timestamp >= _MS_THRESHOLD else self.timestamp


@dataclass(frozen=True)
class Log:
    address: bytes  # 20 bytes, as java-tron's TransactionInfo log (no 0x41)
    topics: list[bytes]  # 32 bytes each
    data: bytes


@dataclass(frozen=True)
class ExecResult:
    """result: contractResult enum name (SUCCESS, REVERT, OUT_OF_ENERGY, BAD_JUMP_DESTINATION, ...).

    energy_used: energy the execution consumed (the whole energy_limit for failures other than REVERT).
    return_data: call output / revert data (Error(string) ABI) / runtime code of a created contract.
    message: java-tron's resMessage text, "" on success.
    energy_penalty: the dynamic-energy part of energy_used: penalties charged per opcode in the frames of
    contracts with a factor (energy_factor lookup), internal calls included (receipt energy_penalty_total).
    """

    result: str
    energy_used: int
    return_data: bytes = b""
    logs: list[Log] = field(default_factory=list)
    message: str = ""
    energy_penalty: int = 0

    @property
    def success(self) -> bool:
        return self.result == "SUCCESS"


def _addr20(a: bytes) -> Address:
    if len(a) == 21 and a[0] == 0x41:
        return Address(a[1:])
    if len(a) != 20:
        raise ValueError(f"address must be 20 bytes or 0x41 + 20 bytes, got {len(a)} bytes")
    return Address(a)


def _failure(err: VMError, computation: TVMComputation) -> tuple[str, str]:
    """Map a py-evm error of the top-level frame to (contractResult name, java-tron message)."""
    if isinstance(err, Revert):
        return "REVERT", "REVERT opcode executed"
    if isinstance(err, OutOfEnergy):
        name = computation._current_mnemonic()
        penalty = "" if err.penalty is None else f"penaltyEnergy[{err.penalty}], "
        return "OUT_OF_ENERGY", (
            f"Not enough energy for '{name}' operation executing: curInvokeEnergyLimit[{err.invoke_limit}], "
            f"curOpEnergy[{err.op_energy}], {penalty}usedEnergy[{err.used}]"
        )
    if isinstance(err, CodeDepositOutOfEnergy):
        return "OUT_OF_ENERGY", str(err)
    if isinstance(err, OutOfGas):
        name = computation._current_mnemonic()
        return "OUT_OF_ENERGY", f"Not enough energy for '{name}' operation executing: {err}"
    if isinstance(err, OutOfMemory):
        return "OUT_OF_MEMORY", str(err)
    if isinstance(err, InvalidJumpDestination):
        dest = getattr(err, "dest", computation.code.program_counter - 1)
        return "BAD_JUMP_DESTINATION", f"Operation with pc isn't 'JUMPDEST': PC[{dest}];"
    if isinstance(err, InvalidInstruction):
        pc = max(computation.code.program_counter - 1, 0)
        byte = computation.code[pc] if pc < len(computation.code) else 0
        return "ILLEGAL_OPERATION", f"Invalid operation code: opCode[{byte:02x}];"
    if isinstance(err, InsufficientStack):
        return "STACK_TOO_SMALL", str(err)
    if isinstance(err, FullStack | StackDepthLimit):
        return "STACK_TOO_LARGE", str(err)
    if isinstance(err, InvalidCode):
        return "INVALID_CODE", str(err)
    if isinstance(err, WriteProtection):
        return "UNKNOWN", "Attempt to call a state modifying opcode inside STATICCALL"
    return "UNKNOWN", str(err) or type(err).__name__


def _logs(computation: TVMComputation) -> list[Log]:
    return [
        Log(address, [t.to_bytes(32, "big") for t in topics], data)
        for address, topics, data in computation.get_log_entries()
    ]


class TVM:
    """Stateless executor; one instance can serve every transaction of the node."""

    computation_class = TVMComputation

    def _state(
        self, world: WorldState, block: BlockContext, tx_id: bytes, energy_factor: FactorLookup | None
    ) -> TVMState:
        return TVMState(
            world,
            tx_id=tx_id,
            coinbase=_addr20(block.coinbase),
            timestamp=block.timestamp_seconds,
            block_number=block.number,
            chain_id=block.chain_id,
            base_fee=block.energy_fee,
            ancestor_hash=block.block_hash,
            energy_factor=energy_factor,
        )

    def call(
        self,
        world: WorldState,
        block: BlockContext,
        *,
        origin: bytes,
        caller: bytes,
        contract: bytes,
        value: int,
        data: bytes,
        energy_limit: int,
        tx_id: bytes,
        static: bool = False,
        energy_factor: FactorLookup | None = None,
    ) -> ExecResult:
        """Run `contract`'s code with `data` (TriggerSmartContract, or a constant call when static=True).

        value (sun) moves from caller to contract as part of the execution. static=True executes exactly
        like a transaction (state-changing functions included, as triggerconstantcontract does) but never
        writes to `world`. energy_factor: 20-byte address -> the contract's dynamic-energy factor (scale
        10 000); every frame of a contract with a factor pays it per opcode. None: dynamic energy off.
        """
        state = self._state(world, block, tx_id, energy_factor)
        caller20, contract20 = _addr20(caller), _addr20(contract)
        if value and state.get_balance(caller20) < value:
            raise TVMValidationError("Validate InternalTransfer error, balance is not sufficient.")
        message = Message(
            gas=energy_limit,
            to=contract20,
            sender=caller20,
            value=value,
            data=data,
            code=state.get_code(contract20),
        )
        return self._run(state, message, _addr20(origin), energy_limit, create=False, commit=not static)

    def create(
        self,
        world: WorldState,
        block: BlockContext,
        *,
        origin: bytes,
        address: bytes,
        init_code: bytes,
        value: int,
        energy_limit: int,
        tx_id: bytes,
        energy_factor: FactorLookup | None = None,
    ) -> ExecResult:
        """Run CreateSmartContract init code at `address` (41 || keccak(txID || owner)[12:], chain-computed).

        On success the runtime code is stored with world.set_code(address) and returned as return_data;
        value moves from origin to the new contract. energy_factor: as for `call` (the init code itself has
        none; contracts it calls may).
        """
        state = self._state(world, block, tx_id, energy_factor)
        origin20, address20 = _addr20(origin), _addr20(address)
        if value and state.get_balance(origin20) < value:
            raise TVMValidationError("Validate InternalTransfer error, balance is not sufficient.")
        if state.get_code(address20):
            raise TVMValidationError(
                f"Trying to create a contract with existing contract address: {address.hex()}"
            )
        message = Message(
            gas=energy_limit,
            to=CREATE_CONTRACT_ADDRESS,
            sender=origin20,
            value=value,
            data=b"",
            code=init_code,
            create_address=address20,
        )
        state.set_balance(address20, state.get_balance(address20))  # the contract account exists from now on
        return self._run(state, message, origin20, energy_limit, create=True, commit=True)

    def _run(
        self,
        state: TVMState,
        message: Message,
        origin: bytes,
        energy_limit: int,
        *,
        create: bool,
        commit: bool,
    ) -> ExecResult:
        tx_context = BaseTransactionContext(gas_price=0, origin=Address(origin))
        cls = self.computation_class
        evm_state = cast(StateAPI, cast(Any, state))  # TVMState implements the StateAPI subset used
        if create:
            computation = cls.apply_create_message(evm_state, message, tx_context)
        else:
            computation = cls.apply_message(evm_state, message, tx_context)
        if not isinstance(computation, TVMComputation):
            raise TypeError(f"{cls.__name__} returned a {type(computation).__name__}")
        used = energy_limit - computation.get_gas_meter().gas_remaining
        penalty = state.energy_penalty
        if computation.is_success:
            for address in computation.get_accounts_for_deletion():
                state.delete_account(address)
            if commit:
                state.flush()
            output = state.get_code(message.storage_address) if create else computation.output
            return ExecResult("SUCCESS", used, output, _logs(computation), "", penalty)
        result, text = _failure(computation.error, computation)
        if result == "REVERT":
            return ExecResult(result, used, computation.output, [], text, penalty)
        return ExecResult(result, energy_limit, b"", [], text, penalty)


__all__ = ["TVM", "BlockContext", "ExecResult", "Log", "TVMValidationError", "opcode_name"]
