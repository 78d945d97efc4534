"""The energy broker: staked energy from the cluster's staking wallet, delegated just in time to the addresses
about to send, and taken back when they go idle.

A request ("address A needs E energy") reads A's free energy (limit - used). If it is short, the broker
delegates the whole TRX whose stake yields the missing energy at the network's TotalEnergyLimit /
TotalEnergyWeight (at least 1 TRX), within the per-address maximum and the total budget, and waits (at most
STAKING_BROKER_WAIT_SECONDS) until the delegation is in a block.

One document per address (`broker_grants`, _id = the address) says what the broker delegates to it
(`held_sun`) and whether an operation is on its way (state DELEGATING or RECLAIMING, `op_id`,
`pending_sun`). Starting one is a single write guarded on (state STEADY, seq), so concurrent requests for
the same address, on any replica, start one delegation; the others wait for it and then find the energy
there. The operation id derives from (address, seq): whoever finishes a claim whose creator died creates
the same operation, and the lifecycle creates an id once.

The budget is one document (`broker_budget`): `reserved_sun` and a hold per delegation operation
(`holds.<op id>`), taken with one write guarded on "this hold does not exist and reserved + amount <=
budget" and released with one write guarded on the hold: each exactly once, whatever retries.

Delegations and undelegations are staking operations (operations.py, origin "broker"); the broker follows
them through the lifecycle's transitions and, after a crash, through its sweep (every
STAKING_BROKER_SWEEP_SECONDS), which also takes back what an address has not used for
STAKING_BROKER_IDLE_SECONDS, once no lock holds it (lock expiry = the including block's time + lock
blocks x 3 s, read from the chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError
from tronpay.common.v1 import common_pb2
from tronpay.trx_staking.v1 import trx_staking_pb2 as pb

from services.common import context, errors
from services.common.chain_ops import Operation, OpState, operation_id
from services.common.logging import get_logger
from services.common.mongo import IndexSpec
from services.common.server import Runtime
from services.trx_staking.chain import Chain, EnergyRate
from services.trx_staking.operations import BROKER, StakingOperations
from services.trx_staking.rules import BLOCK_MS, Facts, Intent, Kind
from services.trx_staking.settings import TRX, TrxStakingSettings

log = get_logger("trx_staking.broker")

GRANTS, BUDGET = "broker_grants", "broker_budget"
INDEXES = (IndexSpec(GRANTS, [("state", 1), ("held_sun", 1), ("last_use", 1)], name="state_held_last_use"),)
BUDGET_ID = "budget"
STEADY, DELEGATING, RECLAIMING = "STEADY", "DELEGATING", "RECLAIMING"
POLL_SECONDS = 0.25  # a waiting request reads its grant again this often
ENERGY = common_pb2.RESOURCE_TYPE_ENERGY
Outcome = pb.RequestEnergyResponse

REQUESTS = Counter(
    "tronpay_staking_broker_requests_total",
    "Energy requests answered, by outcome and refusal reason.",
    ["outcome", "reason"],
)
ENERGY_DELEGATED = Histogram(
    "tronpay_staking_broker_energy_delegated",
    "Energy the broker delegated for one request (0 when the address already had it).",
    buckets=(0, 10_000, 30_000, 65_000, 130_000, 300_000, 1_000_000, 10_000_000, 100_000_000),
)
DELEGATED_SUN = Gauge(
    "tronpay_staking_broker_delegated_sun",
    "Staked TRX the broker delegates, including delegations on their way.",
)
UNPREVENTED_BURN = Counter(
    "tronpay_staking_broker_unprevented_burn_sun_total",
    "TRX refused requests may burn instead: the energy short at the current price, at most "
    "STAKING_BROKER_MAX_BURN_SUN each (an upper bound; callers count what they burn).",
)


def _now() -> datetime:
    return datetime.now(UTC)


class Refusal(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Grant:
    """An address's broker document, typed (a missing one is STEADY with nothing held, seq 0)."""

    address: str
    state: str = STEADY
    seq: int = 0
    held_sun: int = 0
    pending_sun: int = 0
    op_id: str = ""
    hold_ops: tuple[str, ...] = ()
    lock_until_ms: int = 0
    last_use: datetime | None = None
    lease_until: datetime | None = None
    exists: bool = False

    @classmethod
    def of(cls, address: str, doc: dict[str, Any] | None) -> Grant:
        if doc is None:
            return cls(address)
        return cls(
            address, doc["state"], int(doc["seq"]), int(doc.get("held_sun", 0)),
            int(doc.get("pending_sun", 0)), doc.get("op_id", ""), tuple(doc.get("hold_ops", ())),
            int(doc.get("lock_until_ms", 0)), doc.get("last_use"), doc.get("lease_until"), True,
        )  # fmt: skip


