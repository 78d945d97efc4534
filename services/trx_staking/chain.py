"""What trx-staking reads from the chain (through tron-client) and from wallet-manager, and the transactions
it builds; nothing else here talks to another service except the signing and broadcasting in
services.common.chain_ops."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import duration_pb2
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc

from services.common.chain_ops import PeerReads, upstream_error


@dataclass(frozen=True, slots=True)
class Height:
    """The head block as the chain's clock: its number and timestamp (ms)."""

    number: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class EnergyRate:
    """The network's energy per staked TRX: TotalEnergyLimit / TotalEnergyWeight (weight in whole TRX)."""

    total_limit: int
    total_weight: int

    def energy_of(self, trx: int) -> int:
        """Energy limit of a stake of `trx` whole TRX, computed as java-tron does (in double precision)."""
        if self.total_weight <= 0:
            return 0
        return int(trx * (self.total_limit / self.total_weight))

    def trx_for(self, energy: int, staked_trx: int = 0) -> int:
        """Whole TRX to add to a stake of `staked_trx` for its energy limit to reach `energy`: the weight the
        ratio asks for, rounded up, then nudged until java-tron's own arithmetic agrees."""
        if self.total_limit <= 0 or self.total_weight <= 0:
            raise ValueError("no energy is staked on the network")
        extra = max(0, -(-energy * self.total_weight // self.total_limit) - staked_trx)
        while extra > 0 and self.energy_of(staked_trx + extra - 1) >= energy:
            extra -= 1
        while self.energy_of(staked_trx + extra) < energy:
            extra += 1
        return extra


class Chain(PeerReads):
    """tron-client reads and builds (wallet lookups: PeerReads)."""

    # ---- reads ------------------------------------------------------------------------------------
    async def account(self, address: str, *, staking: bool = False) -> tc.Account:
        view = tc.ACCOUNT_VIEW_STAKING if staking else tc.ACCOUNT_VIEW_BASIC
        try:
            resp = await self._tron.GetAccount(tc.GetAccountRequest(address=address, view=view))
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the account") from None
        return resp.account

    async def resources(self, address: str) -> tc.AccountResource:
        try:
            resp = await self._tron.GetAccountResource(tc.GetAccountResourceRequest(address=address))
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the account's resources") from None
        return resp.resource

    async def height(self) -> Height:
        try:
            resp = await self._tron.GetNetworkHeight(tc.GetNetworkHeightRequest())
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the chain height") from None
        return Height(resp.head_block_number, resp.head_block_time.ToMilliseconds())

    async def parameters(self) -> dict[str, int]:
        try:
            resp = await self._tron.GetChainParameters(tc.GetChainParametersRequest())
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the chain parameters") from None
        return {p.key: p.value for p in resp.parameters}

    async def energy_rate(self, address: str) -> EnergyRate:
        r = await self.resources(address)
        return EnergyRate(r.total_energy_limit, r.total_energy_weight)

    async def energy_price(self) -> int:
        try:
            return (await self._tron.GetNetworkFees(tc.GetNetworkFeesRequest())).energy_price_sun
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the network fees") from None

    async def accounts(self, addresses: list[str], *, staking: bool = False) -> list[tc.Account]:
        return list(await asyncio.gather(*(self.account(a, staking=staking) for a in addresses)))

    async def transaction_info(self, txid: str) -> tc.TransactionInfo | None:
        """The receipt of an included transaction; None when it is in no block."""
        try:
            return (await self._tron.GetTransactionInfo(tc.GetTransactionInfoRequest(txid=txid))).info
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise upstream_error(exc, "tron-client", "to read the transaction's receipt") from None

    # ---- building ---------------------------------------------------------------------------------
    async def build(self, owner: str, expiration_seconds: int, **params: Any) -> common_pb2.Transaction:
        """The unsigned system-contract transaction (one of BuildTransactionRequest's params, by name);
        tron-client sets the reference block and the expiration. Raises the tron-client's gRPC error."""
        req = tc.BuildTransactionRequest(
            owner_address=owner, expiration=duration_pb2.Duration(seconds=expiration_seconds), **params
        )
        return (await self._tron.BuildTransaction(req)).transaction
