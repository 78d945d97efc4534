"""Transfers and approvals: pre-checks, the sender's hold, then the shared signed-transaction lifecycle
(services.common.chain_ops) with the TRC20 call as what it builds.

CreateTransfer / Approve: resolve the wallet and the sending address -> pre-checks (prechecks.py) -> the
sender's hold, taken only if the balances minus its other holds cover the call (holds.py) -> the lifecycle
builds and signs attempt 1 through wallet-manager and creates the record (id from the request_id: created
once). Anything refused before signing leaves neither record nor hold. A rebuilt attempt (the
previous one provably expired) runs the pre-checks again and fails the operation if they refuse now.
Holds follow their operation: the including block is noted, a block lost to a fork un-notes it, the end of
the operation drops the hold.
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc
from tronpay.usdt_manager.v1 import usdt_manager_pb2 as pb

from services.common import errors
from services.common.chain_ops import (
    TERMINAL,
    Built,
    BurnEnergy,
    Lifecycle,
    LifecycleConfig,
    Operation,
    OpState,
    Refused,
    StakingBroker,
    operation_id,
)
from services.common.logging import get_logger
from services.common.server import Runtime
from services.common.tron.abi import encode_args
from services.usdt_manager.chain import Chain
from services.usdt_manager.holds import Holds
from services.usdt_manager.prechecks import (
    RECIPIENT_BLACKLISTED,
    SPENDER_BLACKLISTED,
    Call,
    Prechecks,
    Quote,
    refuse,
)
from services.usdt_manager.settings import UsdtManagerSettings

log = get_logger("usdt_manager.operations")

TRANSFERS, APPROVALS = "transfers", "approvals"  # the lifecycles' collections
TRANSFER = "transfer(address,uint256)"
APPROVE = "approve(address,uint256)"
SWEEP_SECONDS = 60.0


class UsdtOperations:
    """The two lifecycles (transfers, approvals) and what comes before them."""

    def __init__(self, rt: Runtime[UsdtManagerSettings], chain: Chain, holds: Holds) -> None:
        s = rt.settings
        self._settings = s
        self._chain = chain
        self._holds = holds
        self._prechecks = Prechecks(chain, s)
        owner = Lifecycle.default_owner(s.port)

        def config(kind: str, collection: str) -> LifecycleConfig:
            return LifecycleConfig(
                kind, collection, max_attempts=s.USDT_MAX_ATTEMPTS, poll_seconds=s.USDT_POLL_SECONDS,
                rebroadcast_seconds=s.USDT_REBROADCAST_SECONDS, lease_seconds=s.USDT_LEASE_SECONDS,
                concurrency=s.USDT_DRIVER_CONCURRENCY,
            )  # fmt: skip

        energy = StakingBroker(rt.clients) if s.USDT_ENERGY_BROKER else BurnEnergy()
        self.transfers = Lifecycle(
            rt.db, rt.clients, config("usdt_transfer", TRANSFERS), self._build_transfer, owner=owner,
            energy=energy, on_transition=self._moved,
        )  # fmt: skip
        self.approvals = Lifecycle(
            rt.db, rt.clients, config("usdt_approval", APPROVALS), self._build_approval, owner=owner,
            energy=energy, on_transition=self._moved,
        )  # fmt: skip
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.transfers.start()
        self.approvals.start()
        self._sweeper = asyncio.create_task(self._sweep())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.transfers.stop()
        await self.approvals.stop()

    # ---- requests ---------------------------------------------------------------------------------
    async def create_transfer(self, req: pb.CreateTransferRequest, token: str, fingerprint: str) -> Operation:
        op_id = operation_id("tr", req.request_id)
        known = await self.transfers.get(op_id)
        if known is not None:
            return self.transfers.replayed(known, fingerprint)
        sender = await self._chain.signing_address(req.wallet_id, req.from_address, "from_address", refuse)
        call = Call(token, sender, req.to_address, req.amount, TRANSFER,
                    encode_args(["address", "uint256"], [req.to_address, req.amount]), req.fee_limit_sun,
                    RECIPIENT_BLACKLISTED)  # fmt: skip
        fields = {"token_address": token, "from_address": sender, "to_address": req.to_address,
                  "amount": req.amount, "reference": req.reference}  # fmt: skip
        return await self._create(
            self.transfers, op_id, req.request_id, req.wallet_id, call, fields, fingerprint
        )

    async def approve(self, req: pb.ApproveRequest, token: str, fingerprint: str) -> Operation:
        op_id = operation_id("ap", req.request_id)
        known = await self.approvals.get(op_id)
        if known is not None:
            return self.approvals.replayed(known, fingerprint)
        owner = await self._chain.signing_address(req.wallet_id, req.owner_address, "owner_address", refuse)
        call = Call(token, owner, req.spender_address, 0, APPROVE,
                    encode_args(["address", "uint256"], [req.spender_address, req.amount]), req.fee_limit_sun,
                    SPENDER_BLACKLISTED)  # fmt: skip
        fields = {"token_address": token, "owner_address": owner, "spender_address": req.spender_address,
                  "amount": req.amount}  # fmt: skip
        return await self._create(
            self.approvals, op_id, req.request_id, req.wallet_id, call, fields, fingerprint
        )

    async def _create(
        self,
        ops: Lifecycle,
        op_id: str,
        request_id: str,
        wallet_id: str,
        call: Call,
        fields: dict[str, object],
        fingerprint: str,
    ) -> Operation:
        quote = await self._prechecks.quote(call)
        await self._holds.take(
            op_id, call.owner, call.token, call.amount, quote.trx_needed_sun, quote.balance_block,
            lambda in_flight: self._prechecks.check(call, quote, in_flight),
        )  # fmt: skip
        record = {**fields, "call": {"signature": call.signature, "parameter": call.parameter,
                                     "requested_fee_limit_sun": call.requested_fee_limit},
                  "quote": quote.fields()}  # fmt: skip
        try:
            return await ops.create(
                op_id, request_id=request_id, fingerprint=fingerprint, wallet_id=wallet_id,
                signer_address=call.owner, fields=record, looked_up=True,
            )  # fmt: skip
        except Exception:
            if await ops.get(op_id) is None:  # nothing was created: the hold goes too
                await self._holds.release(op_id, call.owner)
            raise

    # ---- building (the lifecycle's Builder) -------------------------------------------------------
    async def _build_transfer(self, op: Operation, attempt: int) -> Built:
        d = op.doc
        return await self._build(op, attempt, d["to_address"], d["amount"], RECIPIENT_BLACKLISTED)

    async def _build_approval(self, op: Operation, attempt: int) -> Built:
        d = op.doc
        return await self._build(op, attempt, d["spender_address"], 0, SPENDER_BLACKLISTED)

    async def _build(self, op: Operation, attempt: int, counterparty: str, amount: int, reason: str) -> Built:
        d = op.doc
        c = d["call"]
        quote = d["quote"]
        fields: dict[str, object] = {}
        if attempt > 1:  # the chain moved on since the request: check again before signing anything new
            call = Call(d["token_address"], op.signer_address, counterparty, amount, c["signature"],
                        bytes(c["parameter"]), c["requested_fee_limit_sun"], reason)  # fmt: skip
            try:
                fresh: Quote = await self._prechecks.quote(call)
                in_flight = await self._holds.current(
                    op.signer_address, call.token, fresh.balance_block, op.id
                )
                self._prechecks.check(call, fresh, in_flight)
            except errors.FailedPrecondition as exc:
                raise Refused(exc.reason, exc.message, exc.metadata) from None
            quote = fresh.fields()
            fields["quote"] = quote
        try:
            tx = await self._chain.build(
                op.signer_address, d["token_address"], c["signature"], bytes(c["parameter"]),
                quote["fee_limit_sun"], self._settings.USDT_TX_EXPIRATION_SECONDS,
            )  # fmt: skip
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
                raise Refused(
                    "BUILD_REFUSED", f"tron-client cannot build the transaction: {exc.details()}"
                ) from None
            raise
        return Built(tx, quote["energy_estimate"], fields)

    # ---- holds follow their operation -------------------------------------------------------------
    async def _moved(self, op: Operation, old: OpState) -> None:
        if op.state in TERMINAL:
            await self._holds.release(op.id, op.signer_address)
        elif op.state is OpState.INCLUDED:
            await self._holds.included(op.id, op.signer_address, op.block_number)
        elif old is OpState.INCLUDED:
            await self._holds.included(op.id, op.signer_address, 0)

    async def _alive(self, op_id: str) -> bool:
        ops = self.transfers if op_id.startswith("tr_") else self.approvals
        op = await ops.get(op_id)
        return op is not None and op.state not in TERMINAL

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                if dropped := await self._holds.sweep(self._alive):
                    log.info("dropped %d holds left over from a crash", dropped)
            except Exception as exc:  # the database is away: the next round tries again
                log.warning("hold sweep failed: %s", type(exc).__name__)
