"""payment-gateway's gRPC servicer: RPCs not implemented yet answer UNIMPLEMENTED naming the method."""

from __future__ import annotations

from tronpay.payment_gateway.v1 import payment_gateway_pb2_grpc

from services.common.server import Runtime, with_unimplemented_defaults


@with_unimplemented_defaults
class PaymentGatewayServicer(payment_gateway_pb2_grpc.PaymentGatewayServiceServicer):
    """PaymentGatewayService; later issues replace the UNIMPLEMENTED defaults method by method."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
