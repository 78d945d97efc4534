"""usdt-manager's own settings: tokens, fee limits, and how its transactions are driven."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import Settings, TokenList


class UsdtManagerSettings(Settings):
    """Settings of usdt-manager."""

    # TRC20 tokens besides USDT (USDT_CONTRACT_ADDRESS) that requests may name; comma-separated base58.
    USDT_TRC20_TOKENS: TokenList = ""
    # The highest fee_limit a transaction gets (sun; 50 TRX by default, the network's maximum if lower) and
    # the margin added to the energy estimate when the request leaves fee_limit to the service.
    USDT_MAX_FEE_LIMIT_SUN: int = Field(default=50_000_000, gt=0, le=15_000_000_000)
    USDT_FEE_LIMIT_MARGIN_PERCENT: int = Field(default=20, ge=0, le=300)
    # Ask trx-staking's energy broker (RequestEnergy) for each transaction's estimated energy before it is
    # signed, so it burns no TRX for energy; off (the default): the sender's own stake, then TRX burned up to
    # the fee limit. A broker refusal burns instead only where the broker allows it.
    USDT_ENERGY_BROKER: bool = False
    # Validity of each signed transaction after the head block, and how many transactions one transfer may
    # get (each only after the previous one provably expired unseen) before it ends EXPIRED.
    USDT_TX_EXPIRATION_SECONDS: int = Field(default=60, ge=3, le=86_400)
    USDT_MAX_ATTEMPTS: int = Field(default=3, ge=1, le=20)
    # The driver: seconds between inclusion/finality checks, between rebroadcasts of a transaction still in
    # no block, the lease of a replica on the transfers it drives, and steps in flight per process.
    USDT_POLL_SECONDS: float = Field(default=1.0, gt=0, le=60)
    USDT_REBROADCAST_SECONDS: float = Field(default=6.0, gt=0, le=600)
    USDT_LEASE_SECONDS: float = Field(default=30.0, ge=1, le=600)
    USDT_DRIVER_CONCURRENCY: int = Field(default=64, ge=1, le=1024)
    # How long the pre-checks reuse what they read about a sender and its token (the token's pause, the
    # sender's blacklisting, token balance with the block it was read at, TRX and resources), so a busy sender
    # costs the node one set of reads per block rather than one per request: under a block (3 s on mainnet),
    # so a blacklisting or a pause counts from at most a block after it. The counterparty's blacklisting and
    # the energy estimate are read for every request; 0 reads everything for every request.
    USDT_SENDER_VIEW_SECONDS: float = Field(default=1.0, ge=0, le=3)

    @property
    def tokens(self) -> tuple[str, ...]:
        """Tokens requests may name: USDT first, then USDT_TRC20_TOKENS, without duplicates."""
        return self.usdt_and(self.USDT_TRC20_TOKENS)
