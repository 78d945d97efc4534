"""usdt-manager's gRPC servicer: validation beyond protovalidate (address checksums, configured tokens),
request_id handling, delegation to operations.py (transfers, approvals) and chain.py (balances, allowances,
history).

CreateTransfer and Approve run once per request_id (`@idempotent`); beneath that, the operation's record is
created once per request_id too (its id derives from it), which is what an irreversible broadcast needs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tronpay.common.v1 import common_pb2
from tronpay.usdt_manager.v1 import usdt_manager_pb2 as pb
from tronpay.usdt_manager.v1 import usdt_manager_pb2_grpc

from services.common import errors
from services.common.idempotency import fingerprint, idempotent
from services.common.server import Runtime
from services.common.tron.address import from_base58
from services.usdt_manager.chain import Chain
from services.usdt_manager.convert import approval_pb, transfer_pb
from services.usdt_manager.operations import UsdtOperations
from services.usdt_manager.settings import UsdtManagerSettings

Ctx = Any


def _check_addresses(**by_field: str) -> None:
    """Each non-empty field must hold a TRON address (checksum and prefix; the contract checks the shape)."""
    bad = []
    for field, value in by_field.items():
        if not value:
            continue
        try:
            from_base58(value)
        except ValueError as exc:
            bad.append(errors.FieldViolation(field, f"not a TRON address: {exc}", "INVALID_ADDRESS"))
    if bad:
        raise errors.InvalidArgument("invalid address", bad, reason="INVALID_ADDRESS")


def _direction(address: str, frm: str, to: str) -> common_pb2.Direction.ValueType:
    if frm == address and to == address:
        return common_pb2.DIRECTION_SELF
    return common_pb2.DIRECTION_INCOMING if to == address else common_pb2.DIRECTION_OUTGOING


class UsdtManagerServicer(usdt_manager_pb2_grpc.UsdtManagerServiceServicer):
    """UsdtManagerService."""

    def __init__(self, rt: Runtime[UsdtManagerSettings], ops: UsdtOperations, chain: Chain) -> None:
        self._settings = rt.settings
        self._ops = ops
        self._chain = chain
        self.idempotency = rt.idempotency

    def _token(self, token_address: str) -> str:
        """The request's token: USDT when empty; otherwise one of the configured tokens."""
        if not token_address:
            return self._settings.USDT_CONTRACT_ADDRESS
        _check_addresses(token_address=token_address)
        if token_address not in self._settings.tokens:
            raise errors.InvalidArgument(
                "not a configured token",
                [errors.FieldViolation("token_address", "USDT or one of USDT_TRC20_TOKENS", "UNKNOWN_TOKEN")],
                reason="UNKNOWN_TOKEN",
            )
        return token_address

    # ---- transfers and approvals ------------------------------------------------------------------
    @idempotent(pb.CreateTransferResponse)
    async def CreateTransfer(
        self, request: pb.CreateTransferRequest, context: Ctx
    ) -> pb.CreateTransferResponse:
        _check_addresses(from_address=request.from_address, to_address=request.to_address)
        token = self._token(request.token_address)
        op = await self._ops.create_transfer(request, token, fingerprint(request))
        return pb.CreateTransferResponse(transfer=transfer_pb(op))

    async def GetTransfer(self, request: pb.GetTransferRequest, context: Ctx) -> pb.GetTransferResponse:
        op = await self._ops.transfers.get(request.transfer_id)
        if op is None:
            raise errors.NotFound(
                "transfer not found",
                reason="TRANSFER_NOT_FOUND",
                metadata={"transfer_id": request.transfer_id},
            )
        return pb.GetTransferResponse(transfer=transfer_pb(op))

    @idempotent(pb.ApproveResponse)
    async def Approve(self, request: pb.ApproveRequest, context: Ctx) -> pb.ApproveResponse:
        _check_addresses(owner_address=request.owner_address, spender_address=request.spender_address)
        token = self._token(request.token_address)
        op = await self._ops.approve(request, token, fingerprint(request))
        return pb.ApproveResponse(approval=approval_pb(op))

    async def GetApproval(self, request: pb.GetApprovalRequest, context: Ctx) -> pb.GetApprovalResponse:
        op = await self._ops.approvals.get(request.approval_id)
        if op is None:
            raise errors.NotFound(
                "approval not found",
                reason="APPROVAL_NOT_FOUND",
                metadata={"approval_id": request.approval_id},
            )
        return pb.GetApprovalResponse(approval=approval_pb(op))

    # ---- reads ------------------------------------------------------------------------------------
    async def GetBalance(self, request: pb.GetBalanceRequest, context: Ctx) -> pb.GetBalanceResponse:
        _check_addresses(address=request.address)
        token = self._token(request.token_address)
        c = self._chain
        (balance, block), (solid, solid_block), account, blacklisted = await asyncio.gather(
            c.token_balance(token, request.address), c.token_balance(token, request.address, solidified=True),
            c.account(request.address), c.blacklisted(token, request.address),
        )  # fmt: skip
        out = pb.GetBalanceResponse(
            address=request.address, balance=balance, trx_balance_sun=account.balance_sun,
            blacklisted=blacklisted, block_number=block, token_address=token, solidified_balance=solid,
            solidified_block_number=solid_block,
        )  # fmt: skip
        out.update_time.GetCurrentTime()
        return out

    async def GetAllowance(self, request: pb.GetAllowanceRequest, context: Ctx) -> pb.GetAllowanceResponse:
        _check_addresses(owner_address=request.owner_address, spender_address=request.spender_address)
        token = self._token(request.token_address)
        amount, block = await asyncio.gather(
            self._chain.allowance(token, request.owner_address, request.spender_address),
            self._chain.head_block(),
        )
        return pb.GetAllowanceResponse(
            owner_address=request.owner_address, spender_address=request.spender_address, amount=amount,
            block_number=block, token_address=token,
        )  # fmt: skip

    async def ListTransactions(
        self, request: pb.ListTransactionsRequest, context: Ctx
    ) -> pb.ListTransactionsResponse:
        _check_addresses(address=request.address)
        token = self._token(request.token_address)
        if not await self._chain.watched(request.address):
            raise errors.FailedPrecondition(
                "no transfers are recorded for this address: it is not on the TRON client's watch list "
                "(wallet addresses are; watch it, with a start block to record its past)",
                reason="NOT_WATCHED",
                metadata={"address": request.address},
            )
        asset = (
            common_pb2.ASSET_USDT if token == self._settings.USDT_CONTRACT_ADDRESS else common_pb2.ASSET_TRC20
        )
        page = await self._chain.transfers(
            request.address, token, asset, request.direction, request.page_size, request.page_token
        )
        ours = await self._ops.transfers.txid_owners([t.txid for t in page.transfers])
        out = pb.ListTransactionsResponse(next_page_token=page.next_page_token)
        for t in page.transfers:
            out.transactions.add(
                txid=t.txid, event_index=t.event_index,
                direction=_direction(request.address, t.from_address, t.to_address),
                from_address=t.from_address, to_address=t.to_address, amount=t.amount,
                block_number=t.block.number,
                block_time=t.block.block_time if t.block.HasField("block_time") else None,
                state=t.state, transfer_id=ours.get(t.txid, ""), token_address=t.token_address,
            )  # fmt: skip
        return out
