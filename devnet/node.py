"""`Node`: the one facade the HTTP layer (api.py, control.py, __main__.py) calls.

All addresses are 21 bytes (0x41 + 20), all ids 32 bytes, all amounts int sun. Protobuf objects are the
`devnet.pb` classes. Methods taking `solid=True` answer against the solidified block / its state
(walletsolidity/*); otherwise against the head block and its state (pending, unmined transactions are not
visible). Errors that java-tron reports as CONTRACT_VALIDATE_ERROR raise `ContractValidateError`, VM/execution
failures of estimate_energy raise `ContractExeError`; both carry java-tron's message text in `.message`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from devnet.tvm import ExecResult  # noqa: F401

    from devnet.pb import Account, Block, SmartContract, Transaction, TransactionInfo, Witness  # noqa: F401


class ContractValidateError(Exception):
    """java-tron ContractValidateException: `.message` is the actuator's text (no prefix)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ContractExeError(Exception):
    """java-tron ContractExeException / VM failure: `.message` e.g. "REVERT opcode executed"."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class BroadcastResult:
    """Result of `Node.broadcast`. code is the GrpcAPI.Return.response_code name ('SUCCESS', 'SIGERROR',
    'CONTRACT_VALIDATE_ERROR', 'CONTRACT_EXE_ERROR', 'BANDWITH_ERROR', 'DUP_TRANSACTION_ERROR', 'TAPOS_ERROR',
    'TOO_BIG_TRANSACTION_ERROR', 'TRANSACTION_EXPIRATION_ERROR', 'SERVER_BUSY', 'OTHER_ERROR'); message is
    the full java-tron text ("Validate signature error: sig error"), "" on success; txid: the node's own."""

    code: str
    message: str
    txid: bytes

    @property
    def ok(self) -> bool:
        return self.code == "SUCCESS"


@dataclass
class NodeConfig:
    """How to open a node. `data_dir` None = in-memory only. `genesis_file`: JSON overriding accounts,
    balances and params (see genesis.py). `solidity_lag`: solid = head - lag. `block_time_ms`: slot length.
    `params`: extra chain-parameter overrides (names as getchainparameters or devnet-only names)."""

    data_dir: Path | None = None
    genesis_file: Path | None = None
    solidity_lag: int = 18
    block_time_ms: int = 3000
    params: dict[str, int] = field(default_factory=dict)
    max_pending: int = 20000


@dataclass(frozen=True)
class GenesisAccount:
    """A funded genesis account; `private_key` is 32 bytes (printed to the accounts file by __main__)."""

    address: bytes
    private_key: bytes
    is_witness: bool = False


