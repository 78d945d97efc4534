"""A payment's state as a pure function of its transfers, refunds and the clock.

The state is never moved by an event on its own: every change (a transfer included, solidified or dropped by a
fork, a refund, expiry) recomputes it from the payment's whole record, so applying the same transfer event
twice, or in a replayed order after a crash, cannot count money twice, and a fork that drops a transfer takes
the payment back by itself."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PENDING, CONFIRMING, PAID, UNDERPAID, OVERPAID, EXPIRED, PAID_LATE, REFUNDED = (
    "PENDING",
    "CONFIRMING",
    "PAID",
    "UNDERPAID",
    "OVERPAID",
    "EXPIRED",
    "PAID_LATE",
    "REFUNDED",
)
STATES = (PENDING, CONFIRMING, PAID, UNDERPAID, OVERPAID, EXPIRED, PAID_LATE, REFUNDED)
OPEN = frozenset({PENDING, CONFIRMING})  # waiting for money or for finality
SUCCESS = frozenset({PAID, PAID_LATE, OVERPAID})
# Transfer states, as tron-client's TransferState names them.
INCLUDED, FINAL, REVERTED = "INCLUDED", "FINAL", "REVERTED"


@dataclass(frozen=True, slots=True)
class Policy:
    """What counts: the tolerances within which an amount is exact, and whether late money counts."""

    tolerance_absolute: int = 0
    tolerance_bps: int = 0
    accept_late: bool = True

    def tolerance(self, amount: int) -> int:
        """The larger of the absolute tolerance and the percentage of the amount (integer base units)."""
        return max(self.tolerance_absolute, amount * self.tolerance_bps // 10_000)


@dataclass(frozen=True, slots=True)
class Totals:
    """A payment's state and the sums it was derived from (base units)."""

    state: str
    received: int  # final and counted
    confirming: int  # included, not final yet, counted


def counts(transfer: Mapping[str, Any], policy: Policy) -> bool:
    """Whether a transfer counts towards the payment (late money only under the accept policy)."""
    return transfer["state"] != REVERTED and (policy.accept_late or not transfer.get("late", False))


def compute(
    amount: int,
    expire_at: datetime,
    now: datetime,
    transfers: Iterable[Mapping[str, Any]],
    refunded: int,
    policy: Policy,
) -> Totals:
    """The state of a payment of `amount` expiring at `expire_at`, with `refunded` reserved for refunds."""
    counted = [t for t in transfers if counts(t, policy)]
    received = sum(int(t["amount"]) for t in counted if t["state"] == FINAL)
    confirming = sum(int(t["amount"]) for t in counted if t["state"] == INCLUDED)
    tolerance = policy.tolerance(amount)
    if received > 0 and refunded >= received:
        state = REFUNDED
    elif received >= amount - tolerance:
        if received > amount + tolerance:
            state = OVERPAID
        elif any(t.get("late", False) for t in counted if t["state"] == FINAL):
            state = PAID_LATE
        else:
            state = PAID
    elif confirming > 0:
        state = CONFIRMING
    elif now >= expire_at:
        state = UNDERPAID if received > 0 else EXPIRED
    else:
        state = PENDING
    return Totals(state, received, confirming)
