"""What wallet-manager reads from and registers with tron-client (its only way to the chain)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from services.common import errors
from services.common.clients import ServiceClients
from services.common.idempotency import fingerprint
from services.common.settings import ServiceName
from services.wallet_manager.settings import WalletManagerSettings

WATCHER = "wallet-manager"
MAX_BALANCE_ADDRESSES = 100  # a wallet's balance sums at most this many of its addresses


def upstream_error(exc: grpc.aio.AioRpcError, what: str) -> errors.DomainError:
    """tron-client's failure as ours: retryable codes stay UNAVAILABLE, the rest keep their meaning."""
    code = exc.code()
    meta = {"upstream": "tron-client", "upstream_code": code.name if code else "UNKNOWN"}
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return errors.FailedPrecondition(
            f"tron-client refused {what}", reason="UPSTREAM_REFUSED", metadata=meta
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.DeadlineExceeded(f"tron-client did not answer {what} in time", metadata=meta)
    return errors.Unavailable(
        f"cannot {what} through tron-client", reason="TRON_CLIENT_UNAVAILABLE", metadata=meta
    )


class Chain:
    def __init__(self, settings: WalletManagerSettings, clients: ServiceClients) -> None:
        self._settings = settings
        self._clients = clients
        self.tokens = list(settings.wallet_tokens)

    @property
    def _stub(self) -> tc_grpc.TronClientServiceStub:
        return self._clients.stub(ServiceName.TRON_CLIENT, tc_grpc.TronClientServiceStub)

    async def network_info(self) -> tuple[str, int]:
        """(network name, chain id) of tron-client's chain."""
        try:
            # Asked once, when the vault opens (often while the cluster starts): wait for tron-client to
            # come up, within the call's deadline, rather than fail at once.
            info = await self._stub.GetNetworkInfo(tc.GetNetworkInfoRequest(), wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "read the network's identity") from None
        return info.network, int(info.chain_id or 0)

    async def permission_keys(self, owner: str, permission_id: int) -> dict[str, int] | None:
        """The keys (address -> weight) of an account's permission on chain (0 owner, 2 and up active); None
        when the account or that permission does not exist."""
        try:
            acc = (await self._stub.GetAccount(tc.GetAccountRequest(address=owner))).account
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "read the account's permissions") from None
        if not acc.exists:
            return None
        if permission_id == 0:
            found = [acc.owner_permission] if acc.HasField("owner_permission") else []
        else:
            found = [p for p in acc.active_permissions if p.id == permission_id]
        return {k.address: k.weight for k in found[0].keys} if found else None

    async def contract_origin(self, contract: str) -> str | None:
        """The account that deployed `contract` (getcontract's origin_address); None when none is there."""
        try:
            resp = await self._stub.GetContract(tc.GetContractRequest(contract_address=contract))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise upstream_error(exc, "read the contract") from None
        return resp.contract.origin_address

    async def watch(self, addresses: Sequence[str], label: str, watcher: str = "") -> None:
        req = tc.WatchAddressesRequest(addresses=list(addresses), watcher=watcher or WATCHER, label=label)
        # Watching is idempotent per (address, watcher): the key names the request's content, so a retry
        # (or a re-run after a crash) replays it and a different request never collides with it.
        req.request_id = "watch-" + fingerprint(req)[:40]
        try:
            await self._stub.WatchAddresses(req)
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "register the address on the watch list") from None

    async def balance(
        self, wallet_id: str, primary: str, addresses: Sequence[str]
    ) -> pb.GetWalletBalanceResponse:
        """TRX, tokens, energy and bandwidth summed over the wallet's addresses."""
        addresses = list(addresses)[:MAX_BALANCE_ADDRESSES] or [primary]
        stub = self._stub
        try:
            accounts, resources, tokens = await asyncio.gather(
                asyncio.gather(*(stub.GetAccount(tc.GetAccountRequest(address=a)) for a in addresses)),
                asyncio.gather(
                    *(stub.GetAccountResource(tc.GetAccountResourceRequest(address=a)) for a in addresses)
                ),
                asyncio.gather(
                    *(
                        stub.GetTokenBalance(tc.GetTokenBalanceRequest(address=a, token_address=t))
                        for t in self.tokens
                        for a in addresses
                    )
                ),
            )
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "read the wallet's balance") from None

        out = pb.GetWalletBalanceResponse(wallet_id=wallet_id, address=primary)
        staked = {common_pb2.RESOURCE_TYPE_BANDWIDTH: 0, common_pb2.RESOURCE_TYPE_ENERGY: 0}
        for acc in accounts:
            out.trx_balance_sun += acc.account.balance_sun
            for f in acc.account.frozen:
                if f.resource in staked:
                    staked[f.resource] += f.amount_sun
        bw_limit = bw_used = en_limit = en_used = 0
        for r in resources:
            res = r.resource
            bw_limit += res.free_net_limit + res.net_limit
            bw_used += res.free_net_used + res.net_used
            en_limit += res.energy_limit
            en_used += res.energy_used
        out.resources.add(
            resource=common_pb2.RESOURCE_TYPE_BANDWIDTH,
            limit=bw_limit,
            used=bw_used,
            staked_sun=staked[common_pb2.RESOURCE_TYPE_BANDWIDTH],
        )
        out.resources.add(
            resource=common_pb2.RESOURCE_TYPE_ENERGY,
            limit=en_limit,
            used=en_used,
            staked_sun=staked[common_pb2.RESOURCE_TYPE_ENERGY],
        )
        n = len(addresses)
        block = 0
        for i, token in enumerate(self.tokens):
            usdt = token == self._settings.USDT_CONTRACT_ADDRESS
            amount = 0
            for r in tokens[i * n : (i + 1) * n]:
                amount += r.balance
                block = max(block, r.block.number)
            out.token_balances.add(
                asset=common_pb2.ASSET_USDT if usdt else common_pb2.ASSET_TRC20,
                token_address=token,
                symbol="USDT" if usdt else "",
                decimals=6 if usdt else 0,
                amount=amount,
            )
        out.block_number = block
        out.update_time.GetCurrentTime()
        return out

    async def transfers(
        self, address: str, page_size: int, page_token: str, asset: int, direction: int
    ) -> pb.ListWalletTransactionsResponse:
        req = tc.ListTransfersRequest(
            address=address,
            page_size=page_size,
            page_token=page_token,
            asset=asset,  # type: ignore[arg-type]
            direction=direction,  # type: ignore[arg-type]
        )
        try:
            resp = await self._stub.ListTransfers(req)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise errors.InvalidArgument(
                    "page_token is not valid",
                    [errors.FieldViolation("page_token", "not a token from a previous response")],
                ) from None
            raise upstream_error(exc, "list the wallet's transfers") from None
        out = pb.ListWalletTransactionsResponse(next_page_token=resp.next_page_token)
        for t in resp.transfers:
            if t.from_address == address and t.to_address == address:
                d = common_pb2.DIRECTION_SELF
            elif t.to_address == address:
                d = common_pb2.DIRECTION_INCOMING
            else:
                d = common_pb2.DIRECTION_OUTGOING
            item = out.transactions.add(
                txid=t.txid,
                event_index=t.event_index,
                asset=t.asset,
                token_address=t.token_address,
                direction=d,
                from_address=t.from_address,
                to_address=t.to_address,
                amount=t.amount,
                block_number=t.block.number,
                state=t.state,
            )
            if t.block.HasField("block_time"):
                item.block_time.CopyFrom(t.block.block_time)
        return out

    @staticmethod
    def holds_funds(balance: pb.GetWalletBalanceResponse) -> bool:
        return balance.trx_balance_sun > 0 or any(b.amount > 0 for b in balance.token_balances)
