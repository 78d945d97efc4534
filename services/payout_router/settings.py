"""payout-router's own settings: the router contract, batch size and timeout, governance (approvals,
velocity, cooling-off) and how its transactions are driven."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr, model_validator

from services.common.settings import OptionalTronAddress, Settings, TronNetwork

# The routers the devnet deploys at genesis (devnet/genesis.py, contracts/README.md): the defaults on devnet.
DEVNET_ROUTER = "THB9CEBzDL6YKc9ZjLdyZJToQkFxkdDqBU"
DEVNET_KYC_ROUTER = "TGStCzpBLTz8Nh95AtareG3JdU6TGsm58t"


def _subjects(value: str) -> str:
    for i, s in enumerate(s.strip() for s in value.split(",")):
        if not s and value.strip():
            raise ValueError(f"entry {i + 1} is empty")
    return value


SubjectList = Annotated[str, AfterValidator(_subjects)]  # comma-separated token subjects
_WALLET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _wallet_ids(value: str) -> str:
    for i, w in enumerate(w.strip() for w in value.split(",") if value.strip()):
        if not _WALLET_ID.match(w):
            raise ValueError(f"entry {i + 1} is not a wallet id")
    return value


WalletIdList = Annotated[str, AfterValidator(_wallet_ids)]  # comma-separated wallet ids


class PayoutRouterSettings(Settings):
    """Settings of payout-router."""

    # PayoutRouterV0 (USDT payouts); on devnet the genesis router when unset.
    PAYOUT_ROUTER_CONTRACT_ADDRESS: OptionalTronAddress = ""
    # The disburser's key belongs in wallet-manager (import it there); the router never signs with it.
    PAYOUT_ROUTER_PRIVATE_KEY: SecretStr = SecretStr("")
    # Most recipients per on-chain batch (never more than the router's maxBatchSize, read on chain).
    PAYOUT_BATCH_SIZE: int = Field(default=100, ge=1, le=1000)
    # Seconds a payout may stay unconfirmed after submission: after that no new transaction is built for it;
    # once the current one provably cannot be included it is re-checked on chain and FAILED (PAYOUT_TIMEOUT).
    PAYOUT_TIMEOUT: int = Field(default=300, gt=0)  # seconds

    # Governance, all checked before anything is signed (0 / empty turns a rule off).
    # Payouts of at least this amount (base units of their asset) wait for PAYOUT_REQUIRED_APPROVALS distinct
    # approvers (never the initiator); PAYOUT_APPROVERS lists the subjects who may approve (empty: any caller
    # with the approver or admin role).
    PAYOUT_APPROVAL_THRESHOLD_USDT: int = Field(default=0, ge=0)
    PAYOUT_APPROVAL_THRESHOLD_TRX: int = Field(default=0, ge=0)
    PAYOUT_REQUIRED_APPROVALS: int = Field(default=2, ge=1, le=16)
    PAYOUT_APPROVERS: SubjectList = ""
    # Velocity: the most one recipient may be sent in 24 h, and the most all payouts of an asset may total in
    # 24 h (base units; payouts neither FAILED nor CANCELLED count).
    PAYOUT_RECIPIENT_DAILY_LIMIT_USDT: int = Field(default=0, ge=0)
    PAYOUT_RECIPIENT_DAILY_LIMIT_TRX: int = Field(default=0, ge=0)
    PAYOUT_DAILY_LIMIT_USDT: int = Field(default=0, ge=0)
    PAYOUT_DAILY_LIMIT_TRX: int = Field(default=0, ge=0)
    # A recipient never paid before is refused (COOLING_OFF) until this many seconds after it was first named.
    PAYOUT_COOLING_OFF_SECONDS: int = Field(default=0, ge=0, le=30 * 86_400)

    # PRKYC: with PAYOUT_KYC_REQUIRED, USDT payouts go through PayoutRouterKYC (on devnet the genesis one when
    # unset) and only to recipients on the allowlist, whose attestations the compliance wallet (in
    # wallet-manager) signs for PAYOUT_KYC_VALIDITY_SECONDS.
    PAYOUT_KYC_REQUIRED: bool = False
    PAYOUT_KYC_ROUTER_CONTRACT_ADDRESS: OptionalTronAddress = ""
    PAYOUT_COMPLIANCE_WALLET_ID: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$")
    PAYOUT_KYC_VALIDITY_SECONDS: int = Field(default=365 * 86_400, ge=1, le=10 * 365 * 86_400)

    # A TRON multi-signature disburser: payouts from the wallet whose address is PAYOUT_MULTISIG_ADDRESS (in
    # wallet-manager a watch-only wallet of that account, or one holding one of its keys) are built with
    # Permission_id PAYOUT_MULTISIG_PERMISSION_ID (an active permission, 2 and up, or 0 for the owner
    # permission) and signed by as many of PAYOUT_MULTISIG_SIGNER_WALLETS (wallet ids, comma-separated, in
    # the order they are asked; each holds one key of that permission) as the permission's threshold needs.
    # Keys, weights and threshold are read on chain before every transaction, never taken from here.
    PAYOUT_MULTISIG_ADDRESS: OptionalTronAddress = ""
    PAYOUT_MULTISIG_PERMISSION_ID: int = Field(default=2, ge=0, le=255)
    PAYOUT_MULTISIG_SIGNER_WALLETS: WalletIdList = ""

    # Ask trx-staking's energy broker (RequestEnergy) for each batch's estimated energy before it is signed.
    PAYOUT_ENERGY_BROKER: bool = False
    # The largest fee_limit of a batch (sun); a batch whose estimate costs more is split.
    PAYOUT_MAX_FEE_LIMIT_SUN: int = Field(default=1_000_000_000, gt=0, le=15_000_000_000)
    PAYOUT_FEE_LIMIT_MARGIN_PERCENT: int = Field(default=20, ge=0, le=300)
    # The driver (services.common.chain_ops) and the dispatcher that groups approved payouts into batches.
    PAYOUT_TX_EXPIRATION_SECONDS: int = Field(default=60, ge=3, le=86_400)
    PAYOUT_MAX_ATTEMPTS: int = Field(default=3, ge=1, le=20)
    PAYOUT_POLL_SECONDS: float = Field(default=1.0, gt=0, le=60)
    PAYOUT_REBROADCAST_SECONDS: float = Field(default=6.0, gt=0, le=600)
    PAYOUT_LEASE_SECONDS: float = Field(default=30.0, ge=1, le=600)
    PAYOUT_DISPATCH_SECONDS: float = Field(default=1.0, gt=0, le=600)

    @model_validator(mode="after")
    def _private_key(self) -> PayoutRouterSettings:
        key = self.PAYOUT_ROUTER_PRIVATE_KEY.get_secret_value().removeprefix("0x")
        if key and (len(key) != 64 or any(c not in "0123456789abcdefABCDEF" for c in key)):
            raise ValueError("PAYOUT_ROUTER_PRIVATE_KEY: must be 32 bytes of hex")
        return self

    @model_validator(mode="after")
    def _multisig(self) -> PayoutRouterSettings:
        if self.PAYOUT_MULTISIG_ADDRESS and not self.multisig_signers:
            raise ValueError("PAYOUT_MULTISIG_SIGNER_WALLETS: name the wallets holding the account's keys")
        if self.PAYOUT_MULTISIG_PERMISSION_ID == 1:
            raise ValueError("PAYOUT_MULTISIG_PERMISSION_ID: 1 is the witness permission, which cannot pay")
        return self

    @property
    def multisig_signers(self) -> tuple[str, ...]:
        """PAYOUT_MULTISIG_SIGNER_WALLETS, in order, each once."""
        ids = (w.strip() for w in self.PAYOUT_MULTISIG_SIGNER_WALLETS.split(","))
        return tuple(dict.fromkeys(w for w in ids if w))

    @property
    def router(self) -> str:
        """The PayoutRouterV0 USDT payouts go through ("" when none is configured)."""
        if self.PAYOUT_ROUTER_CONTRACT_ADDRESS:
            return self.PAYOUT_ROUTER_CONTRACT_ADDRESS
        return DEVNET_ROUTER if self.TRON_NETWORK is TronNetwork.DEVNET else ""

    @property
    def kyc_router(self) -> str:
        """The PayoutRouterKYC the allowlist's attestations are for ("" when none is configured)."""
        if self.PAYOUT_KYC_ROUTER_CONTRACT_ADDRESS:
            return self.PAYOUT_KYC_ROUTER_CONTRACT_ADDRESS
        return DEVNET_KYC_ROUTER if self.TRON_NETWORK is TronNetwork.DEVNET else ""

    @property
    def payout_router(self) -> str:
        """Where USDT payouts go: PayoutRouterKYC with PAYOUT_KYC_REQUIRED, else PayoutRouterV0."""
        return self.kyc_router if self.PAYOUT_KYC_REQUIRED else self.router

    @property
    def approvers(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.PAYOUT_APPROVERS.split(",") if s.strip())
