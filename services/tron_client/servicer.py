"""tron-client's gRPC servicer: network, build/broadcast and read RPCs here; the watch-list and transfer
RPCs delegate to TransferRpcs (transfer_rpcs.py), and GetNetworkStatus reads block sync's cursor.

The three mutations (BroadcastTransaction, WatchAddresses, UnwatchAddresses) run once per request_id
(`@idempotent`, services.common.idempotency); the contract makes request_id required on all three.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import duration_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as pb
from tronpay.tron_client.v1 import tron_client_pb2_grpc

from services.common.errors import FieldViolation, InvalidArgument
from services.common.idempotency import idempotent
from services.common.server import Runtime
from services.common.timestamps import timestamp_ms
from services.common.tron import tx as ttx
from services.common.tron.address import to_base58
from services.tron_client import convert
from services.tron_client.builder import BroadcastOutcome, TransactionService, contract_address, contract_of
from services.tron_client.network import Block, Network
from services.tron_client.pool import NodeState
from services.tron_client.queries import Queries
from services.tron_client.settings import TronClientSettings
from services.tron_client.sync import BlockSync
from services.tron_client.transfer_rpcs import TransferRpcs

BLOCK_SECONDS = 3  # TRON block interval
NODE_STATE_PB = {
    NodeState.ACTIVE: pb.NodeStatus.STATE_ACTIVE,
    NodeState.SET_ASIDE: pb.NodeStatus.STATE_SET_ASIDE,
    NodeState.PROBING: pb.NodeStatus.STATE_PROBING,
}
OUTCOME_PB = {
    BroadcastOutcome.ACCEPTED: pb.BROADCAST_RESULT_ACCEPTED,
    BroadcastOutcome.DUPLICATE: pb.BROADCAST_RESULT_DUPLICATE,
}


def _duration_ms(ms: int) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromMilliseconds(ms)
    return d


def _block_ref(block: Block) -> pb.BlockRef:
    return convert.block_ref(block.number, block.block_id, block.time_ms)


class TronClientServicer(tron_client_pb2_grpc.TronClientServiceServicer):
    """TronClientService over the node pool, the watch list and the transfer store. `sync` is None when
    TRON_SYNC_ENABLED is off."""

    def __init__(
        self,
        rt: Runtime[TronClientSettings],
        network: Network,
        txs: TransactionService,
        queries: Queries,
        transfers: TransferRpcs,
        sync: BlockSync | None,
    ) -> None:
        self._rt = rt
        self._network = network
        self._txs = txs
        self._queries = queries
        self._transfers = transfers
        self._sync = sync
        self.idempotency = rt.idempotency  # what @idempotent uses
        # The same allowance as for the head block's age, in TRON's 3 s slots.
        self._max_sync_lag_blocks = rt.settings.TRON_SYNC_MAX_LAG_SECONDS // BLOCK_SECONDS

    # ---- network ----------------------------------------------------------------------------------
    async def GetNetworkInfo(
        self, request: pb.GetNetworkInfoRequest, context: Any
    ) -> pb.GetNetworkInfoResponse:
        info = await self._network.info()
        return pb.GetNetworkInfoResponse(
            network=info.network,
            chain_id=str(info.chain_id),
            network_id=str(info.network_id),
            node_version=info.node_version,
            witness_count=info.witness_count,
            usdt_contract_address=self._rt.settings.USDT_CONTRACT_ADDRESS,
        )

    async def GetNetworkStatus(
        self, request: pb.GetNetworkStatusRequest, context: Any
    ) -> pb.GetNetworkStatusResponse:
        st = await self._network.status()
        nodes = [
            pb.NodeStatus(
                url=n.url,
                state=NODE_STATE_PB[n.state],
                latency=_duration_ms(n.latency_ms),
                head_block_number=n.head,
                head_lag_blocks=n.head_lag,
                error_count=n.error_count,
                rate_limited_count=n.rate_limited_count,
                score=n.score,
                last_error_time=timestamp_ms(n.last_error_ms),
                last_success_time=timestamp_ms(n.last_success_ms),
            )
            for n in st.nodes
        ]
        sync_block, sync_lag, synced = None, 0, st.synced
        if self._sync is not None:  # with block sync on, "synced" also means sync keeps up
            cursor, _ = self._sync.status()
            sync_lag = max(0, st.head.number - (cursor.number if cursor else 0))
            if cursor is not None:
                sync_block = pb.BlockRef(number=cursor.number, block_id=cursor.block_id)
            synced = synced and cursor is not None and sync_lag <= self._max_sync_lag_blocks
        return pb.GetNetworkStatusResponse(
            reachable=st.reachable,
            synced=synced,
            latency=_duration_ms(st.latency_ms),
            head_block=_block_ref(st.head),
            solidified_block=_block_ref(st.solidified),
            sync_block=sync_block,
            sync_lag_blocks=sync_lag,
            nodes=nodes,
            check_time=timestamp_ms(st.checked_ms),
        )

    async def GetNetworkHeight(
        self, request: pb.GetNetworkHeightRequest, context: Any
    ) -> pb.GetNetworkHeightResponse:
        h = await self._network.height()
        return pb.GetNetworkHeightResponse(
            head_block_number=h.head.number,
            solidified_block_number=h.solidified.number,
            head_block_time=timestamp_ms(h.head.time_ms),
            solidified_block_time=timestamp_ms(h.solidified.time_ms),
        )

    async def GetNetworkFees(
        self, request: pb.GetNetworkFeesRequest, context: Any
    ) -> pb.GetNetworkFeesResponse:
        f = await self._network.fees()
        return pb.GetNetworkFeesResponse(
            energy_price_sun=f.energy_price_sun,
            bandwidth_price_sun=f.bandwidth_price_sun,
            create_account_fee_sun=f.create_account_fee_sun,
            create_account_system_contract_fee_sun=f.create_account_system_contract_fee_sun,
            memo_fee_sun=f.memo_fee_sun,
            multi_sign_fee_sun=f.multi_sign_fee_sun,
            max_fee_limit_sun=f.max_fee_limit_sun,
            update_time=timestamp_ms(f.read_ms),
        )

    # ---- transactions -----------------------------------------------------------------------------
    async def BuildTransaction(
        self, request: pb.BuildTransactionRequest, context: Any
    ) -> pb.BuildTransactionResponse:
        spec = contract_of(request)
        built = await self._txs.build(
            spec,
            memo=request.memo.encode(),
            expiration_seconds=request.expiration.seconds if request.HasField("expiration") else 0,
            permission_id=request.permission_id,
        )
        resp = pb.BuildTransactionResponse(transaction=convert.transaction_message(built.raw_data))
        if spec.type_name == "CreateSmartContract":
            resp.contract_address = to_base58(contract_address(built.txid, spec.value["owner_address"]))
        return resp

    @idempotent(pb.BroadcastTransactionResponse)
    async def BroadcastTransaction(
        self, request: pb.BroadcastTransactionRequest, context: Any
    ) -> pb.BroadcastTransactionResponse:
        tx = request.transaction
        violations = []
        try:
            ttx.decode_raw(tx.raw_data)
        except ValueError as exc:
            violations.append(FieldViolation("transaction.raw_data", f"not a TRON transaction: {exc}"))
        if tx.txid and tx.txid != ttx.txid(tx.raw_data):
            violations.append(FieldViolation("transaction.txid", "is not sha256(raw_data)"))
        if tx.raw_data_hex and tx.raw_data_hex != tx.raw_data.hex():
            violations.append(FieldViolation("transaction.raw_data_hex", "differs from raw_data"))
        if not tx.signatures:
            violations.append(
                FieldViolation("transaction.signatures", "a broadcast transaction must be signed")
            )
        if violations:
            raise InvalidArgument("invalid transaction", violations)
        txid, outcome = await self._txs.broadcast(tx.raw_data, list(tx.signatures))
        return pb.BroadcastTransactionResponse(txid=txid, result=OUTCOME_PB[outcome])

    async def GetTransaction(
        self, request: pb.GetTransactionRequest, context: Any
    ) -> pb.GetTransactionResponse:
        return await self._queries.transaction(request.txid)

    async def GetTransactionInfo(
        self, request: pb.GetTransactionInfoRequest, context: Any
    ) -> pb.GetTransactionInfoResponse:
        return pb.GetTransactionInfoResponse(info=await self._queries.transaction_info(request.txid))

    # ---- contracts and accounts -------------------------------------------------------------------
    async def TriggerConstantContract(
        self, request: pb.TriggerConstantContractRequest, context: Any
    ) -> pb.TriggerConstantContractResponse:
        r = request
        return await self._queries.constant_call(
            r.owner_address, r.contract_address, r.function_selector, r.parameter, r.call_value_sun
        )

    async def EstimateEnergy(
        self, request: pb.EstimateEnergyRequest, context: Any
    ) -> pb.EstimateEnergyResponse:
        r = request
        return await self._queries.estimate_energy(
            r.owner_address, r.contract_address, r.function_selector, r.parameter, r.call_value_sun
        )

    async def GetAccount(self, request: pb.GetAccountRequest, context: Any) -> pb.GetAccountResponse:
        return pb.GetAccountResponse(account=await self._queries.account(request.address, request.view))

    async def GetAccountResource(
        self, request: pb.GetAccountResourceRequest, context: Any
    ) -> pb.GetAccountResourceResponse:
        return pb.GetAccountResourceResponse(resource=await self._queries.account_resource(request.address))

    async def GetTokenBalance(
        self, request: pb.GetTokenBalanceRequest, context: Any
    ) -> pb.GetTokenBalanceResponse:
        return await self._queries.token_balance(
            request.address, request.token_address, solidified=request.solidified
        )

    async def GetChainParameters(
        self, request: pb.GetChainParametersRequest, context: Any
    ) -> pb.GetChainParametersResponse:
        return await self._queries.chain_parameters()

    async def GetContract(self, request: pb.GetContractRequest, context: Any) -> pb.GetContractResponse:
        return pb.GetContractResponse(contract=await self._queries.contract(request.contract_address))

    # ---- watch list and transfers (transfer_rpcs.py) ----------------------------------------------
    @idempotent(pb.WatchAddressesResponse)
    async def WatchAddresses(
        self, request: pb.WatchAddressesRequest, context: Any
    ) -> pb.WatchAddressesResponse:
        return await self._transfers.watch(request)

    @idempotent(pb.UnwatchAddressesResponse)
    async def UnwatchAddresses(
        self, request: pb.UnwatchAddressesRequest, context: Any
    ) -> pb.UnwatchAddressesResponse:
        return await self._transfers.unwatch(request)

    async def ListWatchedAddresses(
        self, request: pb.ListWatchedAddressesRequest, context: Any
    ) -> pb.ListWatchedAddressesResponse:
        return await self._transfers.list_watched(request)

    async def ListTransfers(self, request: pb.ListTransfersRequest, context: Any) -> pb.ListTransfersResponse:
        return await self._transfers.list_transfers(request)

    async def StreamTransfers(
        self, request: pb.StreamTransfersRequest, context: Any
    ) -> AsyncIterator[pb.StreamTransfersResponse]:
        # An async generator itself: that is how grpc.aio (and the interceptor) recognise a streaming handler.
        async for response in self._transfers.stream(request):
            yield response
