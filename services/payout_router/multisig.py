"""A TRON multi-signature disburser account (PAYOUT_MULTISIG_*): which wallets sign its transactions.

The account's permission (PAYOUT_MULTISIG_PERMISSION_ID) is read on chain before every transaction is built:
its keys, their weights, its threshold and, for an active permission, the operations it allows. The signer
wallets (PAYOUT_MULTISIG_SIGNER_WALLETS) are taken in their configured order, skipping any whose key is not
(or no longer) in the permission or that cannot sign (gone, watch-only: logged), until their weights reach
the threshold: the fewest signatures the chain
needs (each extra one costs bandwidth, and the chain refuses more signatures than keys). Too few is a refusal
naming its rule, before anything is signed; the chain itself refuses a transaction with fewer signatures."""

from __future__ import annotations

from tronpay.tron_client.v1 import tron_client_pb2 as tc

from services.common import errors
from services.common.chain_ops import Refusal, Signer
from services.common.logging import get_logger
from services.common.tron.tx import CONTRACT_TYPE_IDS
from services.payout_router.chain import Chain
from services.payout_router.settings import PayoutRouterSettings

log = get_logger("payout_router.multisig")


def _unusable(reason: str, message: str, **metadata: object) -> errors.DomainError:
    """A signer wallet that cannot sign: skipped, not a refusal of the payout (so not counted as one)."""
    return errors.FailedPrecondition(
        message, reason=reason, metadata={k: str(v) for k, v in metadata.items()}
    )


def allows(operations: bytes, contract_type: str) -> bool:
    """Whether an active permission's 32-byte operations bitmap allows the contract type (java-tron's
    `operations[t / 8] & (1 << t % 8)`)."""
    t = CONTRACT_TYPE_IDS[contract_type]
    return len(operations) == 32 and bool(operations[t // 8] & (1 << (t % 8)))


class MultisigDisburser:
    def __init__(self, settings: PayoutRouterSettings, chain: Chain, refuse: Refusal) -> None:
        self.address = settings.PAYOUT_MULTISIG_ADDRESS
        self.permission_id = settings.PAYOUT_MULTISIG_PERMISSION_ID
        self._wallet_ids = settings.multisig_signers
        self._chain = chain
        self._refuse = refuse

    def pays_for(self, source: str) -> bool:
        """Whether payouts from `source` are the multi-signature account's."""
        return bool(self.address) and source == self.address

    async def _permission(self) -> tc.Permission | None:
        account = await self._chain.account(self.address)
        if not account.exists:
            return None
        if self.permission_id == 0:
            return account.owner_permission if account.HasField("owner_permission") else None
        return next((p for p in account.active_permissions if p.id == self.permission_id), None)

    async def signers(self, contract_type: str) -> list[Signer]:
        """The signer wallets whose keys together meet the permission's threshold now (FailedPrecondition
        naming the rule when they cannot)."""
        perm = await self._permission()
        where = {"account": self.address, "permission_id": self.permission_id}
        if perm is None:
            raise self._refuse(
                "MULTISIG_PERMISSION_MISSING", "the multi-signature account has no such permission", **where
            )
        if self.permission_id and not allows(perm.operations, contract_type):
            raise self._refuse(
                "MULTISIG_OPERATION_NOT_ALLOWED",
                f"the multi-signature permission does not allow {contract_type}",
                **where,
            )
        weights = {k.address: k.weight for k in perm.keys}
        chosen: list[Signer] = []
        total = 0
        for wallet_id in self._wallet_ids:
            try:
                wallet = await self._chain.signing_wallet(wallet_id, _unusable)
            except (errors.NotFound, errors.FailedPrecondition, errors.PermissionDenied) as exc:
                log.warning(
                    "multisig signer wallet skipped: %s", exc.message, extra={"fields": {"wallet": wallet_id}}
                )
                continue
            weight = weights.get(wallet.address, 0)
            if weight <= 0 or any(s.address == wallet.address for s in chosen):
                continue
            chosen.append(Signer(wallet_id, wallet.address))
            total += weight
            if total >= perm.threshold:
                return chosen
        raise self._refuse(
            "MULTISIG_THRESHOLD_NOT_MET",
            "the signer wallets' keys do not reach the multi-signature permission's threshold",
            **where,
            threshold=perm.threshold,
            weight=total,
        )