class Node:
    """Facade over chain.Chain. Thread model: one asyncio loop; every method is synchronous and quick
    (broadcast validates and executes one tx; produce_block only commits what broadcast prepared)."""

    # ---- lifecycle -------------------------------------------------------------------------------
    @classmethod
    def open(cls, config: NodeConfig) -> Node:
        """Create (genesis) or reopen (data_dir holds a chain) a node."""
        raise NotImplementedError

    def close(self) -> None:
        """Flush and close persistence (no-op in memory)."""
        raise NotImplementedError

    @property
    def params(self) -> Any:
        """The live `devnet.params.Params` (read-only use; change via set_params)."""
        raise NotImplementedError

    def chain_parameters(self) -> list[tuple[str, int]]:
        """getchainparameters: [(key, value), ...] in java-tron's order (zero values included here; JSON
        printing omits `value` when 0)."""
        raise NotImplementedError

    def set_params(self, values: dict[str, int]) -> None:
        """Change chain parameters at runtime (getchainparameters names or devnet names, see params.py).
        Raises KeyError for an unknown name, ValueError for a bad value."""
        raise NotImplementedError

    def genesis_accounts(self) -> list[GenesisAccount]:
        """Funded genesis accounts with keys (for the accounts file); the witness is included."""
        raise NotImplementedError

    def token_addresses(self) -> dict[str, bytes]:
        """{"USDT": 41a614f8…} — contracts deployed at genesis."""
        raise NotImplementedError

    @property
    def chain_id(self) -> int:
        """CHAINID: last 4 bytes of the genesis block id as int."""
        raise NotImplementedError

    # ---- blocks ----------------------------------------------------------------------------------
    def head_block(self) -> Block:
        raise NotImplementedError

    def head_number(self) -> int:
        raise NotImplementedError

    def solid_number(self) -> int:
        """max(0, head - solidity_lag)."""
        raise NotImplementedError

    def solid_block(self) -> Block:
        raise NotImplementedError

    def block_id(self, block: Block) -> bytes:
        """32-byte block id (number in the first 8 bytes)."""
        raise NotImplementedError

    def block_by_number(self, n: int, solid: bool = False) -> Block | None:
        """None when n > head (or > solid when solid=True) or n < 0."""
        raise NotImplementedError

    def block_by_id(self, block_id: bytes, solid: bool = False) -> Block | None:
        raise NotImplementedError

    def blocks_range(self, start: int, end: int, solid: bool = False) -> list[Block]:
        """Blocks with start <= number < end that exist (clipped to head/solid), ascending."""
        raise NotImplementedError

    def next_maintenance_time(self) -> int:
        """ms timestamp of the next maintenance (vote tally)."""
        raise NotImplementedError

    # ---- transactions ----------------------------------------------------------------------------
    def broadcast(self, tx: Transaction) -> BroadcastResult:
        """broadcasttransaction: all java-tron checks in order; on SUCCESS the tx is executed into the
        pending block and will be in the next produced block. Never raises for bad input."""
        raise NotImplementedError

    def sign_weight(self, tx: Transaction) -> dict[str, Any]:
        """getsignweight, semantically: {"code": "ENOUGH_PERMISSION"|"NOT_ENOUGH_PERMISSION"|
        "SIGNATURE_FORMAT_ERROR"|"COMPUTE_ADDRESS_ERROR"|"PERMISSION_ERROR"|"OTHER_ERROR", "message": str,
        "permission": Permission|None, "approved_list": [addr21...], "current_weight": int, "txid": bytes}."""
        raise NotImplementedError

    def approved_list(self, tx: Transaction) -> dict[str, Any]:
        """getapprovedlist: {"code": "SUCCESS"|"SIGNATURE_FORMAT_ERROR"|..., "message": str,
        "approved_list": [addr21...], "txid": bytes}."""
        raise NotImplementedError

    def transaction(self, txid: bytes, solid: bool = False) -> Transaction | None:
        """An included tx (with ret[0].contractRet set); None if unknown, pending, or (solid) not solid."""
        raise NotImplementedError

    def transaction_info(self, txid: bytes, solid: bool = False) -> TransactionInfo | None:
        raise NotImplementedError

    def transaction_infos_in_block(self, n: int, solid: bool = False) -> list[TransactionInfo]:
        raise NotImplementedError

    def pending_count(self) -> int:
        raise NotImplementedError

    def is_pending(self, txid: bytes) -> bool:
        raise NotImplementedError

    def reference_block(self, solid: bool = True) -> Block:
        """Block that node-side builders reference (ref_block_bytes/hash): solid by default like java-tron."""
        raise NotImplementedError

    def validate_contract(self, type_name: str, contract: Any) -> None:
        """Run the actuator's validate() for a node-side builder against the head state (no signature, no
        fees). Raises ContractValidateError with java-tron's text."""
        raise NotImplementedError

    # ---- accounts & resources --------------------------------------------------------------------
    def account(self, addr: bytes, solid: bool = False) -> Account | None:
        """Account protobuf as getaccount prints it (resource usage decayed to now), None if absent."""
        raise NotImplementedError

    def account_resource(self, addr: bytes, solid: bool = False) -> dict[str, int] | None:
        """getaccountresource dict with java-tron keys (freeNetUsed, freeNetLimit, NetUsed, NetLimit,
        TotalNetLimit, TotalNetWeight, TotalTronPowerWeight, tronPowerUsed, tronPowerLimit, EnergyUsed,
        EnergyLimit, TotalEnergyLimit, TotalEnergyWeight); zero values omitted except freeNetLimit.
        None for an unknown account."""
        raise NotImplementedError

    def account_net(self, addr: bytes, solid: bool = False) -> dict[str, int] | None:
        """getaccountnet dict (freeNetUsed, freeNetLimit, NetUsed, NetLimit, TotalNetLimit, TotalNetWeight);
        zeros omitted except freeNetLimit. None for an unknown account."""
        raise NotImplementedError

    def reward(self, addr: bytes, solid: bool = False) -> int:
        """getReward: unclaimed voter reward + witness allowance, sun (0 for unknown)."""
        raise NotImplementedError

    def brokerage(self, addr: bytes) -> int:
        """getBrokerage: percent kept by a witness (20)."""
        raise NotImplementedError

    def witnesses(self, solid: bool = False) -> list[Witness]:
        raise NotImplementedError

    def delegated_resource(
        self, from_addr: bytes, to_addr: bytes, solid: bool = False
    ) -> list[dict[str, Any]]:
        """getdelegatedresourcev2: list of {"from", "to", "frozen_balance_for_bandwidth",
        "frozen_balance_for_energy", "expire_time_for_bandwidth", "expire_time_for_energy"} (addresses 21
        bytes; zero fields omitted), unlocked entry first then the locked one; [] when none."""
        raise NotImplementedError

    def delegated_resource_index(self, addr: bytes, solid: bool = False) -> tuple[list[bytes], list[bytes]]:
        """getdelegatedresourceaccountindexv2: (fromAccounts, toAccounts)."""
        raise NotImplementedError

    def can_delegate_max(self, addr: bytes, resource: int, solid: bool = False) -> int:
        """getcandelegatedmaxsize: delegatable sun for resource 0 (BANDWIDTH) or 1 (ENERGY)."""
        raise NotImplementedError

    def available_unfreeze_count(self, addr: bytes, solid: bool = False) -> int:
        """32 - pending unfreezes."""
        raise NotImplementedError

    def can_withdraw_unfreeze_amount(self, addr: bytes, timestamp_ms: int, solid: bool = False) -> int:
        raise NotImplementedError

    # ---- contracts -------------------------------------------------------------------------------
    def contract(self, addr: bytes, solid: bool = False) -> SmartContract | None:
        """getcontract: SmartContract incl. abi, deploy bytecode, code_hash; None if not a contract."""
        raise NotImplementedError

    def contract_info(self, addr: bytes, solid: bool = False) -> dict[str, Any] | None:
        """getcontractinfo: {"smart_contract": SmartContract, "runtimecode": bytes,
        "contract_state": {"energy_usage": int, "energy_factor": int, "update_cycle": int}} or None."""
        raise NotImplementedError

    def trigger_constant(
        self,
        owner: bytes,
        contract: bytes | None,
        data: bytes,
        call_value: int = 0,
        fee_limit: int = 0,
        solid: bool = False,
    ) -> ExecResult:
        """triggerconstantcontract: run without committing (owner may not exist, e.g. 410000…00).
        contract None = simulate deployment of `data`. Unknown contract → ContractValidateError(
        "Smart contract is not exist."). VM failures come back in ExecResult.result/message."""
        raise NotImplementedError

    def estimate_energy(
        self, owner: bytes, contract: bytes | None, data: bytes, call_value: int = 0, solid: bool = False
    ) -> int:
        """estimateenergy with java-tron's binary search. VM failure → ContractExeError(message)."""
        raise NotImplementedError

    # ---- devnet control --------------------------------------------------------------------------
    def produce_block(self, timestamp_ms: int | None = None) -> Block:
        """Seal the pending transactions into a new witness-signed block. timestamp_ms None = the next slot
        (max(head+block_time, now aligned to the slot grid))."""
        raise NotImplementedError

    def mine(self, n: int) -> list[Block]:
        """Produce n blocks back to back (timestamps one slot apart)."""
        raise NotImplementedError

    def fork(self, k: int, reinclude: bool = False) -> list[Block]:
        """Replace the last k blocks (all must be above the solid block, else ValueError) by a new branch of
        k+1 blocks. reinclude=False: the orphaned transactions vanish (unknown again, may be re-broadcast);
        reinclude=True: they go back through broadcast checks and land in the new branch if still valid.
        Returns the new branch's blocks."""
        raise NotImplementedError

    def faucet(self, addr: bytes, trx: int = 0, usdt: int = 0) -> list[bytes]:
        """Send TRX (sun) and/or USDT (base units) from the genesis faucet account as real signed transactions
        (pending; included in the next block). Returns their txids. Raises ValueError if the faucet is dry."""
        raise NotImplementedError

    def drop_pending(self, txid: bytes) -> bool:
        """Fault injection: forget a pending tx (as if never broadcast). True if it was pending."""
        raise NotImplementedError
