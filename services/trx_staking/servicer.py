"""trx-staking's gRPC servicer: RPCs not implemented yet answer UNIMPLEMENTED naming the method."""

from __future__ import annotations

from tronpay.trx_staking.v1 import trx_staking_pb2_grpc

from services.common.server import Runtime, with_unimplemented_defaults


@with_unimplemented_defaults
class TrxStakingServicer(trx_staking_pb2_grpc.TrxStakingServiceServicer):
    """TrxStakingService; later issues replace the UNIMPLEMENTED defaults method by method."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
