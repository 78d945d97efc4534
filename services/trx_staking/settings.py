"""trx-staking's own settings: how its transactions are driven, the staking wallet, the energy broker's policy
and the treasury automation (every switch off by default)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from services.common.settings import OptionalTronAddress, Settings
from services.common.tron.address import from_base58

TRX = 1_000_000  # sun


def _address_list(value: str) -> str:
    for i, addr in enumerate(a.strip() for a in value.split(",") if a.strip()):
        try:
            from_base58(addr)
        except ValueError:
            raise ValueError(f"entry {i + 1} is not a TRON address") from None
    return value


AddressList = Annotated[str, AfterValidator(_address_list)]  # comma-separated base58 addresses


class TrxStakingSettings(Settings):
    """Settings of trx-staking."""

    # Validity of each signed transaction after the head block, and how many transactions one operation may
    # get (each only after the previous one provably expired unseen) before it ends EXPIRED.
    STAKING_TX_EXPIRATION_SECONDS: int = Field(default=60, ge=3, le=86_400)
    STAKING_MAX_ATTEMPTS: int = Field(default=3, ge=1, le=20)
    # The driver: seconds between inclusion/finality checks, between rebroadcasts of a transaction still in
    # no block, the lease of a replica on the operations it drives, and steps in flight per process.
    STAKING_POLL_SECONDS: float = Field(default=1.0, gt=0, le=60)
    STAKING_REBROADCAST_SECONDS: float = Field(default=6.0, gt=0, le=600)
    STAKING_LEASE_SECONDS: float = Field(default=30.0, ge=1, le=600)
    STAKING_DRIVER_CONCURRENCY: int = Field(default=64, ge=1, le=1024)
    # One reward claim (WithdrawBalance) per this many seconds: the chain's rule (24 h on mainnet).
    STAKING_CLAIM_INTERVAL_SECONDS: int = Field(default=86_400, ge=0, le=30 * 86_400)

    # The cluster's staking wallet (wallet-manager): the energy broker delegates from it and the treasury
    # automation acts on it; its signing policy must allow the staking contract types, the broker's
    # receivers (allowed_resource_receivers), locks (allow_locked_delegation) and the voted witnesses.
    # Empty: no broker (it refuses with BROKER_NOT_CONFIGURED) and no automation.
    STAKING_WALLET_ID: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$")
    # The staking address within that wallet; empty means the wallet's primary address.
    STAKING_WALLET_ADDRESS: OptionalTronAddress = ""

    # Energy broker: the most staked TRX delegated to one address and to all addresses at once (sun), the
    # lock of its delegations in blocks (0: unlocked, taken back whenever idle), how long an address goes
    # without requests before its delegation is taken back (once no lock holds it), and how long a request
    # waits for a delegation to reach a block before answering PENDING.
    STAKING_BROKER_MAX_PER_ADDRESS_SUN: int = Field(default=20_000 * TRX, ge=TRX)
    STAKING_BROKER_BUDGET_SUN: int = Field(default=200_000 * TRX, ge=0)
    STAKING_BROKER_LOCK_BLOCKS: int = Field(default=0, ge=0, le=864_000)
    STAKING_BROKER_IDLE_SECONDS: float = Field(default=900.0, gt=0, le=30 * 86_400)
    STAKING_BROKER_WAIT_SECONDS: float = Field(default=20.0, ge=0, le=120)
    # Whether a refused caller may burn TRX for its energy instead, and up to how much (sun).
    STAKING_BROKER_BURN_FALLBACK: bool = True
    STAKING_BROKER_MAX_BURN_SUN: int = Field(default=30 * TRX, ge=0)
    # Seconds between the broker's rounds: settling delegations after a crash, taking back idle ones.
    STAKING_BROKER_SWEEP_SECONDS: float = Field(default=5.0, gt=0, le=3600)

    # Treasury automation, every switch off by default; one round every STAKING_TREASURY_SECONDS, at most
    # one operation in flight. Keep the staked energy at a target by staking liquid TRX above a floor:
    STAKING_AUTO_STAKE: bool = False
    STAKING_AUTO_STAKE_TARGET_ENERGY: int = Field(default=0, ge=0)
    STAKING_AUTO_STAKE_FLOOR_SUN: int = Field(default=100 * TRX, ge=0)
    # Vote all tron power, split evenly, for these witnesses (comma-separated):
    STAKING_AUTO_VOTE: bool = False
    STAKING_AUTO_VOTE_WITNESSES: AddressList = ""
    # Claim voting rewards when allowed and at least this much; optionally stake the claim for energy:
    STAKING_AUTO_CLAIM: bool = False
    STAKING_AUTO_CLAIM_MIN_SUN: int = Field(default=TRX, ge=1)
    STAKING_AUTO_RESTAKE: bool = False
    STAKING_TREASURY_SECONDS: float = Field(default=300.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _automation_needs_a_wallet(self) -> TrxStakingSettings:
        if (self.STAKING_AUTO_STAKE or self.STAKING_AUTO_VOTE or self.STAKING_AUTO_CLAIM) and not (
            self.STAKING_WALLET_ID
        ):
            raise ValueError("STAKING_WALLET_ID: required by the treasury automation")
        if self.STAKING_AUTO_VOTE and not self.witnesses:
            raise ValueError("STAKING_AUTO_VOTE_WITNESSES: required when STAKING_AUTO_VOTE is on")
        if self.STAKING_AUTO_RESTAKE and not self.STAKING_AUTO_CLAIM:
            raise ValueError("STAKING_AUTO_RESTAKE: needs STAKING_AUTO_CLAIM")
        return self

    @property
    def witnesses(self) -> tuple[str, ...]:
        """The automation's witnesses, without duplicates."""
        return tuple(
            dict.fromkeys(a.strip() for a in self.STAKING_AUTO_VOTE_WITNESSES.split(",") if a.strip())
        )
