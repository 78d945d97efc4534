"""The chain's Stake 2.0 rules, checked against the chain as read at request time (never cached) before
anything is signed, so a request that would fail on chain is refused with FAILED_PRECONDITION and a stable
reason instead of burning a transaction. Each refusal counts in tronpay_staking_precheck_refusals_total.
An operation whose first transaction expired is checked again before its next one is built.

The rules (java-tron's actuators, tron-protocol §5.5-5.6): a stake or delegation of at least 1 TRX; a stake
within the liquid balance; an unstake within the undelegated stake and at most 32 unstakes pending; a
withdrawal only of expired unstakes; one reward claim per interval and only of a reward; a delegation within
what the account can delegate, to an activated account, with a lock not longer than the network's maximum
nor shorter than what remains of the lock already on that delegation; an undelegation only of what is
delegated and no longer locked; votes only for witnesses and within the tron power.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from prometheus_client import Counter
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc

from services.common import errors
from services.trx_staking.chain import Chain
from services.trx_staking.settings import TRX

MAX_PENDING_UNSTAKES = 32  # UNFREEZE_MAX_TIMES
BLOCK_MS = 3_000  # a lock period counts 3-second slots

ACCOUNT_NOT_ACTIVATED = "ACCOUNT_NOT_ACTIVATED"
AMOUNT_BELOW_MINIMUM = "AMOUNT_BELOW_MINIMUM"
INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
INSUFFICIENT_STAKE = "INSUFFICIENT_STAKE"
UNSTAKE_LIMIT_REACHED = "UNSTAKE_LIMIT_REACHED"
NOTHING_TO_WITHDRAW = "NOTHING_TO_WITHDRAW"
NO_REWARD = "NO_REWARD"
CLAIM_TOO_SOON = "CLAIM_TOO_SOON"
INSUFFICIENT_DELEGATABLE_STAKE = "INSUFFICIENT_DELEGATABLE_STAKE"
RECEIVER_NOT_ACTIVATED = "RECEIVER_NOT_ACTIVATED"
LOCK_PERIOD_TOO_LONG = "LOCK_PERIOD_TOO_LONG"
LOCK_SHORTER_THAN_REMAINING = "LOCK_SHORTER_THAN_REMAINING"
NO_DELEGATION = "NO_DELEGATION"
INSUFFICIENT_DELEGATED = "INSUFFICIENT_DELEGATED"
DELEGATION_LOCKED = "DELEGATION_LOCKED"
NOT_A_WITNESS = "NOT_A_WITNESS"
VOTES_EXCEED_TRON_POWER = "VOTES_EXCEED_TRON_POWER"

REFUSALS = Counter(
    "tronpay_staking_precheck_refusals_total",
    "Staking requests refused before anything was signed, by reason.",
    ["reason"],
)


def refuse(reason: str, message: str, **metadata: object) -> errors.FailedPrecondition:
    """The refusal, counted."""
    REFUSALS.labels(reason).inc()
    return errors.FailedPrecondition(
        message, reason=reason, metadata={k: str(v) for k, v in metadata.items()}
    )


class Kind(StrEnum):
    """What an operation does on chain (stored as `op_kind`)."""

    STAKE = "stake"
    UNSTAKE = "unstake"
    WITHDRAW_UNSTAKED = "withdraw_unstaked"
    CLAIM_REWARDS = "claim_rewards"
    DELEGATE = "delegate"
    UNDELEGATE = "undelegate"
    VOTE = "vote"


@dataclass(frozen=True, slots=True)
class Intent:
    """What is about to be signed; `resource` is a common_pb2.ResourceType value."""

    kind: Kind
    owner: str
    amount: int = 0
    resource: int = 0
    receiver: str = ""
    lock_period: int = 0
    votes: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Intent:
        """The intent stored in an operation's document."""
        return cls(
            Kind(doc["op_kind"]), doc["signer_address"], int(doc.get("amount_sun", 0)),
            int(doc.get("resource", 0)), doc.get("receiver_address", ""),
            int(doc.get("lock_period_blocks", 0)),
            tuple((v["witness_address"], int(v["vote_count"])) for v in doc.get("votes", ())),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Facts:
    """What the checks read that the operation keeps: the amount a withdrawal or claim expects, and the
    unstakes pending before an unstake (to tell its own entry, and so its withdrawable time, later)."""

    amount: int | None = None
    unfreezing_before: list[list[int]] = field(default_factory=list)


def _frozen(account: tc.Account, resource: int) -> int:
    return sum(f.amount_sun for f in account.frozen if f.resource == resource)


def delegatable(account: tc.Account, resource: int) -> int:
    """What a staking-view account can still delegate of a resource."""
    if resource == common_pb2.RESOURCE_TYPE_ENERGY:
        return account.delegatable_energy_sun
    return account.delegatable_bandwidth_sun


def resource_name(resource: int) -> str:
    return common_pb2.ResourceType.Name(resource).removeprefix("RESOURCE_TYPE_")  # type: ignore[arg-type]


class Rules:
    """Checks intents against the chain; see the module docstring."""

    def __init__(self, chain: Chain, claim_interval_seconds: int) -> None:
        self._chain = chain
        self._claim_interval_ms = claim_interval_seconds * 1000

    def next_claim_ms(self, account: tc.Account) -> int:
        """When the account may claim next (0: now, it never claimed)."""
        last = (
            account.latest_withdraw_time.ToMilliseconds() if account.HasField("latest_withdraw_time") else 0
        )
        return last + self._claim_interval_ms if last else 0

    async def check(self, intent: Intent) -> Facts:
        """Read the chain and refuse the intent if it breaks a rule; the facts worth keeping otherwise."""
        staking = intent.kind in (Kind.DELEGATE, Kind.UNDELEGATE)
        account, height = await asyncio.gather(
            self._chain.account(intent.owner, staking=staking), self._chain.height()
        )
        if not account.exists:
            raise refuse(ACCOUNT_NOT_ACTIVATED, "the staking address is not activated (it holds no TRX)",
                         address=intent.owner)  # fmt: skip
        now = height.time_ms
        match intent.kind:
            case Kind.STAKE:
                await self._stake(intent, account)
            case Kind.UNSTAKE:
                return self._unstake(intent, account, now)
            case Kind.WITHDRAW_UNSTAKED:
                return self._withdraw_unstaked(account, now)
            case Kind.CLAIM_REWARDS:
                return self._claim(account, now)
            case Kind.DELEGATE:
                await self._delegate(intent, account, now)
            case Kind.UNDELEGATE:
                self._undelegate(intent, account, now)
            case Kind.VOTE:
                await self._vote(intent)
        return Facts()

    async def _receiver_activated(self, receiver: str) -> None:
        if not (await self._chain.account(receiver)).exists:
            raise refuse(RECEIVER_NOT_ACTIVATED, "the receiver is not activated (it holds no TRX)",
                         receiver_address=receiver)  # fmt: skip

    async def _stake(self, intent: Intent, account: tc.Account) -> None:
        if intent.amount < TRX:
            raise refuse(AMOUNT_BELOW_MINIMUM, "a stake is at least 1 TRX", amount_sun=intent.amount)
        if intent.amount > account.balance_sun:
            raise refuse(INSUFFICIENT_BALANCE, "the stake is more than the liquid balance",
                         balance_sun=account.balance_sun, amount_sun=intent.amount)  # fmt: skip
        if intent.receiver:
            await self._receiver_activated(intent.receiver)

    @staticmethod
    def _unstake(intent: Intent, account: tc.Account, now: int) -> Facts:
        staked = _frozen(account, intent.resource)
        if intent.amount > staked:
            delegated = (
                account.delegated_energy_sun
                if intent.resource == common_pb2.RESOURCE_TYPE_ENERGY
                else account.delegated_bandwidth_sun
            )
            raise refuse(INSUFFICIENT_STAKE, "less is staked (and not delegated) for this resource",
                         staked_sun=staked, delegated_sun=delegated, amount_sun=intent.amount,
                         resource=resource_name(intent.resource))  # fmt: skip
        pending = [u for u in account.unfreezing if u.unfreeze_expire_time.ToMilliseconds() > now]
        if len(pending) >= MAX_PENDING_UNSTAKES:
            raise refuse(UNSTAKE_LIMIT_REACHED, f"{MAX_PENDING_UNSTAKES} unstakes are pending already",
                         pending=len(pending))  # fmt: skip
        before = [
            [u.resource, u.amount_sun, u.unfreeze_expire_time.ToMilliseconds()] for u in account.unfreezing
        ]
        return Facts(unfreezing_before=before)

    @staticmethod
    def _withdraw_unstaked(account: tc.Account, now: int) -> Facts:
        expires = [u.unfreeze_expire_time.ToMilliseconds() for u in account.unfreezing]
        matured = sum(u.amount_sun for u, at in zip(account.unfreezing, expires, strict=True) if at <= now)
        if not matured:
            meta = {"next_withdrawable_ms": min(expires)} if expires else {}
            raise refuse(NOTHING_TO_WITHDRAW, "no unstake has expired yet", **meta)
        return Facts(amount=matured)

    def _claim(self, account: tc.Account, now: int) -> Facts:
        next_claim = self.next_claim_ms(account)
        if next_claim > now:
            raise refuse(CLAIM_TOO_SOON, "the last claim is too recent", next_claim_ms=next_claim)
        if account.reward_sun <= 0:
            raise refuse(NO_REWARD, "there is no reward to claim")
        return Facts(amount=account.reward_sun)

    async def _delegate(self, intent: Intent, account: tc.Account, now: int) -> None:
        if intent.amount < TRX:
            raise refuse(AMOUNT_BELOW_MINIMUM, "a delegation is at least 1 TRX", amount_sun=intent.amount)
        available = delegatable(account, intent.resource)
        if intent.amount > available:
            raise refuse(INSUFFICIENT_DELEGATABLE_STAKE, "less stake can be delegated for this resource",
                         delegatable_sun=available, amount_sun=intent.amount,
                         resource=resource_name(intent.resource))  # fmt: skip
        receiver, params = await asyncio.gather(
            self._chain.account(intent.receiver), self._chain.parameters()
        )
        if not receiver.exists:
            raise refuse(RECEIVER_NOT_ACTIVATED, "the receiver is not activated (it holds no TRX)",
                         receiver_address=intent.receiver)  # fmt: skip
        if not intent.lock_period:
            return
        longest = params.get("getMaxDelegateLockPeriod", 0)
        if intent.lock_period > longest:
            raise refuse(LOCK_PERIOD_TOO_LONG, "the lock period is longer than the network allows",
                         max_lock_period_blocks=longest)  # fmt: skip
        for d in self._delegations(account, intent):
            remaining = d.lock_expire_time.ToMilliseconds() - now
            if remaining > intent.lock_period * BLOCK_MS:
                raise refuse(LOCK_SHORTER_THAN_REMAINING,
                             "the lock is shorter than what remains of the delegation's current lock",
                             remaining_ms=remaining)  # fmt: skip

    @staticmethod
    def _delegations(account: tc.Account, intent: Intent) -> list[tc.DelegatedResource]:
        return [
            d
            for d in account.delegated_out
            if d.to_address == intent.receiver and d.resource == intent.resource
        ]

    def _undelegate(self, intent: Intent, account: tc.Account, now: int) -> None:
        records = self._delegations(account, intent)
        if not records:
            raise refuse(NO_DELEGATION, "nothing of this resource is delegated to the receiver",
                         receiver_address=intent.receiver)  # fmt: skip
        total = sum(d.amount_sun for d in records)
        if intent.amount > total:
            raise refuse(INSUFFICIENT_DELEGATED, "less is delegated to the receiver",
                         delegated_sun=total, amount_sun=intent.amount)  # fmt: skip
        locked = [d for d in records if d.lock_expire_time.ToMilliseconds() > now]
        free = total - sum(d.amount_sun for d in locked)
        if intent.amount > free:
            until = max(d.lock_expire_time.ToMilliseconds() for d in locked)
            raise refuse(DELEGATION_LOCKED, "the delegation is locked", lock_expire_ms=until,
                         unlocked_sun=free)  # fmt: skip

    async def _vote(self, intent: Intent) -> None:
        witnesses = [w for w, _ in intent.votes]
        accounts, resources = await asyncio.gather(
            self._chain.accounts(witnesses), self._chain.resources(intent.owner)
        )
        for w, acc in zip(witnesses, accounts, strict=True):
            if not acc.is_witness:
                raise refuse(NOT_A_WITNESS, "a voted address is not a witness", witness_address=w)
        total = sum(n for _, n in intent.votes)
        if total > resources.tron_power_limit:
            raise refuse(VOTES_EXCEED_TRON_POWER, "the votes are more than the tron power",
                         votes=total, tron_power=resources.tron_power_limit)  # fmt: skip
