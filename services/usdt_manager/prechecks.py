"""Checks before anything is signed, read from the chain: the token's blacklist (isBlackListed of sender and
counterparty), paused(), the token balance, the energy estimate (estimateenergy sees whether the recipient's
balance slot is new) against the fee-limit cap, and the TRX the fee may burn. What concerns the sender alone
(its blacklisting, balances and resources, the token's pause) is shared by the requests of the next
USDT_SENDER_VIEW_SECONDS (under a block): the balance comes with the block it was read at, which is what the
sender's holds are counted against, so sharing it changes no sum; the counterparty and the estimate are read
for every request. A refusal is FAILED_PRECONDITION with one of the reasons below and counts in
tronpay_usdt_precheck_refusals_total.

fee_limit: the request's, if it covers the estimate and stays under the cap; otherwise estimate x energy
price + USDT_FEE_LIMIT_MARGIN_PERCENT, capped at USDT_MAX_FEE_LIMIT_SUN (or the network's maximum if lower).
TRX needed: the bandwidth of the call when the sender has none left, plus, unless the energy broker provides
the energy (USDT_ENERGY_BROKER; if it falls back to burning it checks the TRX itself), the estimated energy
(with the margin) beyond the sender's staked energy at the energy price, up to the fee limit.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass

from prometheus_client import Counter
from tronpay.tron_client.v1 import tron_client_pb2 as tc

from services.common import errors
from services.usdt_manager.chain import CallReverts, Chain, Estimate
from services.usdt_manager.holds import InFlight
from services.usdt_manager.settings import UsdtManagerSettings

# Bandwidth of a signed TRC20 transfer/approve (~345 bytes on mainnet), burned at the bandwidth price when
# the sender has neither free nor staked bandwidth left.
CALL_BANDWIDTH_BYTES = 350

SENDER_BLACKLISTED = "SENDER_BLACKLISTED"
RECIPIENT_BLACKLISTED = "RECIPIENT_BLACKLISTED"
SPENDER_BLACKLISTED = "SPENDER_BLACKLISTED"
PAUSED = "TOKEN_PAUSED"
LOW_BALANCE = "INSUFFICIENT_TOKEN_BALANCE"
CALL_WOULD_REVERT = "CALL_WOULD_REVERT"
FEE_LIMIT_TOO_LOW = "FEE_LIMIT_TOO_LOW"
FEE_LIMIT_ABOVE_CAP = "FEE_LIMIT_ABOVE_CAP"
ENERGY_COST_ABOVE_CAP = "ENERGY_COST_ABOVE_CAP"
INSUFFICIENT_TRX = "INSUFFICIENT_TRX"

REFUSALS = Counter(
    "tronpay_usdt_precheck_refusals_total",
    "Requests refused before anything was signed, by reason.",
    ["reason"],
)


def refuse(reason: str, message: str, **metadata: object) -> errors.FailedPrecondition:
    """The refusal, counted."""
    REFUSALS.labels(reason).inc()
    return errors.FailedPrecondition(
        message, reason=reason, metadata={k: str(v) for k, v in metadata.items()}
    )


@dataclass(frozen=True, slots=True)
class Call:
    """What is about to be signed: `signature(parameter)` on `token` from `owner`."""

    token: str
    owner: str
    counterparty: str  # recipient of a transfer, spender of an approval
    amount: int  # tokens the call moves out of owner's balance (0 for an approval)
    signature: str
    parameter: bytes
    requested_fee_limit: int  # 0: derive it
    counterparty_reason: str  # RECIPIENT_BLACKLISTED or SPENDER_BLACKLISTED


@dataclass(frozen=True, slots=True)
class Quote:
    """What the checks found and decided."""

    energy_estimate: int
    energy_price_sun: int
    fee_limit_sun: int
    fee_limit_cap_sun: int
    trx_needed_sun: int
    token_balance: int
    trx_balance_sun: int
    balance_block: int

    def fields(self) -> dict[str, int]:
        return {"energy_estimate": self.energy_estimate, "energy_price_sun": self.energy_price_sun,
                "fee_limit_sun": self.fee_limit_sun, "fee_limit_cap_sun": self.fee_limit_cap_sun,
                "trx_needed_sun": self.trx_needed_sun}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SenderView:
    """What the checks read about a sender and its token, at one time."""

    paused: bool
    blacklisted: bool
    token_balance: int
    balance_block: int
    account: tc.Account
    resources: tc.AccountResource


def _ceil_percent(value: int, percent: int) -> int:
    return -(-value * (100 + percent) // 100)


class Prechecks:
    def __init__(self, chain: Chain, settings: UsdtManagerSettings) -> None:
        self._chain = chain
        self._cap = settings.USDT_MAX_FEE_LIMIT_SUN
        self._margin = settings.USDT_FEE_LIMIT_MARGIN_PERCENT
        self._broker = settings.USDT_ENERGY_BROKER
        self._view_seconds = settings.USDT_SENDER_VIEW_SECONDS
        # (token, sender) -> (monotonic time it was asked for, the read): concurrent requests share one read
        self._views: dict[tuple[str, str], tuple[float, asyncio.Future[SenderView]]] = {}

    async def _sender(self, token: str, owner: str) -> SenderView:
        """The sender's view, shared with requests of the last USDT_SENDER_VIEW_SECONDS (a failed read is
        not kept)."""
        now = time.monotonic()
        key = (token, owner)
        held = self._views.get(key)
        if held is None or now - held[0] >= self._view_seconds:
            if len(self._views) > 10_000:  # senders seen long ago
                self._views = {k: v for k, v in self._views.items() if now - v[0] < self._view_seconds}
            read = asyncio.ensure_future(self._read_sender(token, owner))
            held = self._views[key] = (now, read)
            read.add_done_callback(functools.partial(self._drop_failed, key))
        return await asyncio.shield(held[1])

    def _drop_failed(self, key: tuple[str, str], done: asyncio.Future[SenderView]) -> None:
        held = self._views.get(key)
        if (done.cancelled() or done.exception() is not None) and held is not None and held[1] is done:
            del self._views[key]

    async def _read_sender(self, token: str, owner: str) -> SenderView:
        c = self._chain
        paused, blacklisted, (balance, block), account, resources = await asyncio.gather(
            c.paused(token), c.blacklisted(token, owner), c.token_balance(token, owner), c.account(owner),
            c.resources(owner),
        )  # fmt: skip
        return SenderView(paused, blacklisted, balance, block, account, resources)

    async def _estimate(self, call: Call) -> Estimate | CallReverts:
        try:
            return await self._chain.estimate(call.owner, call.token, call.signature, call.parameter)
        except CallReverts as reverts:
            return reverts

    async def quote(self, call: Call) -> Quote:
        """Read everything at once, then refuse by the first failing check (blacklist, pause, balance,
        revert, fee limit, TRX), or decide the fee limit."""
        c = self._chain
        sender, other_bl, fees, estimate = await asyncio.gather(
            self._sender(call.token, call.owner), c.blacklisted(call.token, call.counterparty), c.fees(),
            self._estimate(call),
        )  # fmt: skip
        paused, balance, block = sender.paused, sender.token_balance, sender.balance_block
        account, resources = sender.account, sender.resources
        if sender.blacklisted:
            raise refuse(SENDER_BLACKLISTED, "the token blacklists the sender", address=call.owner)
        if other_bl:
            raise refuse(
                call.counterparty_reason, "the token blacklists the counterparty", address=call.counterparty
            )
        if paused:
            raise refuse(PAUSED, "the token is paused", token=call.token)
        if balance < call.amount:
            raise refuse(LOW_BALANCE, "the token balance is too low", balance=balance,
                         amount=call.amount)  # fmt: skip
        if isinstance(estimate, CallReverts):
            raise refuse(CALL_WOULD_REVERT, f"the call would revert: {estimate.reason}")
        cap = min(self._cap, fees.max_fee_limit_sun or self._cap)
        cost = estimate.energy * estimate.price_sun  # what the estimated energy costs at the current price
        if call.requested_fee_limit:
            if call.requested_fee_limit < cost:
                raise refuse(FEE_LIMIT_TOO_LOW, "fee_limit_sun does not cover the estimated energy",
                             energy_estimate=estimate.energy, needed_sun=cost)  # fmt: skip
            if call.requested_fee_limit > cap:
                raise refuse(FEE_LIMIT_ABOVE_CAP, "fee_limit_sun is above the service's cap", cap_sun=cap)
            fee_limit = call.requested_fee_limit
        else:
            if cost > cap:
                raise refuse(ENERGY_COST_ABOVE_CAP, "the estimated energy costs more than the fee-limit cap",
                             energy_estimate=estimate.energy, needed_sun=cost, cap_sun=cap)  # fmt: skip
            fee_limit = min(cap, _ceil_percent(cost, self._margin))
        staked_left = max(0, resources.energy_limit - resources.energy_used)
        burn = 0 if self._broker else max(0, _ceil_percent(estimate.energy, self._margin) - staked_left)
        burn *= estimate.price_sun
        net_left = max(0, resources.free_net_limit - resources.free_net_used) + max(
            0, resources.net_limit - resources.net_used
        )
        bandwidth = 0 if net_left >= CALL_BANDWIDTH_BYTES else CALL_BANDWIDTH_BYTES * fees.bandwidth_price_sun
        quote = Quote(estimate.energy, estimate.price_sun, fee_limit, cap, min(burn, fee_limit) + bandwidth,
                      balance, account.balance_sun, block)  # fmt: skip
        if not account.exists:
            raise refuse(INSUFFICIENT_TRX, "the sender's account is not activated (it holds no TRX)",
                         needed_sun=quote.trx_needed_sun)  # fmt: skip
        self.check(call, quote, InFlight(0, 0))
        return quote

    @staticmethod
    def check(call: Call, quote: Quote, in_flight: InFlight) -> None:
        """The balances minus what the sender has in flight must still cover this call."""
        if quote.token_balance - in_flight.token_amount < call.amount:
            raise refuse(LOW_BALANCE, "the token balance minus transfers in flight is too low",
                         balance=quote.token_balance, in_flight=in_flight.token_amount,
                         amount=call.amount)  # fmt: skip
        if quote.trx_balance_sun - in_flight.trx_sun < quote.trx_needed_sun:
            raise refuse(INSUFFICIENT_TRX, "not enough TRX for the fee (counting operations in flight)",
                         trx_balance_sun=quote.trx_balance_sun, in_flight_sun=in_flight.trx_sun,
                         needed_sun=quote.trx_needed_sun)  # fmt: skip
