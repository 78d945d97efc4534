"""wallet-manager's gRPC servicer: RPCs not implemented yet answer UNIMPLEMENTED naming the method."""

from __future__ import annotations

from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc

from services.common.server import Runtime, with_unimplemented_defaults


@with_unimplemented_defaults
class WalletManagerServicer(wallet_manager_pb2_grpc.WalletManagerServiceServicer):
    """WalletManagerService; later issues replace the UNIMPLEMENTED defaults method by method."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
