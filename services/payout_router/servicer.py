"""payout-router's gRPC servicer: RPCs not implemented yet answer UNIMPLEMENTED naming the method."""

from __future__ import annotations

from tronpay.payout_router.v1 import payout_router_pb2_grpc

from services.common.server import Runtime, with_unimplemented_defaults


@with_unimplemented_defaults
class PayoutRouterServicer(payout_router_pb2_grpc.PayoutRouterServiceServicer):
    """PayoutRouterService; later issues replace the UNIMPLEMENTED defaults method by method."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
