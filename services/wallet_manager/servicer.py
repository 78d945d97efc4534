"""wallet-manager's gRPC servicer: request_id handling and delegation; the work is in wallets.py / signing.py.

Mutations run once per request_id (`@idempotent`, services.common.idempotency) except the two signing
RPCs, whose append-only signing log is their idempotency record (see signing.py). A database that cannot
be reached answers UNAVAILABLE (retryable), as in every service (services.common.interceptors).
"""

from __future__ import annotations

from typing import Any

from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc

from services.common.idempotency import idempotent
from services.common.pagination import Page
from services.common.server import Runtime
from services.wallet_manager.convert import log_to_pb
from services.wallet_manager.settings import WalletManagerSettings
from services.wallet_manager.signing import Signing
from services.wallet_manager.store import Store
from services.wallet_manager.vault.errors import SignatureMismatch
from services.wallet_manager.vault.messages import recover_message_v2
from services.wallet_manager.wallets import Wallets

Ctx = Any


class WalletManagerServicer(wallet_manager_pb2_grpc.WalletManagerServiceServicer):
    """WalletManagerService."""

    def __init__(
        self, rt: Runtime[WalletManagerSettings], store: Store, wallets: Wallets, signing: Signing
    ) -> None:
        self._rt = rt
        self._store = store
        self._wallets = wallets
        self._signing = signing
        self.idempotency = rt.idempotency

    # -- wallets ---------------------------------------------------------------------------------------

    async def ListWallets(self, request: pb.ListWalletsRequest, context: Ctx) -> pb.ListWalletsResponse:
        return await self._wallets.list_wallets(request)

    @idempotent(pb.CreateWalletResponse)
    async def CreateWallet(self, request: pb.CreateWalletRequest, context: Ctx) -> pb.CreateWalletResponse:
        return await self._wallets.create(request)

    async def GetWallet(self, request: pb.GetWalletRequest, context: Ctx) -> pb.GetWalletResponse:
        return pb.GetWalletResponse(wallet=await self._wallets.get(request.wallet_id))

    @idempotent(pb.UpdateWalletResponse)
    async def UpdateWallet(self, request: pb.UpdateWalletRequest, context: Ctx) -> pb.UpdateWalletResponse:
        return await self._wallets.update(request)

    @idempotent(pb.DeleteWalletResponse)
    async def DeleteWallet(self, request: pb.DeleteWalletRequest, context: Ctx) -> pb.DeleteWalletResponse:
        return await self._wallets.delete(request)

    async def GetWalletBalance(
        self, request: pb.GetWalletBalanceRequest, context: Ctx
    ) -> pb.GetWalletBalanceResponse:
        return await self._wallets.balance(request.wallet_id)

    async def ListWalletTransactions(
        self, request: pb.ListWalletTransactionsRequest, context: Ctx
    ) -> pb.ListWalletTransactionsResponse:
        return await self._wallets.transactions(request)

    # -- signing ---------------------------------------------------------------------------------------

    async def SignTransaction(
        self, request: pb.SignTransactionRequest, context: Ctx
    ) -> pb.SignTransactionResponse:
        return await self._signing.sign_transaction(request)

    async def SignMessage(self, request: pb.SignMessageRequest, context: Ctx) -> pb.SignMessageResponse:
        return await self._signing.sign_message(request)

    async def ListSignatures(
        self, request: pb.ListSignaturesRequest, context: Ctx
    ) -> pb.ListSignaturesResponse:
        if request.wallet_id:
            await self._wallets.get_doc(request.wallet_id)
        page = Page.of(request)
        docs = await self._store.list_log(request.wallet_id, str(page.after or ""), page.fetch_limit)
        records, token = page.finish(docs, key=lambda d: d["_id"])
        return pb.ListSignaturesResponse(records=[log_to_pb(d) for d in records], next_page_token=token)

    # -- addresses, keys, messages, TronLink -----------------------------------------------------------

    @idempotent(pb.DeriveAddressResponse)
    async def DeriveAddress(self, request: pb.DeriveAddressRequest, context: Ctx) -> pb.DeriveAddressResponse:
        return await self._wallets.derive(request)

    async def GetPublicKey(self, request: pb.GetPublicKeyRequest, context: Ctx) -> pb.GetPublicKeyResponse:
        return await self._wallets.public_key(request)

    async def VerifyMessage(self, request: pb.VerifyMessageRequest, context: Ctx) -> pb.VerifyMessageResponse:
        try:
            recovered = recover_message_v2(request.message, request.signature)
        except SignatureMismatch:
            return pb.VerifyMessageResponse(valid=False)
        return pb.VerifyMessageResponse(valid=recovered == request.address, recovered_address=recovered)

    @idempotent(pb.CreateTronLinkChallengeResponse)
    async def CreateTronLinkChallenge(
        self, request: pb.CreateTronLinkChallengeRequest, context: Ctx
    ) -> pb.CreateTronLinkChallengeResponse:
        return await self._wallets.create_challenge(request)
