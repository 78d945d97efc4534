"""Staking operations: the chain's rules (rules.py), then the shared signed-transaction lifecycle
(services.common.chain_ops) with the Stake 2.0 system contract as what it builds.

Every operation, whoever asks for it (an RPC, the energy broker, the treasury automation), goes the same
way: its id comes from its request (so it is created once), the rules are checked against the chain, the
lifecycle stores the operation, builds its transaction through tron-client, signs it through wallet-manager
(the wallet's signing policy decides) and drives it to CONFIRMED, FAILED or EXPIRED. A rebuilt attempt (the
previous transaction provably expired unseen) checks the rules again first.

Each operation has a settlement record of its own (`settlements`, _id = the operation id), written before
the operation is created, so nothing the lifecycle does can lose it: it says who asked (`origin`) and, once
the operation ended, what it did. Settling (`settle`, once, idempotent; after every terminal transition and,
for those a crash skipped, in a sweep) reads for a CONFIRMED operation the amount a withdrawal or claim
actually moved from its receipt and an unstake's withdrawable time from the account, and creates the
follow-ups: the delegation of a stake that named a receiver, the restake of a claim the treasury made with
restaking on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter as Multiset
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from prometheus_client import Counter
from pymongo.errors import DuplicateKeyError, PyMongoError
from tronpay.tron_client.v1 import tron_client_pb2 as tc

from services.common import errors
from services.common.chain_ops import (
    TERMINAL,
    Built,
    Lifecycle,
    LifecycleConfig,
    Operation,
    OpState,
    Refused,
    indexes,
    operation_id,
)
from services.common.logging import get_logger
from services.common.mongo import IndexSpec
from services.common.server import Runtime
from services.trx_staking.chain import Chain
from services.trx_staking.rules import Facts, Intent, Kind, Rules, refuse
from services.trx_staking.settings import TRX, TrxStakingSettings

log = get_logger("trx_staking.operations")

COLLECTION, SETTLEMENTS = "operations", "settlements"
INDEXES: tuple[IndexSpec, ...] = (
    *indexes(COLLECTION),
    IndexSpec(SETTLEMENTS, [("settled", 1), ("create_time", 1)], name="settled_create_time"),
    IndexSpec(SETTLEMENTS, [("signer_address", 1), ("op_kind", 1), ("settled", 1)], name="signer_kind"),
    IndexSpec(SETTLEMENTS, [("origin", 1), ("signer_address", 1), ("settled", 1)], name="origin_signer"),
)
# Operation id prefixes: a request_id names one operation per kind.
PREFIX = {
    Kind.STAKE: "stk", Kind.UNSTAKE: "ust", Kind.WITHDRAW_UNSTAKED: "wdu", Kind.CLAIM_REWARDS: "clm",
    Kind.DELEGATE: "dlg", Kind.UNDELEGATE: "udl", Kind.VOTE: "vot",
}  # fmt: skip
REQUEST, BROKER, TREASURY = "request", "broker", "treasury"  # origins
SWEEP_SECONDS = 10.0
NEVER_CREATED = timedelta(minutes=10)  # a settlement whose operation is still missing then was refused
SETTLED_FIELDS = ("amount_sun", "withdrawable_ms", "delegation_operation_id", "followup_operation_id")

OPERATIONS = Counter(
    "tronpay_staking_operations_total", "Staking operations entering a state, by kind.", ["kind", "state"]
)
REWARDS_CLAIMED = Counter("tronpay_staking_rewards_claimed_sun_total", "Voting rewards claimed (sun).")

Listener = Callable[[Operation, OpState], Awaitable[None]]


def params(intent: Intent) -> dict[str, Any]:
    """The BuildTransactionRequest params of an intent."""
    match intent.kind:
        case Kind.STAKE:
            return {"freeze_balance_v2": tc.FreezeBalanceV2Params(
                amount_sun=intent.amount, resource=intent.resource)}  # type: ignore[arg-type]  # fmt: skip
        case Kind.UNSTAKE:
            return {"unfreeze_balance_v2": tc.UnfreezeBalanceV2Params(
                amount_sun=intent.amount, resource=intent.resource)}  # type: ignore[arg-type]  # fmt: skip
        case Kind.WITHDRAW_UNSTAKED:
            return {"withdraw_expire_unfreeze": tc.WithdrawExpireUnfreezeParams()}
        case Kind.CLAIM_REWARDS:
            return {"withdraw_balance": tc.WithdrawBalanceParams()}
        case Kind.DELEGATE:
            return {"delegate_resource": tc.DelegateResourceParams(
                receiver_address=intent.receiver, amount_sun=intent.amount,
                resource=intent.resource,  # type: ignore[arg-type]
                lock=intent.lock_period > 0, lock_period_blocks=intent.lock_period)}  # fmt: skip
        case Kind.UNDELEGATE:
            return {"undelegate_resource": tc.UnDelegateResourceParams(
                receiver_address=intent.receiver, amount_sun=intent.amount,
                resource=intent.resource)}  # type: ignore[arg-type]  # fmt: skip
        case Kind.VOTE:
            votes = [tc.Vote(witness_address=w, vote_count=n) for w, n in intent.votes]
            return {"vote_witness": tc.VoteWitnessParams(votes=votes)}


def intent_fields(intent: Intent, facts: Facts) -> dict[str, Any]:
    """An intent and its facts as an operation's own fields."""
    out: dict[str, Any] = {
        "op_kind": intent.kind.value, "amount_sun": intent.amount, "resource": intent.resource,
        "receiver_address": intent.receiver, "lock_period_blocks": intent.lock_period,
        "votes": [{"witness_address": w, "vote_count": n} for w, n in intent.votes],
    }  # fmt: skip
    if facts.amount is not None:
        out["amount_sun"] = facts.amount
    if facts.unfreezing_before:
        out["unfreezing_before"] = facts.unfreezing_before
    return out


