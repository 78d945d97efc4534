"""PRKYC: the allowlist of recipients a compliance signer has attested, for payouts through PayoutRouterKYC.

UpdateAllowlist adds a recipient by having the compliance wallet (PAYOUT_COMPLIANCE_WALLET_ID, in
wallet-manager; this service never holds its key) sign the router's `kycMessage(recipient, kycHash, expiry)`
with the TIP-191 TRON prefix (wallet-manager's SignMessage), checking the signature with the router's own
`kycFailure` view, and storing the attestation (collection `allowlist`, one document per address). kycHash
commits to the request that vouched for the recipient (keccak256 of "<request_id>:<address>"; the KYC record
stays off chain), expiry is PAYOUT_KYC_VALIDITY_SECONDS later. Removing marks the attestation removed. Nothing
is sent on chain: the attestation travels with each of the recipient's payouts (disburseBatchKYC), so
UpdateAllowlist's txid is empty. CheckAllowlist answers whether a payout to the address would pass the KYC
checks now (stored, not removed, not expired, and the router accepts the signature).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from pymongo import ReturnDocument

from services.common import context, errors
from services.common.access import Role
from services.common.audit import AuditEvent
from services.common.mongo import Document
from services.common.server import Runtime
from services.common.tron.address import keccak256
from services.payout_router.chain import Chain
from services.payout_router.settings import PayoutRouterSettings

ALLOWLIST = "allowlist"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _now() -> datetime:
    return datetime.now(UTC)


def compact(signature: bytes) -> tuple[bytes, bytes]:
    """(r, vs) of a 65-byte r ‖ s ‖ v signature (EIP-2098), with a low s."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    parity = v - 27 if v >= 27 else v
    if s > SECP256K1_N // 2:
        s, parity = SECP256K1_N - s, parity ^ 1
    return r, (s | parity << 255).to_bytes(32, "big")


class Allowlist:
    """Attestations, signed through wallet-manager, checked by the router's own view."""

    def __init__(self, rt: Runtime[PayoutRouterSettings], chain: Chain) -> None:
        self._settings = rt.settings
        self._chain = chain
        self._col = rt.db.collection(ALLOWLIST)
        self._audit = rt.audit

    @property
    def router(self) -> str:
        return self._settings.kyc_router

    async def update(self, request_id: str, add: Sequence[str], remove: Sequence[str]) -> None:
        ctx = context.current()
        if ctx is None or not ctx.roles & {Role.COMPLIANCE, Role.ADMIN}:
            raise errors.PermissionDenied(
                "changing the allowlist needs the compliance role", reason="NOT_COMPLIANCE"
            )
        s = self._settings
        if add and not (self.router and s.PAYOUT_COMPLIANCE_WALLET_ID):
            raise errors.FailedPrecondition(
                "PAYOUT_KYC_ROUTER_CONTRACT_ADDRESS and PAYOUT_COMPLIANCE_WALLET_ID must be set",
                reason="KYC_NOT_CONFIGURED",
            )
        for address in add:
            await self._attest(request_id, address)
        for address in remove:
            await self._col.update_one({"_id": address}, {"$set": {"removed": True, "update_time": _now()}})
        await self._audit.append(
            AuditEvent.ALLOWLIST_CHANGED,
            resource=f"allowlist/{self.router or 'none'}",
            details={"added": len(add), "removed": len(remove)},
        )

    async def _attest(self, request_id: str, address: str) -> None:
        s = self._settings
        kyc_hash = keccak256(f"{request_id}:{address}".encode())
        expiry = int(time.time()) + s.PAYOUT_KYC_VALIDITY_SECONDS
        message = await self._chain.kyc_message(self.router, address, kyc_hash, expiry)
        key = hashlib.sha256(f"{request_id}:{address}".encode()).hexdigest()[:40]
        signature, signer = await self._chain.sign_message(
            s.PAYOUT_COMPLIANCE_WALLET_ID, message, f"kyc.{key}", f"KYC attestation of {address}"
        )
        r, vs = compact(signature)
        failure = await self._chain.kyc_failure(self.router, address, kyc_hash, expiry, r, vs)
        if failure != "NONE":
            raise errors.FailedPrecondition(
                f"the router does not accept the compliance wallet's attestation ({failure})",
                reason="COMPLIANCE_SIGNER_NOT_AUTHORIZED",
                metadata={"signer": signer, "router": self.router},
            )
        doc = {
            "kyc_hash": kyc_hash.hex(),
            "expiry": expiry,
            "r": r.hex(),
            "vs": vs.hex(),
            "router": self.router,
            "signer": signer,
            "removed": False,
            "update_time": _now(),
        }
        await self._col.find_one_and_update(
            {"_id": address}, {"$set": doc}, upsert=True, return_document=ReturnDocument.AFTER
        )

    async def get(self, address: str) -> Document | None:
        doc = await self._col.find_one({"_id": address})
        if doc is None or doc.get("removed") or doc.get("router") != self.router:
            return None
        return doc

    async def failure(self, address: str) -> str:
        """Why a payout to the address would fail the KYC checks now ("NONE": it would pass)."""
        doc = await self.get(address)
        if doc is None:
            return "KYC_MISSING"
        if doc["expiry"] <= int(time.time()):
            return "KYC_EXPIRED"
        return await self._chain.kyc_failure(
            self.router,
            address,
            bytes.fromhex(doc["kyc_hash"]),
            doc["expiry"],
            bytes.fromhex(doc["r"]),
            bytes.fromhex(doc["vs"]),
        )

    async def attestations(self, addresses: Sequence[str]) -> list[bytes]:
        """disburseBatchKYC's attestation words (kycHash, expiry, r, vs per address); Refused-style
        FailedPrecondition KYC_MISSING / KYC_EXPIRED for an address without a valid one."""
        words: list[bytes] = []
        for i, address in enumerate(addresses):
            doc = await self.get(address)
            if doc is None:
                raise errors.FailedPrecondition(
                    "a recipient is not on the KYC allowlist",
                    reason="KYC_MISSING",
                    metadata={"item": str(i), "address": address},
                )
            if doc["expiry"] <= int(time.time()):
                raise errors.FailedPrecondition(
                    "a recipient's KYC attestation expired",
                    reason="KYC_EXPIRED",
                    metadata={"item": str(i), "address": address},
                )
            words += [
                bytes.fromhex(doc["kyc_hash"]),
                int(doc["expiry"]).to_bytes(32, "big"),
                bytes.fromhex(doc["r"]),
                bytes.fromhex(doc["vs"]),
            ]
        return words
