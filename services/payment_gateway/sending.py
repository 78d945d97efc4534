"""How payment-gateway moves money (refunds, sweeps, fee top-ups): USDT through usdt-manager's CreateTransfer
(its durable lifecycle, pre-checks and the wallet's signing policy), TRX as plain transfers through the shared
lifecycle (services.common.chain_ops) in this service's `trx_sends`. Each send is keyed by an id of the
caller's (the refund or sweep id), used as the request id downstream, so sending again after a crash returns
the same transfer instead of paying twice."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import duration_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc
from tronpay.usdt_manager.v1 import usdt_manager_pb2 as um
from tronpay.usdt_manager.v1 import usdt_manager_pb2_grpc as um_grpc

from services.common import errors
from services.common.chain_ops import (
    Built,
    Lifecycle,
    LifecycleConfig,
    Operation,
    OpState,
    Refused,
    refusal,
    upstream_error,
)
from services.common.server import Runtime
from services.common.settings import ServiceName
from services.payment_gateway.settings import PaymentGatewaySettings

TRX_SENDS = "trx_sends"
SUBMITTED, CONFIRMED, FAILED = "SUBMITTED", "CONFIRMED", "FAILED"
_USDT_STATE = {
    um.OPERATION_STATE_CONFIRMED: CONFIRMED,
    um.OPERATION_STATE_FAILED: FAILED,
    um.OPERATION_STATE_EXPIRED: FAILED,
}
_OP_STATE = {OpState.CONFIRMED: CONFIRMED, OpState.FAILED: FAILED, OpState.EXPIRED: FAILED}
TX_EXPIRATION_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Sent:
    """Where a send stands: SUBMITTED, CONFIRMED or FAILED, its transaction, the TRX it burned."""

    state: str
    handle: str  # usdt-manager's transfer id, or the TRX operation's id
    txid: str = ""
    fee_sun: int = 0
    reason: str = ""


class Sender:
    """Sends USDT and TRX for the gateway and reports where each send stands."""

    def __init__(self, rt: Runtime[PaymentGatewaySettings]) -> None:
        self._clients = rt.clients
        self.ops = Lifecycle(
            rt.db,
            rt.clients,
            LifecycleConfig("payment", TRX_SENDS),
            self._build,
            owner=Lifecycle.default_owner(rt.settings.port),
        )

    @property
    def _tron(self) -> tc_grpc.TronClientServiceStub:
        return self._clients.stub(ServiceName.TRON_CLIENT, tc_grpc.TronClientServiceStub)

    @property
    def _usdt(self) -> um_grpc.UsdtManagerServiceStub:
        return self._clients.stub(ServiceName.USDT_MANAGER, um_grpc.UsdtManagerServiceStub)

    async def send(
        self, send_id: str, *, asset: str, token: str, wallet_id: str, from_address: str, to: str, amount: int
    ) -> Sent:
        """Send once per `send_id` (again: the same transfer). A refusal before signing is FAILED with its
        reason; a peer out of reach raises (the caller retries later with the same id)."""
        if asset == "USDT":
            request = um.CreateTransferRequest(
                request_id=send_id,
                wallet_id=wallet_id,
                from_address=from_address,
                to_address=to,
                amount=amount,
                token_address=token,
                reference=send_id,
            )
            try:
                transfer = (await self._usdt.CreateTransfer(request)).transfer
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
                    return Sent(FAILED, "", reason=_reason(exc))
                raise
            return self._usdt_sent(transfer)
        try:
            op = await self.ops.create(
                send_id,
                request_id=send_id,
                fingerprint=send_id,
                wallet_id=wallet_id,
                signer_address=from_address,
                fields={"to": to, "amount": amount},
            )
        except errors.FailedPrecondition as exc:
            return Sent(FAILED, "", reason=exc.reason or "REFUSED")
        return self._op_sent(op)

    async def status(self, asset: str, handle: str) -> Sent:
        """Where an earlier send stands now."""
        if asset == "USDT":
            try:
                transfer = (await self._usdt.GetTransfer(um.GetTransferRequest(transfer_id=handle))).transfer
            except grpc.aio.AioRpcError as exc:
                raise upstream_error(exc, "usdt-manager", "to read a transfer") from None
            return self._usdt_sent(transfer)
        op = await self.ops.get(handle)
        if op is None:
            raise errors.NotFound("no such TRX send", reason="SEND_NOT_FOUND", metadata={"id": handle})
        return self._op_sent(op)

    @staticmethod
    def _usdt_sent(t: um.Transfer) -> Sent:
        state = _USDT_STATE.get(t.state, SUBMITTED)
        reason = (t.failure_reason or um.OperationState.Name(t.state)) if state == FAILED else ""
        return Sent(state, t.transfer_id, t.txid, int(t.fee_sun), reason)

    @staticmethod
    def _op_sent(op: Operation) -> Sent:
        state = _OP_STATE.get(op.state, SUBMITTED)
        fee = op.receipt.fee_sun if op.receipt else 0
        reason = (op.failure_reason or op.state.value) if state == FAILED else ""
        return Sent(state, op.id, op.current.txid, fee, reason)

    async def _build(self, op: Operation, attempt: int) -> Built:
        request = tc.BuildTransactionRequest(
            owner_address=op.signer_address,
            transfer=tc.TransferParams(to_address=op.doc["to"], amount_sun=int(op.doc["amount"])),
            expiration=duration_pb2.Duration(seconds=TX_EXPIRATION_SECONDS),
        )
        try:
            return Built((await self._tron.BuildTransaction(request)).transaction)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
                raise Refused(
                    "BUILD_REFUSED", f"tron-client cannot build the transfer: {exc.details()}"
                ) from None
            raise


def _reason(exc: grpc.aio.AioRpcError) -> str:
    """The machine-readable reason of a peer's refusal (its ErrorInfo reason)."""
    return refusal(exc, "send").reason or "UPSTREAM_REFUSED"
