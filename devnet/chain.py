"""Pending pool, broadcast checks in java-tron's order, block production, TAPOS, solidification, forks.

Execution model: a transaction is validated and executed once, at broadcast, into the pending overlay (like
java-tron's pending session, with the next block's number/timestamp as context); `produce_block` adds the
block rewards / maintenance to that overlay and commits it as the block's version of the state. A pending
transaction that has expired by the time its block is produced, or a fork, rebuilds the pending overlay by
re-running the surviving transactions.

Forks: `fork(k)` rolls state and blocks back k blocks (never at or below the solid block) and produces k+1
new blocks. Orphaned transactions vanish (re-broadcastable) unless `reinclude=True`, in which case they go
through the broadcast checks again and land in the new branch if still valid. Pending transactions are
always re-run on the new branch.
"""

from __future__ import annotations

import pickle
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devnet import codec, crypto
from devnet.actuators import (
    ContractExeError,
    ContractValidateError,
    Ctx,
    Outcome,
    creates_account,
    live_votes,
    pay_block_rewards,
    permission_by_id,
    run,
)
from devnet.params import (
    BLOCK_INTERVAL_MS,
    MAX_RESULT_SIZE_IN_TX,
    MAX_TIME_UNTIL_EXPIRATION_MS,
    MAX_TX_SIZE,
    Params,
)
from devnet.pb import tron_pb2
from devnet.resources import NetBill, ResourceInsufficient, consume_bandwidth, tx_bytes
from devnet.state import Overlay, VersionedStore, World
from devnet.tvm import TVM, BlockContext

TAPOS_SLOTS = 65_536
BLOCK_VERSION = 34
COMPACT_EVERY = 64

RESULT_CODES = tron_pb2.Transaction.Result.contractResult


@dataclass(frozen=True)
class Broadcast:
    """Result of a broadcast. code is the GrpcAPI.Return.response_code name ('SUCCESS', 'SIGERROR',
    'CONTRACT_VALIDATE_ERROR', 'CONTRACT_EXE_ERROR', 'BANDWITH_ERROR', 'DUP_TRANSACTION_ERROR', 'TAPOS_ERROR',
    'TOO_BIG_TRANSACTION_ERROR', 'TRANSACTION_EXPIRATION_ERROR', 'SERVER_BUSY', 'OTHER_ERROR'); message is
    the full java-tron text ("Validate signature error: sig error"), "" on success; txid: the node's own."""

    code: str
    message: str
    txid: bytes

    @property
    def ok(self) -> bool:
        return self.code == "SUCCESS"


class SignatureCheckError(Exception):
    """A failed signature/permission check. `kind` is the java-tron exception it stands for, which
    getsignweight reports as its result code: PermissionException → PERMISSION_ERROR,
    SignatureFormatException (fewer than 65 bytes) → SIGNATURE_FORMAT_ERROR, SignatureException (not
    recoverable) → COMPUTE_ADDRESS_ERROR. broadcast turns them all into SIGERROR."""

    def __init__(self, message: str, kind: str = "PERMISSION_ERROR") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class PendingTx:
    tx: tron_pb2.Transaction
    txid: bytes
    outcome: Outcome
    net: NetBill
    extra_fee: int  # multi-sign + memo fees


@dataclass
class Included:
    number: int
    index: int