class Budget:
    """The total of what the broker delegates (see the module docstring)."""

    def __init__(self, rt: Runtime[TrxStakingSettings]) -> None:
        self._col = rt.db.collection(BUDGET)
        self._limit = rt.settings.STAKING_BROKER_BUDGET_SUN

    async def reserve(self, hold: str, amount: int) -> bool:
        """Hold `amount` for the operation `hold` (once); False when the budget cannot."""
        await self._col.update_one(
            {"_id": BUDGET_ID}, {"$setOnInsert": {"reserved_sun": 0, "holds": {}}}, upsert=True
        )
        taken = await self._col.find_one_and_update(
            {
                "_id": BUDGET_ID,
                f"holds.{hold}": {"$exists": False},
                "reserved_sun": {"$lte": self._limit - amount},
            },
            {"$inc": {"reserved_sun": amount}, "$set": {f"holds.{hold}": amount}},
            return_document=ReturnDocument.AFTER,
        )
        if taken is not None:
            DELEGATED_SUN.set(taken["reserved_sun"])
            return True
        return await self._col.find_one({"_id": BUDGET_ID, f"holds.{hold}": {"$exists": True}}) is not None

    async def release(self, hold: str) -> None:
        """Give back the operation's hold (once; nothing when there is none)."""
        doc = await self._col.find_one({"_id": BUDGET_ID, f"holds.{hold}": {"$exists": True}})
        if doc is None:
            return
        amount = doc["holds"][hold]
        done = await self._col.find_one_and_update(
            {"_id": BUDGET_ID, f"holds.{hold}": amount},
            {"$inc": {"reserved_sun": -amount}, "$unset": {f"holds.{hold}": ""}},
            return_document=ReturnDocument.AFTER,
        )
        if done is not None:
            DELEGATED_SUN.set(done["reserved_sun"])

    async def reserved(self) -> int:
        doc = await self._col.find_one({"_id": BUDGET_ID})
        return int(doc["reserved_sun"]) if doc else 0


