"""tron-client's gRPC servicer. The network RPCs are implemented; the rest answer UNIMPLEMENTED for now."""

from __future__ import annotations

from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as pb
from tronpay.tron_client.v1 import tron_client_pb2_grpc

from services.common.server import Runtime, with_unimplemented_defaults
from services.tron_client.network import Block, Network
from services.tron_client.transfer_rpcs import TransferRpcs


def _timestamp(ms: int) -> timestamp_pb2.Timestamp | None:
    if ms <= 0:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def _block_ref(block: Block) -> pb.BlockRef:
    return pb.BlockRef(number=block.number, block_id=block.block_id, block_time=_timestamp(block.time_ms))


@with_unimplemented_defaults
class TronClientServicer(TransferRpcs, tron_client_pb2_grpc.TronClientServiceServicer):
    """TronClientService over one Network (node access + brief per-endpoint caching)."""

    def __init__(self, rt: Runtime, network: Network) -> None:
        self._rt = rt
        self._network = network

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
        latency = duration_pb2.Duration()
        latency.FromMilliseconds(st.latency_ms)
        node = pb.NodeStatus(
            url=st.node_url,
            state=pb.NodeStatus.STATE_ACTIVE if st.reachable else pb.NodeStatus.STATE_SET_ASIDE,
            latency=latency,
            head_block_number=st.head.number,
        )
        return pb.GetNetworkStatusResponse(
            reachable=st.reachable,
            synced=st.synced,
            latency=latency,
            head_block=_block_ref(st.head),
            solidified_block=_block_ref(st.solidified),
            nodes=[node],
            check_time=_timestamp(st.checked_ms),
        )

    async def GetNetworkHeight(
        self, request: pb.GetNetworkHeightRequest, context: Any
    ) -> pb.GetNetworkHeightResponse:
        h = await self._network.height()
        return pb.GetNetworkHeightResponse(
            head_block_number=h.head.number,
            solidified_block_number=h.solidified.number,
            head_block_time=_timestamp(h.head.time_ms),
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
            update_time=_timestamp(f.read_ms),
        )
