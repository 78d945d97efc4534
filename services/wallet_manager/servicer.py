"""wallet-manager's gRPC servicer: request_id handling and delegation; the work is in wallets.py / signing.py.

Mutations run once per request_id (`@idempotent`, services.common.idempotency) except the two signing
RPCs, whose append-only signing log is their idempotency record (see signing.py). A database that cannot
be reached answers UNAVAILABLE (retryable), as in every service (services.common.interceptors).
Custody changes and every signature made or refused are audit events (docs/audit.md); an idempotent
replay is not a second event.
"""

from __future__ import annotations

from typing import Any

from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc

from services.common import errors
from services.common.audit import AuditEvent, Outcome
from services.common.idempotency import idempotent
from services.common.pagination import Page
from services.common.server import Runtime
from services.wallet_manager import metrics
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
        resp = await self._wallets.create(request)
        w = resp.wallet
        facts = {"kind": pb.Wallet.Kind.Name(w.kind), "owner_id": w.owner_id, "address": w.address}
        await self._audit(AuditEvent.WALLET_CREATED, w.wallet_id, facts)
        if request.private_key:
            await self._audit(AuditEvent.KEY_IMPORTED, w.wallet_id, {"address": w.address})
        metrics.OPERATIONS.labels("create").inc()
        return resp

    async def GetWallet(self, request: pb.GetWalletRequest, context: Ctx) -> pb.GetWalletResponse:
        return pb.GetWalletResponse(wallet=await self._wallets.get(request.wallet_id))

    @idempotent(pb.UpdateWalletResponse)
    async def UpdateWallet(self, request: pb.UpdateWalletRequest, context: Ctx) -> pb.UpdateWalletResponse:
        resp = await self._wallets.update(request)
        paths = sorted(request.update_mask.paths)
        await self._audit(AuditEvent.WALLET_UPDATED, resp.wallet.wallet_id, {"fields": paths})
        if "policy" in paths:
            await self._audit(AuditEvent.POLICY_CHANGED, resp.wallet.wallet_id, {})
        metrics.OPERATIONS.labels("update").inc()
        return resp

    @idempotent(pb.DeleteWalletResponse)
    async def DeleteWallet(self, request: pb.DeleteWalletRequest, context: Ctx) -> pb.DeleteWalletResponse:
        resp = await self._wallets.delete(request)
        await self._audit(AuditEvent.WALLET_DELETED, resp.wallet.wallet_id, {"force": request.force})
        metrics.OPERATIONS.labels("delete").inc()
        return resp

    async def GetWalletBalance(
        self, request: pb.GetWalletBalanceRequest, context: Ctx
    ) -> pb.GetWalletBalanceResponse:
        with metrics.balance_query():
            return await self._wallets.balance(request.wallet_id)

    async def ListWalletTransactions(
        self, request: pb.ListWalletTransactionsRequest, context: Ctx
    ) -> pb.ListWalletTransactionsResponse:
        return await self._wallets.transactions(request)

    # -- signing ---------------------------------------------------------------------------------------

    async def SignTransaction(
        self, request: pb.SignTransactionRequest, context: Ctx
    ) -> pb.SignTransactionResponse:
        facts = {"request_id": request.request_id, "purpose": request.purpose}
        try:
            resp = await self._signing.sign_transaction(request)
        except (errors.PermissionDenied, errors.FailedPrecondition) as exc:
            metrics.SIGNING_REFUSALS.labels(exc.reason).inc()
            await self._audit(AuditEvent.SIGNATURE_REFUSED, request.wallet_id, {**facts, "rule": exc.reason})
            raise
        metrics.OPERATIONS.labels("sign_transaction").inc()
        await self._audit(
            AuditEvent.SIGNATURE_MADE,
            request.wallet_id,
            {**facts, "txid": resp.txid, "signer": resp.signer_address},
        )
        return resp

    async def SignMessage(self, request: pb.SignMessageRequest, context: Ctx) -> pb.SignMessageResponse:
        facts = {"request_id": request.request_id, "kind": "message"}
        try:
            resp = await self._signing.sign_message(request)
        except (errors.PermissionDenied, errors.FailedPrecondition) as exc:
            metrics.SIGNING_REFUSALS.labels(exc.reason).inc()
            await self._audit(AuditEvent.SIGNATURE_REFUSED, request.wallet_id, {**facts, "rule": exc.reason})
            raise
        metrics.OPERATIONS.labels("sign_message").inc()
        await self._audit(
            AuditEvent.SIGNATURE_MADE, request.wallet_id, {**facts, "signer": resp.signer_address}
        )
        return resp

    async def _audit(self, event: AuditEvent, wallet_id: str, details: dict[str, Any]) -> None:
        outcome = Outcome.DENIED if event is AuditEvent.SIGNATURE_REFUSED else Outcome.SUCCEEDED
        await self._rt.audit.append(event, resource=f"wallets/{wallet_id}", outcome=outcome, details=details)

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
        resp = await self._wallets.derive(request)
        metrics.OPERATIONS.labels("derive_address").inc()
        return resp

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
