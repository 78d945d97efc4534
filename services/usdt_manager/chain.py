"""What usdt-manager reads from the chain (through tron-client) and from wallet-manager; nothing else here
talks to another service except the signing and broadcasting in services.common.chain_ops."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import duration_pb2
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc

from services.common import errors
from services.common.chain_ops import PeerReads, upstream_error
from services.common.tron.abi import decode_result, encode_args
from services.common.tron.wire import INT64_MAX


class CallReverts(Exception):
    """A contract call the node says would revert (the estimate of a transfer or approval)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Estimate:
    energy: int
    price_sun: int


class Chain(PeerReads):
    """tron-client reads and builds (wallet lookups: PeerReads)."""

    # ---- token views ------------------------------------------------------------------------------
    async def view(self, token: str, signature: str, types: list[str], args: list[object]) -> bytes | None:
        """Return data of a read-only call; None when it reverts (a token without that function)."""
        req = tc.TriggerConstantContractRequest(
            owner_address=token, contract_address=token, function_selector=signature,
            parameter=encode_args(types, args),
        )  # fmt: skip
        try:
            resp = await self._tron.TriggerConstantContract(req)
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", f"to call {signature}") from None
        return bytes(resp.result) if resp.success and len(resp.result) >= 32 else None

    async def blacklisted(self, token: str, address: str) -> bool:
        """The token's isBlackListed(address), read now (a token without a blacklist blacklists nobody)."""
        data = await self.view(token, "isBlackListed(address)", ["address"], [address])
        return data is not None and bool(decode_result(["bool"], data[:32])[0])

    async def paused(self, token: str) -> bool:
        """The token's paused() (a token without it is never paused)."""
        data = await self.view(token, "paused()", [], [])
        return data is not None and bool(decode_result(["bool"], data[:32])[0])

    async def allowance(self, token: str, owner: str, spender: str) -> int:
        data = await self.view(token, "allowance(address,address)", ["address", "address"], [owner, spender])
        if data is None:
            raise errors.FailedPrecondition("allowance() failed on this contract", reason="NOT_A_TOKEN")
        (amount,) = decode_result(["uint256"], data[:32])
        return min(int(amount), INT64_MAX)  # an "unlimited" approval (2^256-1) shows as the int64 maximum

    async def token_balance(self, token: str, address: str, *, solidified: bool = False) -> tuple[int, int]:
        """(balance, block number it was read at)."""
        req = tc.GetTokenBalanceRequest(address=address, token_address=token, solidified=solidified)
        try:
            resp = await self._tron.GetTokenBalance(req)
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the token balance") from None
        return resp.balance, resp.block.number

    # ---- accounts, fees, estimates ----------------------------------------------------------------
    async def account(self, address: str) -> tc.Account:
        try:
            return (await self._tron.GetAccount(tc.GetAccountRequest(address=address))).account
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the account") from None

    async def resources(self, address: str) -> tc.AccountResource:
        try:
            return (
                await self._tron.GetAccountResource(tc.GetAccountResourceRequest(address=address))
            ).resource
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the account's resources") from None

    async def fees(self) -> tc.GetNetworkFeesResponse:
        try:
            return await self._tron.GetNetworkFees(tc.GetNetworkFeesRequest())
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the network fees") from None

    async def head_block(self) -> int:
        try:
            return (await self._tron.GetNetworkHeight(tc.GetNetworkHeightRequest())).head_block_number
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the chain height") from None

    async def estimate(self, owner: str, token: str, signature: str, parameter: bytes) -> Estimate:
        """Energy the call needs (estimateenergy: it sees whether a recipient's balance slot is new)."""
        req = tc.EstimateEnergyRequest(
            owner_address=owner, contract_address=token, function_selector=signature, parameter=parameter
        )
        try:
            resp = await self._tron.EstimateEnergy(req)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise CallReverts(exc.details() or "the call reverts") from None
            raise upstream_error(exc, "tron-client", "to estimate the energy") from None
        return Estimate(resp.energy_required, resp.energy_price_sun)

    # ---- building ---------------------------------------------------------------------------------
    async def build(
        self,
        owner: str,
        token: str,
        signature: str,
        parameter: bytes,
        fee_limit: int,
        expiration_seconds: int,
    ) -> common_pb2.Transaction:
        """The unsigned TriggerSmartContract transaction (tron-client sets ref block and expiration)."""
        req = tc.BuildTransactionRequest(
            owner_address=owner,
            trigger_smart_contract=tc.TriggerSmartContractParams(
                contract_address=token,
                function_selector=signature,
                parameter=parameter,
                fee_limit_sun=fee_limit,
            ),
            expiration=duration_pb2.Duration(seconds=expiration_seconds),
        )
        resp = await self._tron.BuildTransaction(req)
        return resp.transaction

    # ---- history ----------------------------------------------------------------------------------
    async def watched(self, address: str) -> bool:
        """Whether tron-client records transfers of the address (any watcher)."""
        req = tc.ListWatchedAddressesRequest(address=address, page_size=1)
        try:
            return bool((await self._tron.ListWatchedAddresses(req)).watched_addresses)
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the watch list") from None

    async def transfers(
        self, address: str, token: str, asset: int, direction: int, page_size: int, page_token: str
    ) -> tc.ListTransfersResponse:
        req = tc.ListTransfersRequest(
            address=address, token_address=token, asset=asset,  # type: ignore[arg-type]
            direction=direction,  # type: ignore[arg-type]
            page_size=page_size, page_token=page_token,
        )  # fmt: skip
        try:
            return await self._tron.ListTransfers(req)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise errors.InvalidArgument(
                    "page_token is not valid for this request",
                    [errors.FieldViolation("page_token", "not a token from a previous response with the same "
                                           "filters", "INVALID_PAGE_TOKEN")],
                    reason="INVALID_PAGE_TOKEN",
                ) from None  # fmt: skip
            raise upstream_error(exc, "tron-client", "to list the transfers") from None
