"""py-evm based TVM: executes calls/creates against a `WorldState` with java-tron's energy table.

Public interface (devnet/DESIGN.md): `TVM.call(...)`, `TVM.create(...)` -> `ExecResult`; `BlockContext`;
`Log`; `WorldState` (structural protocol the chain implements); `DictWorldState` (in-memory, for tests).
Addresses given to the TVM may be 20 bytes or 0x41 + 20; WorldState always sees the 20-byte form.
"""

from devnet.tvm.vm import TVM, BlockContext, ExecResult, Log, TVMValidationError
from devnet.tvm.world import DictWorldState, WorldState

__all__ = ["TVM", "BlockContext", "DictWorldState", "ExecResult", "Log", "TVMValidationError", "WorldState"]