class Chain:
    def __init__(
        self,
        params: Params,
        witness_key: bytes,
        *,
        solidity_lag: int = 18,
        block_time_ms: int = BLOCK_INTERVAL_MS,
        max_pending: int = 20_000,
        db_path: Path | None = None,
    ) -> None:
        self.params = params
        self.witness_key = witness_key
        self.witness_address = crypto.address_from_private_key(witness_key)
        self.solidity_lag = solidity_lag
        self.block_time_ms = block_time_ms
        self.max_pending = max_pending
        self.store = VersionedStore()
        self.vm = TVM()
        self.blocks: list[tron_pb2.Block] = []
        self.block_ids: list[bytes] = []
        self.infos: list[list[tron_pb2.TransactionInfo]] = []
        self.id_index: dict[bytes, int] = {}
        self.tx_index: dict[bytes, Included] = {}
        self.tapos: dict[bytes, bytes] = {}
        self.chain_id = 0
        self.pending: list[PendingTx] = []
        self.pending_ids: set[bytes] = set()
        self.pending_view = Overlay(self.store.at())
        self.pending_ts = 0
        self._pinned = False
        self._db: sqlite3.Connection | None = None
        self._db_path = db_path
        self._last_compact = 0

    # ---- genesis / persistence --------------------------------------------------------------------------
    def make_genesis_block(self, timestamp_ms: int) -> tron_pb2.Block:
        block = tron_pb2.Block()
        raw = block.block_header.raw_data
        raw.number = 0
        raw.timestamp = timestamp_ms
        raw.parentHash = bytes(32)
        raw.txTrieRoot = bytes(32)
        raw.witness_address = self.witness_address
        raw.version = BLOCK_VERSION
        return block

    def set_genesis(self, block: tron_pb2.Block, writes: dict[Any, Any]) -> None:
        self._append_block(block, [], writes)
        self._reset_pending()

    def genesis_world(self, block: tron_pb2.Block) -> tuple[World, BlockContext]:
        """A scratch world over an empty store for building the genesis state (call before set_genesis)."""
        bid = codec.block_id(block.block_header.raw_data)
        self.chain_id = int.from_bytes(bid[-4:], "big")
        ctx = BlockContext(
            0,
            block.block_header.raw_data.timestamp,
            self.witness_address,
            self.chain_id,
            self.params.energy_fee,
        )
        return World(Overlay(self.store.at())), ctx

    def open_db(self) -> bool:
        """Open the data dir's database; load a stored chain. True if a chain was loaded."""
        if self._db_path is None:
            return False
        self._db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self._db_path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS blocks (num INTEGER PRIMARY KEY, block BLOB, infos BLOB, writes BLOB)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB)")
        rows = self._db.execute("SELECT num, block, infos, writes FROM blocks ORDER BY num").fetchall()
        if not rows:
            return False
        for num, block_b, infos_b, writes_b in rows:
            block = tron_pb2.Block.FromString(block_b)
            infos = [tron_pb2.TransactionInfo.FromString(b) for b in pickle.loads(infos_b)]
            self._append_block(block, infos, pickle.loads(writes_b), persist=False)
            if num == 0:
                self.chain_id = int.from_bytes(self.block_ids[0][-4:], "big")
        self.store.compact(self.solid_number)
        self._last_compact = self.solid_number
        self._reset_pending()
        return True

    def meta_get(self, key: str) -> Any:
        if self._db is None:
            return None
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return pickle.loads(row[0]) if row else None

    def meta_put(self, key: str, value: Any) -> None:
        if self._db is not None:
            self._db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, pickle.dumps(value)))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # ---- heads -------------------------------------------------------------------------------------------
    @property
    def head(self) -> tron_pb2.Block:
        return self.blocks[-1]

    @property
    def head_number(self) -> int:
        return len(self.blocks) - 1

    @property
    def head_time(self) -> int:
        return self.blocks[-1].block_header.raw_data.timestamp

    @property
    def solid_number(self) -> int:
        return max(0, self.head_number - self.solidity_lag)

    def world(self, solid: bool = False) -> World:
        return World(self.store.at(self.solid_number if solid else None))

    def next_slot_time(self, now_ms: int | None = None) -> int:
        """Next block timestamp: the current wall-clock slot, or one slot after head. Chain time never runs
        more than one slot ahead of the wall clock (tronpy's expirations are wall-clock based): beyond
        that, blocks are packed 1 ms after head."""
        interval = self.block_time_ms
        after_head = self.head_time + interval
        if now_ms is None:
            now_ms = int(time.time() * 1000)
        aligned = now_ms - now_ms % interval
        if aligned >= after_head:
            return aligned
        if after_head <= aligned + interval:
            return after_head
        return self.head_time + 1

    def block_context(self, number: int, timestamp: int) -> BlockContext:
        return BlockContext(
            number, timestamp, self.witness_address, self.chain_id, self.params.energy_fee, self._block_hash
        )

    def _block_hash(self, n: int) -> bytes:
        return self.block_ids[n] if 0 <= n < len(self.block_ids) else bytes(32)

    # ---- broadcast ---------------------------------------------------------------------------------------
    def broadcast(self, tx: tron_pb2.Transaction) -> Broadcast:
        try:
            txid = codec.tx_id(tx)
        except Exception as exc:  # never let bad input escape
            return Broadcast("OTHER_ERROR", f"Error: {exc}", b"")
        try:
            return self._broadcast(tx, txid)
        except Exception as exc:  # java-tron: any other exception → OTHER_ERROR
            return Broadcast("OTHER_ERROR", f"Error: {type(exc).__name__}: {exc}", txid)

    def _broadcast(self, tx: tron_pb2.Transaction, txid: bytes) -> Broadcast:
        raw = tx.raw_data
        if not raw.contract:
            return Broadcast("CONTRACT_VALIDATE_ERROR", "Contract validate error : No contract!", txid)
        if len(self.pending) >= self.max_pending:
            return Broadcast("SERVER_BUSY", "Server busy.", txid)
        if raw.expiration < self.head_time + BLOCK_INTERVAL_MS:
            return Broadcast("TRANSACTION_EXPIRATION_ERROR", "Transaction expired", txid)
        try:
            type_name, contract = codec.unpack_contract(tx)
        except codec.CodecError as exc:
            return Broadcast("CONTRACT_VALIDATE_ERROR", f"Contract validate error : {exc}", txid)
        if not self.pending and not self._pinned:
            self.pending_ts = self.next_slot_time()
        view = self.pending_view
        try:
            self.check_signature(tx, txid, type_name, contract, World(view))
        except SignatureCheckError as exc:
            return Broadcast("SIGERROR", f"Validate signature error: {exc}", txid)
        if not self.check_tapos(raw):
            return Broadcast("TAPOS_ERROR", "Tapos check error.", txid)
        size_no_ret = _size_without_ret(tx)
        if size_no_ret + 2 * MAX_RESULT_SIZE_IN_TX > MAX_TX_SIZE:
            size = size_no_ret + 2 * MAX_RESULT_SIZE_IN_TX
            return Broadcast(
                "TOO_BIG_TRANSACTION_ERROR",
                f"Too big transaction with result, TxId {txid.hex()}, the size is {size} bytes, "
                f"maxTxSize {MAX_TX_SIZE}",
                txid,
            )
        if raw.expiration <= self.head_time or raw.expiration > self.head_time + MAX_TIME_UNTIL_EXPIRATION_MS:
            return Broadcast("TRANSACTION_EXPIRATION_ERROR", "Transaction expired", txid)
        if txid in self.tx_index or txid in self.pending_ids:
            return Broadcast("DUP_TRANSACTION_ERROR", "Dup transaction.", txid)
        result = self._process(tx, txid, type_name, contract, size_no_ret)
        if isinstance(result, Broadcast):
            return result
        return Broadcast("SUCCESS", "", txid)

    def _process(
        self, tx: tron_pb2.Transaction, txid: bytes, type_name: str, contract: Any, size_no_ret: int
    ) -> Broadcast | PendingTx:
        """Fees then actuator, into a per-tx overlay merged into the pending view on success."""
        layer = Overlay(self.pending_view)
        world = World(layer)
        now_ms = self.pending_ts
        owner_addr = contract.owner_address
        owner = world.account_for_update(owner_addr)
        if owner is None:
            return Broadcast(
                "CONTRACT_VALIDATE_ERROR",
                f"Contract validate error : account [{_b58(owner_addr)}] does not exist",
                txid,
            )
        new_account = creates_account(world, type_name, contract)
        if new_account:
            size = size_no_ret - 65 * len(tx.signature)
            limit = self.params["getMaxCreateAccountTxSize"]
            if size > limit:
                return Broadcast(
                    "TOO_BIG_TRANSACTION_ERROR",
                    f"Too big new account transaction, TxId {txid.hex()}, the size is {size} bytes, "
                    f"maxTxSize {limit}",
                    txid,
                )
        try:
            nbytes = tx_bytes(size_no_ret)
            net = consume_bandwidth(world, self.params, owner, nbytes, new_account, now_ms)
            extra = 0
            if len(tx.signature) > 1:
                extra += self._charge(owner, self.params.multi_sign_fee)
            if tx.raw_data.data:
                extra += self._charge(owner, self.params.memo_fee)
        except ResourceInsufficient:
            return Broadcast("BANDWITH_ERROR", "Account resource insufficient error.", txid)
        world.put_account(owner)
        ctx = Ctx(
            world=world,
            params=self.params,
            type_name=type_name,
            contract=contract,
            txid=txid,
            now_ms=now_ms,
            block_number=self.head_number + 1,
            fee_limit=tx.raw_data.fee_limit,
            vm=self.vm,
            block_ctx=self.block_context(self.head_number + 1, now_ms),
        )
        try:
            outcome = run(ctx)
        except ContractValidateError as exc:
            return Broadcast("CONTRACT_VALIDATE_ERROR", f"Contract validate error : {exc.message}", txid)
        except ContractExeError as exc:
            return Broadcast("CONTRACT_EXE_ERROR", f"Contract execute error : {exc.message}", txid)
        layer.merge()
        entry = PendingTx(tx, txid, outcome, net, extra)
        self.pending.append(entry)
        self.pending_ids.add(txid)
        return entry

    @staticmethod
    def _charge(acc: Any, fee: int) -> int:
        if fee <= 0:
            return 0
        if acc.balance < fee:
            raise ResourceInsufficient("Account resource insufficient error.")
        acc.balance -= fee
        return fee

    # ---- signatures ----------------------------------------------------------------------------------------
    def check_signature(
        self, tx: tron_pb2.Transaction, txid: bytes, type_name: str, contract: Any, world: World
    ) -> None:
        """TransactionCapsule.validateSignature / checkWeight; raises SignatureCheckError(java-tron text)."""
        sigs = list(tx.signature)
        if not sigs:
            raise SignatureCheckError("miss sig or contract")
        if len(sigs) > self.params.total_sign_num:
            raise SignatureCheckError("too many signatures")
        permission = self.permission_for(tx, contract, world)
        weight, _ = self.signature_weight(sigs, txid, permission)
        if weight < permission.threshold:
            raise SignatureCheckError("sig error")

    def permission_for(self, tx: tron_pb2.Transaction, contract: Any, world: World) -> Any:
        owner = contract.owner_address
        c = tx.raw_data.contract[0]
        pid = c.Permission_id
        acc = world.account(owner)
        perm = permission_by_id(acc, owner, pid)
        if perm is None:
            raise SignatureCheckError("permission isn't exit")
        if pid != 0:
            if perm.type != 2:
                raise SignatureCheckError("Permission type is error")
            ops = perm.operations
            t = c.type
            if len(ops) != 32 or not ops[t // 8] & (1 << (t % 8)):
                raise SignatureCheckError("Permission denied")
        return perm

    @staticmethod
    def signature_weight(sigs: Iterable[bytes], txid: bytes, permission: Any) -> tuple[int, list[bytes]]:
        sigs = list(sigs)
        if len(sigs) > len(permission.keys):
            raise SignatureCheckError(
                f"Signature count is {len(sigs)} more than key counts of permission : {len(permission.keys)}"
            )
        seen: list[bytes] = []
        total = 0
        for sig in sigs:
            if len(sig) < 65:
                raise SignatureCheckError(f"Signature size is {len(sig)}", "SIGNATURE_FORMAT_ERROR")
            try:
                signer = crypto.recover_address(txid, bytes(sig))
            except crypto.SignatureError as exc:
                raise SignatureCheckError(str(exc), "COMPUTE_ADDRESS_ERROR") from None
            w = permission.weight_of(signer)
            if w == 0:
                raise SignatureCheckError(
                    f"{bytes(sig).hex()} is signed by {_b58(signer)} but it is not contained of permission."
                )
            if signer in seen:
                raise SignatureCheckError(f"{_b58(signer)} has signed twice!")
            seen.append(signer)
            total += w
        return total, seen

    def check_tapos(self, raw: tron_pb2.Transaction.raw) -> bool:
        ref = bytes(raw.ref_block_bytes)
        return len(ref) == 2 and self.tapos.get(ref) == bytes(raw.ref_block_hash)

    # ---- blocks --------------------------------------------------------------------------------------------
    def produce_block(self, timestamp_ms: int | None = None, *, min_time: int = 0) -> tron_pb2.Block:
        ts = timestamp_ms if timestamp_ms is not None else self.next_slot_time()
        ts = max(ts, self.head_time + 1, min_time)
        if any(p.tx.raw_data.expiration < ts for p in self.pending):
            self._rebuild([p.tx for p in self.pending if p.tx.raw_data.expiration >= ts], ts)
        number = self.head_number + 1
        world = World(self.pending_view)
        world.set_glob("block_time", ts)
        self._block_effects(world, number, ts)
        block = tron_pb2.Block()
        infos: list[tron_pb2.TransactionInfo] = []
        for p in self.pending:
            t = block.transactions.add()
            t.CopyFrom(p.tx)
            del t.ret[:]
            ret = t.ret.add()
            # TransactionCapsule.setResultCode: only contractRet; the actuator's fee (e.g. account creation)
            # is reported by TransactionInfo.fee, never in the block's ret
            ret.contractRet = RESULT_CODES.Value(p.outcome.ret)
            infos.append(self._info(p, number, ts))
        raw = block.block_header.raw_data
        raw.number = number
        raw.timestamp = ts
        raw.parentHash = self.block_ids[-1]
        raw.txTrieRoot = tx_trie_root([t.SerializeToString() for t in block.transactions])
        raw.witness_address = self.witness_address
        raw.version = BLOCK_VERSION
        block.block_header.witness_signature = crypto.sign(
            crypto.sha256(raw.SerializeToString()), self.witness_key
        )
        self._append_block(block, infos, self.pending_view.writes)
        self._reset_pending()
        if self.solid_number - self._last_compact >= COMPACT_EVERY:
            self.store.compact(self.solid_number)
            self._last_compact = self.solid_number
        return block

    def _block_effects(self, world: World, number: int, ts: int) -> None:
        pay_block_rewards(world, self.params, self.witness_address)
        wit = world.witness(self.witness_address)
        if wit is not None:
            wit = wit.clone()
            wit.total_produced += 1
            wit.latest_block_num = number
            wit.latest_slot_num = ts // BLOCK_INTERVAL_MS
            world.put_witness(wit)
        next_maint = world.glob("next_maintenance", 0)
        interval = self.params["getMaintenanceTimeInterval"]
        if next_maint == 0 or ts >= next_maint:
            for addr in world.witness_addresses():
                w = world.witness(addr)
                if w is not None and w.vote_count != live_votes(world, addr):
                    w = w.clone()
                    w.vote_count = live_votes(world, addr)
                    world.put_witness(w)
            base = next_maint if next_maint else ts
            while base <= ts:
                base += max(interval, BLOCK_INTERVAL_MS)
            world.set_glob("next_maintenance", base)

    def _info(self, p: PendingTx, number: int, ts: int) -> tron_pb2.TransactionInfo:
        o = p.outcome
        info = tron_pb2.TransactionInfo()
        info.id = p.txid
        info.blockNumber = number
        info.blockTimeStamp = ts
        info.contractResult.append(o.contract_result)
        if o.contract_address:
            info.contract_address = o.contract_address
        r = info.receipt
        r.net_usage = p.net.net_usage
        r.net_fee = p.net.net_fee
        energy_fee = 0
        if o.energy is not None:
            r.energy_usage = o.energy.energy_usage
            r.energy_fee = o.energy.energy_fee
            r.origin_energy_usage = o.energy.origin_energy_usage
            r.energy_usage_total = o.energy.energy_usage_total
            r.energy_penalty_total = o.energy.energy_penalty_total
            energy_fee = o.energy.energy_fee
        if o.is_vm:
            r.result = RESULT_CODES.Value(o.ret)
        info.fee = o.fee + p.net.net_fee + energy_fee + p.extra_fee
        for log in o.logs:
            entry = info.log.add()
            entry.address = log.address
            entry.topics.extend(log.topics)
            entry.data = log.data
        if o.ret not in ("SUCCESS", "DEFAULT"):
            info.result = tron_pb2.TransactionInfo.FAILED
            info.resMessage = o.res_message.encode()
        if o.withdraw_amount:
            info.withdraw_amount = o.withdraw_amount
        if o.unfreeze_amount:
            info.unfreeze_amount = o.unfreeze_amount
        if o.withdraw_expire_amount:
            info.withdraw_expire_amount = o.withdraw_expire_amount
        for k, v in o.cancel_unfreeze.items():
            info.cancel_unfreezeV2_amount[k] = v
        return info

    def _append_block(
        self,
        block: tron_pb2.Block,
        infos: list[tron_pb2.TransactionInfo],
        writes: dict[Any, Any],
        persist: bool = True,
    ) -> None:
        number = block.block_header.raw_data.number
        bid = codec.block_id(block.block_header.raw_data)
        self.store.commit(number, writes)
        self.blocks.append(block)
        self.block_ids.append(bid)
        self.infos.append(infos)
        self.id_index[bid] = number
        for i, info in enumerate(infos):
            self.tx_index[bytes(info.id)] = Included(number, i)
        self.tapos[bid[6:8]] = bid[8:16]
        if persist and self._db is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO blocks (num, block, infos, writes) VALUES (?, ?, ?, ?)",
                (
                    number,
                    block.SerializeToString(),
                    pickle.dumps([i.SerializeToString() for i in infos]),
                    pickle.dumps(writes, protocol=pickle.HIGHEST_PROTOCOL),
                ),
            )

    def _reset_pending(self) -> None:
        self.pending = []
        self.pending_ids = set()
        self.pending_view = Overlay(self.store.at())
        self.pending_ts = self.next_slot_time()

    def drop_pending(self, txid: bytes) -> bool:
        if txid not in self.pending_ids:
            return False
        self._rebuild([p.tx for p in self.pending if p.txid != txid], self.pending_ts)
        return True

    def _rebuild(self, txs: list[tron_pb2.Transaction], ts: int) -> None:
        """Re-run `txs` into a fresh pending view with block time `ts` (invalid ones drop out)."""
        self._reset_pending()
        self.pending_ts = ts
        self._pinned = True
        try:
            for tx in txs:
                self.broadcast(tx)
        finally:
            self._pinned = False

    # ---- forks ---------------------------------------------------------------------------------------------
    def fork(self, k: int, reinclude: bool = False) -> list[tron_pb2.Block]:
        if k < 1:
            raise ValueError("k must be >= 1")
        if self.head_number - k < self.solid_number:
            raise ValueError(
                f"cannot fork {k} blocks: only {self.head_number - self.solid_number} are not solidified"
            )
        base = self.head_number - k
        old_times = [b.block_header.raw_data.timestamp for b in self.blocks[base + 1 :]]
        orphaned = [t for b in self.blocks[base + 1 :] for t in b.transactions]
        pending = [p.tx for p in self.pending]
        for n in range(self.head_number, base, -1):
            bid = self.block_ids[n]
            for info in self.infos[n]:
                self.tx_index.pop(bytes(info.id), None)
            self.id_index.pop(bid, None)
            older = n - TAPOS_SLOTS
            if older >= 0:
                self.tapos[bid[6:8]] = self.block_ids[older][8:16]
            else:
                self.tapos.pop(bid[6:8], None)
        del self.blocks[base + 1 :]
        del self.block_ids[base + 1 :]
        del self.infos[base + 1 :]
        self.store.rollback(base)
        if self._db is not None:
            self._db.execute("DELETE FROM blocks WHERE num > ?", (base,))
        self._reset_pending()
        resend: list[tron_pb2.Transaction] = []
        if reinclude:
            for t in orphaned:
                clean = tron_pb2.Transaction()
                clean.CopyFrom(t)
                del clean.ret[:]
                resend.append(clean)
        resend.extend(pending)
        new_blocks: list[tron_pb2.Block] = []
        for i in range(k + 1):
            floor = old_times[i] + self.block_time_ms if i < len(old_times) else 0
            if i == 1:  # after one empty block, so re-included txs land in a different block
                for t in resend:
                    self.broadcast(t)
            new_blocks.append(self.produce_block(min_time=floor))
        return new_blocks

    # ---- queries -------------------------------------------------------------------------------------------
    def block(self, n: int, solid: bool = False) -> tron_pb2.Block | None:
        top = self.solid_number if solid else self.head_number
        return self.blocks[n] if 0 <= n <= top else None

    def block_by_id(self, bid: bytes, solid: bool = False) -> tron_pb2.Block | None:
        n = self.id_index.get(bytes(bid))
        return None if n is None else self.block(n, solid)

    def included(self, txid: bytes, solid: bool = False) -> Included | None:
        inc = self.tx_index.get(bytes(txid))
        if inc is None or (solid and inc.number > self.solid_number):
            return None
        return inc


def _size_without_ret(tx: tron_pb2.Transaction) -> int:
    if not tx.ret:
        return tx.ByteSize()
    clean = tron_pb2.Transaction()
    clean.raw_data.CopyFrom(tx.raw_data)
    clean.signature.extend(tx.signature)
    return clean.ByteSize()


def tx_trie_root(leaves: list[bytes]) -> bytes:
    """MerkleTree.java: sha256 leaves, pairwise sha256(left‖right), odd node promoted; empty → zeros."""
    if not leaves:
        return bytes(32)
    level = [crypto.sha256(x) for x in leaves]
    while len(level) > 1:
        nxt = [crypto.sha256(level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _b58(addr: bytes) -> str:
    try:
        return crypto.to_base58(bytes(addr))
    except Exception:
        return bytes(addr).hex()