class EnergyBroker:
    """See the module docstring."""

    def __init__(self, rt: Runtime[TrxStakingSettings], chain: Chain, ops: StakingOperations) -> None:
        s = rt.settings
        self._settings = s
        self._chain = chain
        self._ops = ops
        self._col = rt.db.collection(GRANTS)
        self._budget = Budget(rt)
        self._lease = timedelta(seconds=s.STAKING_LEASE_SECONDS)
        self._staking_address = ""
        self._sweeper: asyncio.Task[None] | None = None
        ops.listen(self._moved)

    def start(self) -> None:
        if self._settings.STAKING_WALLET_ID:
            self._sweeper = asyncio.create_task(self._sweep())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    async def staking_address(self) -> str:
        """The staking wallet's address (read once)."""
        if not self._staking_address:
            s = self._settings
            self._staking_address = await self._ops.owner_of(
                s.STAKING_WALLET_ID, s.STAKING_WALLET_ADDRESS, "STAKING_WALLET_ADDRESS"
            )
        return self._staking_address

    # ---- requests ---------------------------------------------------------------------------------
    async def request(self, address: str, energy: int) -> pb.RequestEnergyResponse:
        """Answer one request (see RequestEnergy in the contract). The broker's chain work is the cluster's,
        not the end user's: it runs without the forwarded identity (a tenant's token must not hide the
        staking wallet from the wallet manager)."""
        ctx = context.current()
        token = context.bind(context.CallContext(
            request_id=ctx.request_id if ctx else context.new_request_id(), caller=ctx.caller if ctx else "",
            method=ctx.method if ctx else "",
        ))  # fmt: skip
        try:
            answer = await self._request(address, energy)
        except Refusal as r:
            answer = await self._refused(address, energy, r.reason)
        finally:
            context.reset(token)
        REQUESTS.labels(Outcome.Outcome.Name(answer.outcome), answer.refusal_reason).inc()
        return answer

    async def _refused(self, address: str, energy: int, reason: str) -> pb.RequestEnergyResponse:
        s = self._settings
        out = Outcome(outcome=Outcome.OUTCOME_REFUSED, refusal_reason=reason, address=address,
                      burn_allowed=s.STAKING_BROKER_BURN_FALLBACK)  # fmt: skip
        if s.STAKING_BROKER_BURN_FALLBACK:
            out.max_burn_sun = s.STAKING_BROKER_MAX_BURN_SUN
        with contextlib.suppress(errors.DomainError):
            res = await self._chain.resources(address)
            out.energy_available = max(0, res.energy_limit - res.energy_used)
            if s.STAKING_BROKER_BURN_FALLBACK:
                short = max(0, energy - out.energy_available)
                UNPREVENTED_BURN.inc(min(out.max_burn_sun, short * await self._chain.energy_price()))
        return out

    async def _request(self, address: str, energy: int) -> pb.RequestEnergyResponse:
        if not self._settings.STAKING_WALLET_ID:
            raise Refusal("BROKER_NOT_CONFIGURED")
        try:
            staking = await self.staking_address()
        except errors.DomainError as exc:
            log.error("the staking wallet cannot be used: %s", exc.reason)
            raise Refusal(exc.reason) from None
        if address == staking:
            raise Refusal("STAKING_ADDRESS")
        deadline = time.monotonic() + self._settings.STAKING_BROKER_WAIT_SECONDS
        delegated_here, waited_on = 0, ""  # what this request delegated; the delegation it waited for
        while True:
            grant = await self._grant(address)
            if grant.state != STEADY:
                await self._settle(grant)
                grant = await self._grant(address)
            in_block = False
            if grant.state == DELEGATING:
                op = await self._ops.get(grant.op_id)
                in_block = op is not None and op.state in (OpState.INCLUDED, OpState.CONFIRMED)
            res = await self._chain.resources(address)
            free = max(0, res.energy_limit - res.energy_used)
            if free >= energy and grant.state != RECLAIMING:
                if grant.state == STEADY and grant.held_sun and not await self._touch(grant):
                    continue  # a reclaim started meanwhile: read again
                provider = grant.op_id if in_block else waited_on
                rate = EnergyRate(res.total_energy_limit, res.total_energy_weight)
                ENERGY_DELEGATED.observe(rate.energy_of(delegated_here // TRX))
                return Outcome(
                    outcome=Outcome.OUTCOME_DELEGATED if provider else Outcome.OUTCOME_AVAILABLE,
                    address=address, energy_available=free, delegated_sun=delegated_here,
                    operation_id=provider, held_sun=grant.held_sun + grant.pending_sun,
                )  # fmt: skip
            if grant.state == STEADY:
                op_id, amount = await self._delegate(grant, res, energy, staking)
                if op_id:
                    delegated_here, waited_on = amount, op_id
                continue
            if grant.state == DELEGATING:  # someone's delegation is on its way (or in, but too small): wait
                waited_on = grant.op_id
            if time.monotonic() >= deadline:
                return Outcome(outcome=Outcome.OUTCOME_PENDING, address=address, energy_available=free,
                               delegated_sun=delegated_here, operation_id=waited_on,
                               held_sun=grant.held_sun + grant.pending_sun)  # fmt: skip
            await asyncio.sleep(POLL_SECONDS)

    async def _delegate(self, grant: Grant, res: Any, energy: int, staking: str) -> tuple[str, int]:
        """Start the delegation that covers `energy` (its op id and amount), or ("", 0) when another request
        started one first. Refusal when the policy, the budget or the stake does not allow it."""
        s = self._settings
        account = await self._chain.account(grant.address)
        if not account.exists:
            raise Refusal("RECEIVER_NOT_ACTIVATED")
        rate = EnergyRate(res.total_energy_limit, res.total_energy_weight)
        own = (
            sum(f.amount_sun for f in account.frozen if f.resource == ENERGY)
            + account.acquired_delegated_energy_sun
        )
        try:
            trx = max(1, rate.trx_for(res.energy_used + energy, own // TRX))
        except ValueError:
            raise Refusal("STAKE_EXHAUSTED") from None
        amount = trx * TRX
        if grant.held_sun + amount > s.STAKING_BROKER_MAX_PER_ADDRESS_SUN:
            raise Refusal("ADDRESS_LIMIT_REACHED")
        stake = await self._chain.account(staking)
        if sum(f.amount_sun for f in stake.frozen if f.resource == ENERGY) < amount:
            raise Refusal("STAKE_EXHAUSTED")
        op_id = operation_id("brk", f"{grant.address}:{grant.seq + 1}")
        if not await self._claim(grant, DELEGATING, op_id, amount):
            return "", 0
        if not await self._budget.reserve(op_id, amount):
            await self._abandon(grant.address, op_id, "BUDGET_EXHAUSTED")
            raise Refusal("BUDGET_EXHAUSTED")
        await self._create(Kind.DELEGATE, grant.address, op_id, amount, staking)
        return op_id, amount

    async def _create(self, kind: Kind, address: str, op_id: str, amount: int, staking: str) -> None:
        """The broker's delegation or undelegation operation (created once); a refusal gives back the claim
        (and a delegation's budget hold) and is the request's refusal."""
        lock = self._settings.STAKING_BROKER_LOCK_BLOCKS if kind is Kind.DELEGATE else 0
        intent = Intent(kind, staking, amount, ENERGY, address, lock)
        try:
            await self._ops.create(
                op_id, intent, request_id=op_id, fingerprint=op_id,
                wallet_id=self._settings.STAKING_WALLET_ID, origin=BROKER, extra={"broker_address": address},
                facts=Facts(),
            )  # fmt: skip
        except (errors.FailedPrecondition, errors.PermissionDenied, errors.NotFound) as exc:
            log.error("the staking wallet refused a broker operation", extra={"fields": {
                "op": op_id, "reason": exc.reason, "message": exc.message}})  # fmt: skip
            await self._give_up(kind, address, op_id, exc.reason)
            raise Refusal(exc.reason) from None
        except Exception:  # out of reach: give the claim up unless the operation exists after all
            if await self._ops.get(op_id) is None:
                await self._give_up(kind, address, op_id, "UNAVAILABLE")
            raise

    async def _give_up(self, kind: Kind, address: str, op_id: str, why: str) -> None:
        if kind is Kind.DELEGATE:
            await self._budget.release(op_id)
        await self._abandon(address, op_id, why)

    # ---- the grant document -----------------------------------------------------------------------
    async def _grant(self, address: str) -> Grant:
        return Grant.of(address, await self._col.find_one({"_id": address}))

    async def _claim(self, grant: Grant, state: str, op_id: str, amount: int) -> bool:
        """Start an operation for the address: one guarded write (or the insert of its first document)."""
        now = _now()
        new = {"state": state, "op_id": op_id, "pending_sun": amount, "seq": grant.seq + 1,
               "lease_until": now + self._lease, "last_error": ""}  # fmt: skip
        if not grant.exists:
            try:
                await self._col.insert_one(
                    {
                        "_id": grant.address,
                        "held_sun": 0,
                        "hold_ops": [],
                        "lock_until_ms": 0,
                        "last_use": now,
                        **new,
                    }
                )
            except DuplicateKeyError:
                return False
            return True
        guard = {"_id": grant.address, "state": STEADY, "seq": grant.seq}
        if state == RECLAIMING:
            guard["last_use"] = grant.last_use  # a request used it meanwhile: not idle after all
        return await self._col.find_one_and_update(guard, {"$set": new}) is not None

    async def _abandon(self, address: str, op_id: str, why: str) -> None:
        """Back to STEADY without the operation `op_id` (never created, or ended without effect)."""
        await self._col.update_one(
            {"_id": address, "op_id": op_id, "state": {"$ne": STEADY}},
            {"$set": {"state": STEADY, "pending_sun": 0, "last_error": why, "last_use": _now()}},
        )

    async def _touch(self, grant: Grant) -> bool:
        """Note a use of what the address holds; False when it is being taken back."""
        done = await self._col.find_one_and_update(
            {"_id": grant.address, "state": STEADY, "seq": grant.seq}, {"$set": {"last_use": _now()}}
        )
        return done is not None

    # ---- following the operations -----------------------------------------------------------------
    async def _moved(self, op: Operation, old: OpState) -> None:
        address = op.doc.get("broker_address")
        if address and op.state in (OpState.CONFIRMED, OpState.FAILED, OpState.EXPIRED):
            await self._settle(await self._grant(address))

    async def _settle(self, grant: Grant) -> None:
        """Finish what the grant's operation did (or, if its creator died before creating it, create it or
        give the claim up)."""
        if grant.state == STEADY:
            return
        op = await self._ops.get(grant.op_id)
        if op is None:
            await self._recover(grant)
            return
        if op.state in (OpState.FAILED, OpState.EXPIRED):
            if grant.state == DELEGATING:
                await self._budget.release(op.id)
            await self._abandon(grant.address, op.id, op.failure_reason or op.state.value)
            return
        if op.state is not OpState.CONFIRMED:
            return
        if grant.state == DELEGATING:
            lock = self._settings.STAKING_BROKER_LOCK_BLOCKS
            lock_until = 0
            if lock:
                info = await self._chain.transaction_info(op.current.txid)
                if info is None:
                    return  # the node lags: the sweep comes back
                lock_until = info.block.block_time.ToMilliseconds() + lock * BLOCK_MS
            await self._col.update_one(
                {"_id": grant.address, "op_id": op.id, "state": DELEGATING},
                {"$set": {"state": STEADY, "pending_sun": 0, "last_use": _now(),
                          "lock_until_ms": max(grant.lock_until_ms, lock_until)},
                 "$inc": {"held_sun": grant.pending_sun}, "$addToSet": {"hold_ops": op.id}},
            )  # fmt: skip
        else:
            for hold in grant.hold_ops:
                await self._budget.release(hold)
            await self._col.update_one(
                {"_id": grant.address, "op_id": op.id, "state": RECLAIMING},
                {
                    "$set": {
                        "state": STEADY,
                        "pending_sun": 0,
                        "held_sun": 0,
                        "hold_ops": [],
                        "lock_until_ms": 0,
                    }
                },
            )

    async def _recover(self, grant: Grant) -> None:
        """A claim without its operation: wait for its creator's lease, then take it over and create the
        operation with the same id (or give the claim up when that is refused)."""
        now = _now()
        if grant.lease_until is not None and grant.lease_until > now:
            return
        taken = await self._col.find_one_and_update(
            {
                "_id": grant.address,
                "op_id": grant.op_id,
                "state": grant.state,
                "lease_until": grant.lease_until,
            },
            {"$set": {"lease_until": now + self._lease}},
        )
        if taken is None:
            return
        log.warning("taking over a broker claim whose creator stopped", extra={"fields": {"op": grant.op_id}})
        staking = await self.staking_address()
        kind = Kind.DELEGATE if grant.state == DELEGATING else Kind.UNDELEGATE
        if kind is Kind.DELEGATE and not await self._budget.reserve(grant.op_id, grant.pending_sun):
            await self._abandon(grant.address, grant.op_id, "BUDGET_EXHAUSTED")
            return
        with contextlib.suppress(Refusal):
            await self._create(kind, grant.address, grant.op_id, grant.pending_sun, staking)

    # ---- the sweep --------------------------------------------------------------------------------
    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._settings.STAKING_BROKER_SWEEP_SECONDS)
            try:
                async for doc in self._col.find({"state": {"$ne": STEADY}}).limit(500):
                    await self._settle(Grant.of(doc["_id"], doc))
                await self._reclaim_idle()
                DELEGATED_SUN.set(await self._budget.reserved())
            except (PyMongoError, errors.DomainError) as exc:
                log.warning("broker sweep failed: %s", type(exc).__name__)
            except Exception:  # a bug must not stop the sweep for good
                log.exception("broker sweep failed")

    async def _reclaim_idle(self) -> None:
        """Take back what addresses have not used for STAKING_BROKER_IDLE_SECONDS, once no lock holds it."""
        idle_since = _now() - timedelta(seconds=self._settings.STAKING_BROKER_IDLE_SECONDS)
        idle = self._col.find({"state": STEADY, "held_sun": {"$gt": 0}, "last_use": {"$lt": idle_since}})
        head_ms = 0
        async for doc in idle.limit(100):
            grant = Grant.of(doc["_id"], doc)
            if grant.lock_until_ms:
                head_ms = head_ms or (await self._chain.height()).time_ms
                if grant.lock_until_ms > head_ms:
                    continue
            op_id = operation_id("bru", f"{grant.address}:{grant.seq + 1}")
            if not await self._claim(grant, RECLAIMING, op_id, grant.held_sun):
                continue
            log.info("taking back idle energy", extra={"fields": {"address": grant.address, "op": op_id}})
            with contextlib.suppress(Refusal):
                await self._create(
                    Kind.UNDELEGATE, grant.address, op_id, grant.held_sun, await self.staking_address()
                )
