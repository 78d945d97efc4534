"""`Node`: the one facade the HTTP layer (api.py, control.py, __main__.py) calls.

All addresses are 21 bytes (0x41 + 20), all ids 32 bytes, all amounts int sun. Protobuf objects are the
`devnet.pb` classes. Methods taking `solid=True` answer against the solidified block / its state
(walletsolidity/*); otherwise against the head block and its state (pending, unmined transactions are not
visible). Errors that java-tron reports as CONTRACT_VALIDATE_ERROR raise `ContractValidateError`, VM/execution
failures of estimate_energy raise `ContractExeError`; both carry java-tron's message text in `.message`.

Devnet semantics (see chain.py for details):
- broadcast runs every java-tron check in order and executes the tx once into the pending block (fees and
  VM results are final then); produce_block seals the pending txs, pays block rewards, tallies votes at
  maintenance (getMaintenanceTimeInterval), and never lets chain time run more than one slot ahead of the
  wall clock (tronpy's expirations are wall-clock based) unless an explicit timestamp/spacing is given.
- fork(k) replaces the last k unsolidified blocks by k+1 new ones; orphaned txs vanish (re-broadcastable)
  or, with reinclude=True, are re-run into the new branch one block later than before.
- Rewards accrue per block: the producer's 16 TRX and the 160 TRX standby pay split by live votes; each
  witness keeps its brokerage (20 %), the rest goes to its voters pro rata (getReward / WithdrawBalance).
- Devnet-only parameters (params.DEVNET_PARAMETERS): devnetUnfreezeDelayMs (genesis default 9 000 ms),
  devnetWithdrawIntervalMs (24 h rule), devnetTotalSignNum, devnetBrokerage,
  devnetMaxEnergyLimitForConstant, devnetDefaultDelegateLockPeriod.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devnet import actuators, codec, crypto, genesis, resources
from devnet.actuators import ContractExeError, ContractValidateError
from devnet.chain import Broadcast as BroadcastResult
from devnet.chain import Chain, SignatureCheckError
from devnet.params import MAX_UNFREEZE_TIMES, Params
from devnet.pb import contract_pb2, tron_pb2
from devnet.state import AccountState, Overlay, World
from devnet.tvm import ExecResult

Account = tron_pb2.Account
Block = tron_pb2.Block
SmartContract = contract_pb2.SmartContract
Transaction = tron_pb2.Transaction
TransactionInfo = tron_pb2.TransactionInfo
Witness = tron_pb2.Witness

__all__ = [
    "BroadcastResult",
    "ContractExeError",
    "ContractValidateError",
    "GenesisAccount",
    "Node",
    "NodeConfig",
]


@dataclass
class NodeConfig:
    """How to open a node. `data_dir` None = in-memory only. `genesis_file`: JSON overriding accounts,
    balances and params (see genesis.py). `solidity_lag`: solid = head - lag. `block_time_ms`: slot length.
    `params`: extra chain-parameter overrides (names as getchainparameters or devnet-only names).
    `profile`: "mainnet" keeps mainnet's unfreeze delay, maintenance interval, network stake and USDT
    energy factor instead of the devnet's shortcuts (genesis.PROFILES); applies when a chain is created."""

    data_dir: Path | None = None
    genesis_file: Path | None = None
    solidity_lag: int = 18
    block_time_ms: int = 3000
    params: dict[str, int] = field(default_factory=dict)
    max_pending: int = 20000
    profile: str | None = None  # genesis profile ("devnet" | "mainnet"); None = the genesis file's


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
        node = cls()
        node.config = config
        db_path = Path(config.data_dir) / "chain.sqlite" if config.data_dir else None
        spec = genesis.GenesisSpec.load(config.genesis_file, profile=config.profile)
        params = Params({**spec.params, **config.params})
        chain = Chain(
            params,
            spec.witness_key,
            solidity_lag=config.solidity_lag,
            block_time_ms=config.block_time_ms,
            max_pending=config.max_pending,
            db_path=db_path,
        )
        node._chain = chain
        node._spec = spec
        if chain.open_db():
            stored = chain.meta_get("params")
            if stored:
                params.update(stored)
            if config.params:  # explicit overrides win over what the data dir remembers
                params.update(config.params)
                chain.meta_put("params", params.as_dict())
            node._spec = chain.meta_get("genesis") or spec  # the accounts the chain was created with
            return node
        block = chain.make_genesis_block(spec.timestamp)
        world, ctx = chain.genesis_world(block)
        genesis.build_state(world, spec, chain.vm, ctx)
        chain.set_genesis(block, world.view.writes)
        chain.meta_put("params", params.as_dict())
        chain.meta_put("genesis", spec)
        return node

    def close(self) -> None:
        """Flush and close persistence (no-op in memory)."""
        self._chain.close()

    @property
    def params(self) -> Any:
        """The live `devnet.params.Params` (read-only use; change via set_params)."""
        return self._chain.params

    def chain_parameters(self) -> list[tuple[str, int]]:
        """getchainparameters: [(key, value), ...] in java-tron's order (zero values included here; JSON
        printing omits `value` when 0)."""
        return self._chain.params.chain_parameters()

    def set_params(self, values: dict[str, int]) -> None:
        """Change chain parameters at runtime (getchainparameters names or devnet names, see params.py).
        Raises KeyError for an unknown name, ValueError for a bad value."""
        chain = self._chain
        chain.params.update(values, at_ms=chain.head_time)
        chain.meta_put("params", chain.params.as_dict())

    def genesis_accounts(self) -> list[GenesisAccount]:
        """Funded genesis accounts with keys (for the accounts file); the witness is included."""
        out = [GenesisAccount(crypto.address_from_private_key(k), k) for k in self._spec.account_keys()]
        wk = self._spec.witness_key
        out.append(GenesisAccount(crypto.address_from_private_key(wk), wk, is_witness=True))
        return out

    def token_addresses(self) -> dict[str, bytes]:
        """{"USDT": 41a614f8…} — contracts deployed at genesis."""
        return {"USDT": genesis.USDT_ADDRESS}

    def contract_addresses(self) -> dict[str, bytes]:
        """{"PayoutRouterV0": 41…, "PayoutRouterKYC": 41…}: the other contracts deployed at genesis (none on
        a chain created before they were part of the genesis)."""
        world = self._chain.world()
        return {
            name: addr for name, addr in genesis.PAYOUT_ROUTERS.items() if world.contract(addr) is not None
        }

    def role_accounts(self) -> dict[str, GenesisAccount]:
        """The routers' role accounts with keys (payout_admin, payout_disburser, …), if the routers exist."""
        if not self.contract_addresses():
            return {}
        return {
            name: GenesisAccount(crypto.address_from_private_key(key), key)
            for name, key in genesis.PAYOUT_ROLE_KEYS.items()
        }

    @property
    def chain_id(self) -> int:
        """CHAINID: last 4 bytes of the genesis block id as int."""
        return self._chain.chain_id

    # ---- blocks ----------------------------------------------------------------------------------
    def head_block(self) -> Block:
        return self._chain.head

    def head_number(self) -> int:
        return self._chain.head_number

    def solid_number(self) -> int:
        """max(0, head - solidity_lag)."""
        return self._chain.solid_number

    def solid_block(self) -> Block:
        return self._chain.blocks[self._chain.solid_number]

    def block_id(self, block: Block) -> bytes:
        """32-byte block id (number in the first 8 bytes)."""
        return codec.block_id(block.block_header.raw_data)

    def block_by_number(self, n: int, solid: bool = False) -> Block | None:
        """None when n > head (or > solid when solid=True) or n < 0."""
        return self._chain.block(n, solid)

    def block_by_id(self, block_id: bytes, solid: bool = False) -> Block | None:
        return self._chain.block_by_id(block_id, solid)

    def blocks_range(self, start: int, end: int, solid: bool = False) -> list[Block]:
        """Blocks with start <= number < end that exist (clipped to head/solid), ascending."""
        top = self._chain.solid_number if solid else self._chain.head_number
        return [self._chain.blocks[n] for n in range(max(start, 0), min(end, top + 1))]

    def next_maintenance_time(self) -> int:
        """ms timestamp of the next maintenance (vote tally)."""
        return int(self._chain.world().glob("next_maintenance", 0))

    # ---- transactions ----------------------------------------------------------------------------
    def broadcast(self, tx: Transaction) -> BroadcastResult:
        """broadcasttransaction: all java-tron checks in order; on SUCCESS the tx is executed into the
        pending block and will be in the next produced block. Never raises for bad input."""
        return self._chain.broadcast(tx)

    def sign_weight(self, tx: Transaction) -> dict[str, Any]:
        """getsignweight, semantically: {"code": "ENOUGH_PERMISSION"|"NOT_ENOUGH_PERMISSION"|
        "SIGNATURE_FORMAT_ERROR"|"COMPUTE_ADDRESS_ERROR"|"PERMISSION_ERROR"|"OTHER_ERROR", "message": str,
        "permission": Permission|None, "approved_list": [addr21...], "current_weight": int, "txid": bytes}."""
        return self._sign_info(tx, weight=True)

    def approved_list(self, tx: Transaction) -> dict[str, Any]:
        """getapprovedlist: {"code": "SUCCESS"|"SIGNATURE_FORMAT_ERROR"|..., "message": str,
        "approved_list": [addr21...], "txid": bytes}."""
        return self._sign_info(tx, weight=False)

    def transaction(self, txid: bytes, solid: bool = False) -> Transaction | None:
        """An included tx (with ret[0].contractRet set); None if unknown, pending, or (solid) not solid."""
        inc = self._chain.included(txid, solid)
        return None if inc is None else self._chain.blocks[inc.number].transactions[inc.index]

    def transaction_info(self, txid: bytes, solid: bool = False) -> TransactionInfo | None:
        inc = self._chain.included(txid, solid)
        return None if inc is None else self._chain.infos[inc.number][inc.index]

    def transaction_infos_in_block(self, n: int, solid: bool = False) -> list[TransactionInfo]:
        if self._chain.block(n, solid) is None:
            return []
        return list(self._chain.infos[n])

    def pending_count(self) -> int:
        return len(self._chain.pending)

    def is_pending(self, txid: bytes) -> bool:
        return txid in self._chain.pending_ids

    def reference_block(self, solid: bool = True) -> Block:
        """Block that node-side builders reference (ref_block_bytes/hash): solid by default like java-tron."""
        return self.solid_block() if solid else self.head_block()

    def validate_contract(self, type_name: str, contract: Any) -> None:
        """Run the actuator's validate() for a node-side builder against the head state (no signature, no
        fees). Raises ContractValidateError with java-tron's text."""
        if type_name in ("CreateSmartContract", "TriggerSmartContract"):
            return
        chain = self._chain
        world = World(Overlay(chain.store.at()))
        ctx = actuators.Ctx(
            world,
            chain.params,
            type_name,
            contract,
            b"\x00" * 32,
            chain.next_slot_time(),
            chain.head_number + 1,
            vm=None,
        )
        actuators.run(ctx)

    # ---- accounts & resources --------------------------------------------------------------------
    def account(self, addr: bytes, solid: bool = False) -> Account | None:
        """Account protobuf as getaccount prints it (resource usage decayed to now), None if absent."""
        acc = self._chain.world(solid).account(addr)
        return None if acc is None else self._account_pb(acc, self._chain.world(solid), solid)

    def account_resource(self, addr: bytes, solid: bool = False) -> dict[str, int] | None:
        """getaccountresource dict with java-tron keys (freeNetUsed, freeNetLimit, NetUsed, NetLimit,
        TotalNetLimit, TotalNetWeight, TotalTronPowerWeight, tronPowerUsed, tronPowerLimit, EnergyUsed,
        EnergyLimit, TotalEnergyLimit, TotalEnergyWeight); zero values omitted except freeNetLimit.
        None for an unknown account."""
        world = self._chain.world(solid)
        acc = world.account(addr)
        if acc is None:
            return None
        res = resources.account_resource(world, self._chain.params, acc, self._now(solid))
        return {k: v for k, v in res.items() if v or k == "freeNetLimit"}

    def account_net(self, addr: bytes, solid: bool = False) -> dict[str, int] | None:
        """getaccountnet dict (freeNetUsed, freeNetLimit, NetUsed, NetLimit, TotalNetLimit, TotalNetWeight);
        zeros omitted except freeNetLimit. None for an unknown account."""
        world = self._chain.world(solid)
        acc = world.account(addr)
        if acc is None:
            return None
        res = resources.account_net(world, self._chain.params, acc, self._now(solid))
        return {k: v for k, v in res.items() if v or k == "freeNetLimit"}

    def reward(self, addr: bytes, solid: bool = False) -> int:
        """getReward: unclaimed voter reward + witness allowance, sun (0 for unknown)."""
        world = self._chain.world(solid)
        acc = world.account(addr)
        return 0 if acc is None else acc.allowance + actuators.pending_reward(world, acc)

    def brokerage(self, addr: bytes) -> int:
        """getBrokerage: percent kept by a witness (20)."""
        w = self._chain.world().witness(addr)
        return w.brokerage if w is not None else self._chain.params["devnetBrokerage"]

    def witnesses(self, solid: bool = False) -> list[Witness]:
        world = self._chain.world(solid)
        out = []
        for addr in world.witness_addresses():
            w = world.witness(addr)
            if w is None:
                continue
            out.append(
                tron_pb2.Witness(
                    address=w.address,
                    voteCount=w.vote_count,
                    url=w.url,
                    totalProduced=w.total_produced,
                    totalMissed=w.total_missed,
                    latestBlockNum=w.latest_block_num,
                    latestSlotNum=w.latest_slot_num,
                    isJobs=True,
                )
            )
        return out

    def delegated_resource(
        self, from_addr: bytes, to_addr: bytes, solid: bool = False
    ) -> list[dict[str, Any]]:
        """getdelegatedresourcev2: list of {"from", "to", "frozen_balance_for_bandwidth",
        "frozen_balance_for_energy", "expire_time_for_bandwidth", "expire_time_for_energy"} (addresses 21
        bytes; zero fields omitted), unlocked entry first then the locked one; [] when none."""
        world = self._chain.world(solid)
        out = []
        for lock in (False, True):
            d = world.delegation(from_addr, to_addr, lock)
            if d is None:
                continue
            entry: dict[str, Any] = {"from": from_addr, "to": to_addr}
            for key, value in (
                ("frozen_balance_for_bandwidth", d.bandwidth),
                ("frozen_balance_for_energy", d.energy),
                ("expire_time_for_bandwidth", d.expire_bandwidth),
                ("expire_time_for_energy", d.expire_energy),
            ):
                if value:
                    entry[key] = value
            out.append(entry)
        return out

    def delegated_resource_index(self, addr: bytes, solid: bool = False) -> tuple[list[bytes], list[bytes]]:
        """getdelegatedresourceaccountindexv2: (fromAccounts, toAccounts)."""
        froms, tos = self._chain.world(solid).delegation_index(addr)
        return list(froms), list(tos)

    def can_delegate_max(self, addr: bytes, resource: int, solid: bool = False) -> int:
        """getcandelegatedmaxsize: delegatable sun for resource 0 (BANDWIDTH) or 1 (ENERGY)."""
        world = self._chain.world(solid)
        acc = world.account(addr)
        if acc is None or resource not in (0, 1):
            return 0
        return actuators.delegatable(world, self._chain.params, acc, resource, self._now(solid))

    def available_unfreeze_count(self, addr: bytes, solid: bool = False) -> int:
        """32 - pending unfreezes."""
        acc = self._chain.world(solid).account(addr)
        if acc is None:
            return MAX_UNFREEZE_TIMES
        now = self._now(solid)
        return MAX_UNFREEZE_TIMES - sum(1 for u in acc.unfrozen if u.expire_ms > now)

    def can_withdraw_unfreeze_amount(self, addr: bytes, timestamp_ms: int, solid: bool = False) -> int:
        acc = self._chain.world(solid).account(addr)
        if acc is None:
            return 0
        return sum(u.amount for u in acc.unfrozen if u.expire_ms <= timestamp_ms)

    # ---- contracts -------------------------------------------------------------------------------
    def contract(self, addr: bytes, solid: bool = False) -> SmartContract | None:
        """getcontract: SmartContract incl. abi, deploy bytecode, code_hash; None if not a contract."""
        cs = self._chain.world(solid).contract(addr)
        return None if cs is None else contract_pb2.SmartContract.FromString(cs.smart_contract)

    def contract_info(self, addr: bytes, solid: bool = False) -> dict[str, Any] | None:
        """getcontractinfo: {"smart_contract": SmartContract, "runtimecode": bytes,
        "contract_state": {"energy_usage": int, "energy_factor": int, "update_cycle": int}} or None."""
        world = self._chain.world(solid)
        cs = world.contract(addr)
        if cs is None:
            return None
        return {
            "smart_contract": contract_pb2.SmartContract.FromString(cs.smart_contract),
            "runtimecode": world.code(addr[1:]),
            "contract_state": {"energy_usage": 0, "energy_factor": cs.energy_factor, "update_cycle": 0},
        }

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
        chain = self._chain
        limit = chain.params["devnetMaxEnergyLimitForConstant"]
        if fee_limit > 0:
            limit = min(limit, fee_limit // chain.params.energy_fee)
        return self._run_constant(owner, contract, data, call_value, limit, solid)

    def estimate_energy(
        self, owner: bytes, contract: bytes | None, data: bytes, call_value: int = 0, solid: bool = False
    ) -> int:
        """estimateenergy with java-tron's binary search. VM failure → ContractExeError(message)."""
        chain = self._chain
        price = chain.params.energy_fee
        max_fee = chain.params.max_fee_limit

        def ok(fee: int) -> ExecResult:
            return self._run_constant(owner, contract, data, call_value, fee // price, solid)

        first = ok(max_fee)
        if not first.success:
            raise ContractExeError(first.message or first.result)
        low, high = price * first.energy_used, max_fee
        if 2 * low < high:
            if ok(2 * low).success:
                high = 2 * low
            else:
                low = 2 * low
        while low + 1_000_000 < high:
            mid = (low + high) // 2
            if ok(mid).success:
                high = mid
            else:
                low = mid
        final = ok(high)
        if not final.success:
            raise ContractExeError(final.message or final.result)
        return math.ceil(high / price)

    # ---- devnet control --------------------------------------------------------------------------
    def produce_block(self, timestamp_ms: int | None = None) -> Block:
        """Seal the pending transactions into a new witness-signed block. timestamp_ms None = the current
        wall-clock slot, or head + one slot (never more than a slot ahead of the clock; then head + 1 ms)."""
        return self._chain.produce_block(timestamp_ms)

    def mine(self, n: int, spacing_ms: int | None = None) -> list[Block]:
        """Produce n blocks back to back. spacing_ms None: timestamps as produce_block() picks them (never
        running ahead of the wall clock by more than a slot). spacing_ms given: each block exactly that much
        after the previous one (time travel for tests: unfreeze delays, locks, reward windows)."""
        blocks = []
        for _ in range(n):
            ts = None if spacing_ms is None else self._chain.head_time + max(spacing_ms, 1)
            blocks.append(self._chain.produce_block(ts))
        return blocks

    def fork(self, k: int, reinclude: bool = False) -> list[Block]:
        """Replace the last k blocks (all must be above the solid block, else ValueError) by a new branch of
        k+1 blocks. reinclude=False: the orphaned transactions vanish (unknown again, may be re-broadcast);
        reinclude=True: they go back through broadcast checks and land in the new branch if still valid.
        Returns the new branch's blocks."""
        return self._chain.fork(k, reinclude)

    def faucet(self, addr: bytes, trx: int = 0, usdt: int = 0) -> list[bytes]:
        """Send TRX (sun) and/or USDT (base units) from the genesis faucet account as real signed transactions
        (pending; included in the next block). Returns their txids. Raises ValueError if the faucet is dry."""
        key = self._spec.account_keys()[0]
        src = crypto.address_from_private_key(key)
        txids = []
        if trx > 0:
            c = contract_pb2.TransferContract(owner_address=src, to_address=addr, amount=trx)
            txids.append(self._send(key, "TransferContract", c, 0))
        if usdt > 0:
            data = (
                genesis.TRANSFER_SELECTOR
                + int.from_bytes(addr[1:], "big").to_bytes(32, "big")
                + usdt.to_bytes(32, "big")
            )
            c2 = contract_pb2.TriggerSmartContract(
                owner_address=src, contract_address=genesis.USDT_ADDRESS, data=data
            )
            txids.append(self._send(key, "TriggerSmartContract", c2, 1_000_000_000))
        return txids

    def drop_pending(self, txid: bytes) -> bool:
        """Fault injection: forget a pending tx (as if never broadcast). True if it was pending."""
        return self._chain.drop_pending(txid)

    # ---- internals -------------------------------------------------------------------------------
    _chain: Chain
    _spec: genesis.GenesisSpec
    config: NodeConfig
    _nonce: int = 0

    def _now(self, solid: bool) -> int:
        """Time that resource views decay to: the wall clock, never before the head/solid block."""
        block = self.solid_block() if solid else self.head_block()
        return max(int(time.time() * 1000), block.block_header.raw_data.timestamp)

    def _account_pb(self, acc: AccountState, world: World, solid: bool) -> tron_pb2.Account:
        now_slot = resources.slot_of(self._now(solid))
        a = tron_pb2.Account(
            address=acc.address,
            balance=acc.balance,
            create_time=acc.create_time,
            type=tron_pb2.AccountType.ValueType(acc.type),
            account_name=acc.account_name,
            is_witness=acc.is_witness,
        )
        a.latest_opration_time = acc.latest_operation_time
        a.net_usage = resources.recovered(acc.net_usage, acc.latest_consume_time, now_slot)
        a.free_net_usage = resources.recovered(acc.free_net_usage, acc.latest_consume_free_time, now_slot)
        a.latest_consume_time = acc.latest_consume_time * 3000
        a.latest_consume_free_time = acc.latest_consume_free_time * 3000
        a.net_window_size = 28_800_000
        a.net_window_optimized = True
        ar = a.account_resource
        ar.energy_usage = resources.recovered(acc.energy_usage, acc.latest_consume_time_for_energy, now_slot)
        ar.latest_consume_time_for_energy = acc.latest_consume_time_for_energy * 3000
        ar.energy_window_size = 28_800_000
        ar.energy_window_optimized = True
        ar.delegated_frozenV2_balance_for_energy = acc.delegated_out[1]
        ar.acquired_delegated_frozenV2_balance_for_energy = acc.acquired[1]
        a.delegated_frozenV2_balance_for_bandwidth = acc.delegated_out[0]
        a.acquired_delegated_frozenV2_balance_for_bandwidth = acc.acquired[0]
        a.allowance = acc.allowance + actuators.pending_reward(world, acc)
        a.latest_withdraw_time = acc.latest_withdraw_time
        for addr, count in acc.votes:
            a.votes.add(vote_address=addr, vote_count=count)
        for res in (0, 1, 2):
            f = a.frozenV2.add(type=res)
            if acc.frozen[res]:
                f.amount = acc.frozen[res]
        for u in acc.unfrozen:
            a.unfrozenV2.add(type=u.resource, unfreeze_amount=u.amount, unfreeze_expire_time=u.expire_ms)
        owner = actuators.permission_by_id(acc, acc.address, 0)
        if owner is not None:
            a.owner_permission.CopyFrom(_perm_pb(owner))
        if acc.witness_permission is not None:
            a.witness_permission.CopyFrom(_perm_pb(acc.witness_permission))
        actives = acc.active_permissions or (actuators.default_active(acc.address),)
        for p in actives:
            a.active_permission.append(_perm_pb(p))
        return a

    def _sign_info(self, tx: tron_pb2.Transaction, weight: bool) -> dict[str, Any]:
        chain = self._chain
        txid = codec.tx_id(tx)
        out: dict[str, Any] = {
            "code": "ENOUGH_PERMISSION" if weight else "SUCCESS",
            "message": "",
            "permission": None,
            "approved_list": [],
            "current_weight": 0,
            "txid": txid,
        }
        try:
            _, contract = codec.unpack_contract(tx)
        except codec.CodecError as exc:
            out.update(code="OTHER_ERROR", message=str(exc))
            return out
        world = chain.world()
        owner = getattr(contract, "owner_address", b"")
        if weight and world.account(owner) is None:
            out.update(code="PERMISSION_ERROR", message="Account does not exist!")
            return out
        try:
            perm = chain.permission_for(tx, contract, world)
        except SignatureCheckError as exc:
            text = str(exc)
            msg = {
                "permission isn't exit": "Permission for this, does not exist!",
                "Permission type is error": "Permission type is wrong!",
                "Permission denied": "Permission denied!",
            }.get(text, text)
            out.update(code="PERMISSION_ERROR", message=msg)
            return out
        if weight:
            out["permission"] = _perm_pb(perm)
        try:
            total, signers = chain.signature_weight(tx.signature, txid, perm)
        except SignatureCheckError as exc:
            out.update(code=exc.kind, message=str(exc))
            return out
        out["approved_list"] = signers
        out["current_weight"] = total
        if weight and total < perm.threshold:
            out["code"] = "NOT_ENOUGH_PERMISSION"  # java-tron sets no message here
        return out

    def _run_constant(
        self, owner: bytes, contract: bytes | None, data: bytes, call_value: int, limit: int, solid: bool
    ) -> ExecResult:
        chain = self._chain
        world = World(Overlay(chain.store.at(chain.solid_number if solid else None)))
        block = self.solid_block() if solid else self.head_block()
        ctx = chain.block_context(block.block_header.raw_data.number, block.block_header.raw_data.timestamp)
        factors = actuators.energy_factors(chain.params, world)  # the same penalties as a transaction
        if contract is None:
            addr = actuators.contract_address_for(crypto.sha256(data + owner), owner)
            try:
                return chain.vm.create(
                    World(Overlay(world.view)),
                    ctx,
                    origin=owner[1:],
                    address=addr[1:],
                    init_code=data,
                    value=call_value,
                    energy_limit=limit,
                    tx_id=bytes(32),
                    energy_factor=factors,
                )
            except Exception as exc:
                raise ContractValidateError(str(exc)) from None
        if world.contract(contract) is None:
            raise ContractValidateError("Smart contract is not exist.")
        if not world.exists(owner[1:]):
            world.create_account(owner[1:])
        try:
            return chain.vm.call(
                world,
                ctx,
                origin=owner[1:],
                caller=owner[1:],
                contract=contract[1:],
                value=call_value,
                data=data,
                energy_limit=limit,
                tx_id=bytes(32),
                static=True,
                energy_factor=factors,
            )
        except Exception as exc:
            raise ContractValidateError(str(exc)) from None

    def _send(self, key: bytes, type_name: str, contract: Any, fee_limit: int) -> bytes:
        chain = self._chain
        tx = tron_pb2.Transaction()
        tx.raw_data.contract.append(codec.pack_contract(type_name, contract))
        head_id = chain.block_ids[-1]
        tx.raw_data.ref_block_bytes = head_id[6:8]
        tx.raw_data.ref_block_hash = head_id[8:16]
        tx.raw_data.expiration = chain.head_time + 60_000
        Node._nonce += 1
        tx.raw_data.timestamp = int(time.time() * 1000) + Node._nonce
        if fee_limit:
            tx.raw_data.fee_limit = fee_limit
        txid = codec.tx_id(tx)
        tx.signature.append(crypto.sign(txid, key))
        r = chain.broadcast(tx)
        if not r.ok:
            raise ValueError(f"faucet transaction failed: {r.code} {r.message}")
        return txid


def _perm_pb(p: Any) -> tron_pb2.Permission:
    perm = tron_pb2.Permission(
        type=p.type,
        id=p.id,
        permission_name=p.name,
        threshold=p.threshold,
        parent_id=p.parent_id,
        operations=p.operations,
    )
    for addr, w in p.keys:
        perm.keys.add(address=addr, weight=w)
    return perm
