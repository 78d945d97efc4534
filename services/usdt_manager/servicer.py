"""usdt-manager's gRPC servicer: RPCs not implemented yet answer UNIMPLEMENTED naming the method."""

from __future__ import annotations

from tronpay.usdt_manager.v1 import usdt_manager_pb2_grpc

from services.common.server import Runtime, with_unimplemented_defaults


@with_unimplemented_defaults
class UsdtManagerServicer(usdt_manager_pb2_grpc.UsdtManagerServiceServicer):
    """UsdtManagerService; later issues replace the UNIMPLEMENTED defaults method by method."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