class StakingOperations:
    """The lifecycle of every staking operation and what comes before and after it."""

    def __init__(self, rt: Runtime[TrxStakingSettings], chain: Chain, rules: Rules) -> None:
        s = rt.settings
        self._settings = s
        self._chain = chain
        self.rules = rules
        self._settlements = rt.db.collection(SETTLEMENTS)
        self._done = rt.db.collection(COLLECTION + "_done")
        config = LifecycleConfig(
            "trx_staking", COLLECTION, max_attempts=s.STAKING_MAX_ATTEMPTS,
            poll_seconds=s.STAKING_POLL_SECONDS, rebroadcast_seconds=s.STAKING_REBROADCAST_SECONDS,
            lease_seconds=s.STAKING_LEASE_SECONDS, concurrency=s.STAKING_DRIVER_CONCURRENCY,
        )  # fmt: skip
        self.lifecycle = Lifecycle(
            rt.db, rt.clients, config, self._build, owner=Lifecycle.default_owner(s.port),
            on_transition=self._moved,
        )  # fmt: skip
        self._listeners: list[Listener] = []
        self._sweeper: asyncio.Task[None] | None = None

    def listen(self, listener: Listener) -> None:
        """Call `listener` after every transition (the broker follows its delegations this way)."""
        self._listeners.append(listener)

    def start(self) -> None:
        self.lifecycle.start()
        self._sweeper = asyncio.create_task(self._sweep())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.lifecycle.stop()

    # ---- creating ---------------------------------------------------------------------------------
    async def owner_of(self, wallet_id: str, address: str, field: str) -> str:
        """The signing address: the wallet's primary one, or `address` if it is one of the wallet's."""
        return await self._chain.signing_address(wallet_id, address, field, refuse)

    async def create(
        self,
        op_id: str,
        intent: Intent,
        *,
        request_id: str,
        fingerprint: str,
        wallet_id: str,
        origin: str,
        extra: dict[str, Any] | None = None,
        facts: Facts | None = None,
    ) -> Operation:
        """The operation `op_id` for `intent`, created once: the rules first (unless the caller checked them
        and passes `facts`), then the lifecycle (which signs the first transaction before answering). The
        same id again returns the stored operation."""
        known = await self.get(op_id)
        if known is not None:
            return self.lifecycle.replayed(known, fingerprint)
        if facts is None:
            facts = await self.rules.check(intent)
        fields = {**intent_fields(intent, facts), "origin": origin, **(extra or {})}
        await self._settlements.update_one(
            {"_id": op_id},
            {"$setOnInsert": {"op_kind": intent.kind.value, "signer_address": intent.owner, "origin": origin,
                              "settled": False, "create_time": datetime.now(UTC)}},
            upsert=True,
        )  # fmt: skip
        try:
            return await self.lifecycle.create(
                op_id, request_id=request_id, fingerprint=fingerprint, wallet_id=wallet_id,
                signer_address=intent.owner, fields=fields,
            )  # fmt: skip
        except Exception:
            if (
                await self.get(op_id) is None
            ):  # refused or out of reach: nothing was stored, nothing to settle
                await self._settlements.delete_one({"_id": op_id, "settled": False})
            raise

    async def get(self, op_id: str) -> Operation | None:
        """The operation, live or ended. (chain_ops moves an ended operation to `<collection>_done`, which its
        Lifecycle.get does not read yet: until it does, that copy is read here.)"""
        op = await self.lifecycle.get(op_id)
        if op is None:
            done = await self._done.find_one({"_id": op_id})
            op = None if done is None else Operation.of(done)
        return op

    async def settlement(self, op: Operation) -> dict[str, Any]:
        """What an ended operation did ({} while it runs); settled here if the transition's settling has not
        happened yet, so an operation is never shown CONFIRMED without its results."""
        if op.state not in TERMINAL:
            return {}
        doc = await self._settlements.find_one({"_id": op.id, "settled": True})
        if doc is None:
            await self.settle(op)
            doc = await self._settlements.find_one({"_id": op.id, "settled": True}) or {}
        return {k: doc[k] for k in SETTLED_FIELDS if k in doc}

    async def active(self, *, origin: str, signer: str) -> bool:
        """Whether an operation of this origin and signer has not ended (been settled) yet."""
        found = await self._settlements.find_one(
            {"origin": origin, "signer_address": signer, "settled": False}
        )
        return found is not None

    async def claimed_total(self, address: str) -> int:
        """Rewards the cluster claimed for `address` (settled claims), in sun."""
        cursor = self._settlements.find(
            {"signer_address": address, "op_kind": Kind.CLAIM_REWARDS.value, "settled": True},
            {"amount_sun": 1},
        )
        return sum([int(d.get("amount_sun", 0)) async for d in cursor])

    # ---- building (the lifecycle's Builder) -------------------------------------------------------
    async def _build(self, op: Operation, attempt: int) -> Built:
        intent = Intent.of(dict(op.doc))
        fields: dict[str, Any] = {}
        if attempt > 1:  # the chain moved on since the request: check again before signing anything new
            try:
                facts = await self.rules.check(intent)
            except errors.FailedPrecondition as exc:
                raise Refused(exc.reason, exc.message, exc.metadata) from None
            fresh = intent_fields(intent, facts)
            fields = {k: fresh[k] for k in ("amount_sun", "unfreezing_before") if k in fresh}
        try:
            tx = await self._chain.build(
                intent.owner, self._settings.STAKING_TX_EXPIRATION_SECONDS, **params(intent)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
                raise Refused(
                    "BUILD_REFUSED", f"tron-client cannot build the transaction: {exc.details()}"
                ) from None
            raise
        return Built(tx, 0, fields)

    # ---- after a transition -----------------------------------------------------------------------
    async def _moved(self, op: Operation, old: OpState) -> None:
        if op.state is not old:
            OPERATIONS.labels(op.doc.get("op_kind", ""), op.state.value).inc()
        if op.state in TERMINAL:
            try:
                await self.settle(op)
            except Exception:  # the sweep settles it later
                log.exception("settling failed", extra={"fields": {"op": op.id}})
        for listener in self._listeners:
            try:
                await listener(op, old)
            except Exception:  # a listener repairs its own state in its sweep
                log.exception("transition listener failed", extra={"fields": {"op": op.id}})

    async def settle(self, op: Operation) -> None:
        """The work after a terminal state (see the module docstring), once per operation."""
        d = op.doc
        kind = Kind(d["op_kind"])
        changes: dict[str, Any] = {"settled": True}
        if op.state is OpState.CONFIRMED:
            changes.update(await self._results(op, kind))
        base = {
            "op_kind": kind.value,
            "signer_address": op.signer_address,
            "origin": d.get("origin", REQUEST),
        }
        try:
            before = await self._settlements.find_one_and_update(
                {"_id": op.id, "settled": {"$ne": True}},
                {"$set": changes, "$setOnInsert": {**base, "create_time": op.create_time}},
                upsert=True,
            )
        except DuplicateKeyError:  # settled already
            return
        if (
            kind is Kind.CLAIM_REWARDS
            and "amount_sun" in changes
            and (before is None or not before["settled"])
        ):
            REWARDS_CLAIMED.inc(changes["amount_sun"])

    async def _results(self, op: Operation, kind: Kind) -> dict[str, Any]:
        """What a confirmed operation did, and its follow-ups."""
        d = op.doc
        if kind in (Kind.WITHDRAW_UNSTAKED, Kind.CLAIM_REWARDS):
            info = await self._chain.transaction_info(op.current.txid)
            if info is None:  # the node lags behind the solidified block it reported
                raise errors.Unavailable("the receipt is not there yet", reason="RECEIPT_NOT_FOUND")
            got = info.withdraw_amount_sun if kind is Kind.CLAIM_REWARDS else info.withdraw_expire_amount_sun
            out: dict[str, Any] = {"amount_sun": got}
            if kind is Kind.CLAIM_REWARDS and d.get("restake") and got >= TRX:
                out["followup_operation_id"] = await self._follow_up(
                    op, Intent(Kind.STAKE, op.signer_address, got // TRX * TRX, d["restake_resource"])
                )
            return out
        if kind is Kind.UNSTAKE:
            return {"withdrawable_ms": await self._withdrawable_ms(op)}
        if kind is Kind.STAKE and d.get("receiver_address"):
            follow = Intent(
                Kind.DELEGATE, op.signer_address, d["amount_sun"], d["resource"], d["receiver_address"]
            )
            return {"delegation_operation_id": await self._follow_up(op, follow)}
        return {}

    async def _follow_up(self, op: Operation, intent: Intent) -> str:
        """The operation that continues `op` (created once; its id derives from op's); "" when the rules
        refuse it now (the reason is logged: a follow-up that cannot run must not block the settling)."""
        follow_id = operation_id(PREFIX[intent.kind], f"after:{op.id}")
        try:
            await self.create(
                follow_id, intent, request_id=f"after:{op.id}", fingerprint=op.id, wallet_id=op.wallet_id,
                origin=str(op.doc.get("origin", REQUEST)),
            )  # fmt: skip
        except (errors.FailedPrecondition, errors.PermissionDenied, errors.NotFound) as exc:
            log.warning(
                "follow-up refused",
                extra={"fields": {"op": op.id, "kind": intent.kind, "reason": exc.reason}},
            )
            return ""
        return follow_id

    async def _withdrawable_ms(self, op: Operation) -> int:
        """When the unstake's TRX becomes withdrawable: its own entry among the account's pending unstakes
        (those not there before it, of its resource and amount; the earliest if several)."""
        d = op.doc
        account = await self._chain.account(op.signer_address)
        before = Multiset(tuple(e) for e in d.get("unfreezing_before", []))
        mine = []
        for u in account.unfreezing:
            entry = (u.resource, u.amount_sun, u.unfreeze_expire_time.ToMilliseconds())
            if before[entry] > 0:
                before[entry] -= 1
            elif u.resource == d["resource"] and u.amount_sun == d["amount_sun"]:
                mine.append(entry[2])
        return min(mine, default=0)

    async def _sweep(self) -> None:
        """Settle the operations whose end a crash left unsettled; forget the settlements of operations that
        were never created (refused before they were stored)."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                async for doc in self._settlements.find({"settled": False}).limit(200):
                    op = await self.get(doc["_id"])
                    if op is not None and op.state in TERMINAL:
                        await self.settle(op)
                    elif op is None and doc["create_time"] < datetime.now(UTC) - NEVER_CREATED:
                        await self._settlements.delete_one({"_id": doc["_id"], "settled": False})
            except (PyMongoError, grpc.aio.AioRpcError, errors.DomainError) as exc:
                log.warning("settling sweep failed: %s", type(exc).__name__)
            except Exception:  # a bug must not stop the sweep for good
                log.exception("settling sweep failed")
