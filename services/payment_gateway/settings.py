"""payment-gateway's own settings: payment defaults and tolerances, refunds, sweeping, reconciliation and
webhooks (outgoing and incoming)."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr

from services.common.settings import OptionalTronAddress, Settings, TronNetwork


def _secret_map(value: SecretStr) -> SecretStr:
    """A JSON object of name -> secret (or list of up to two secrets, the first signing)."""
    raw = value.get_secret_value()
    if not raw:
        return value
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ValueError("must be a JSON object of name to secret") from None
    if not isinstance(parsed, dict):
        raise ValueError("must be a JSON object of name to secret")
    for name, secrets in parsed.items():
        items = secrets if isinstance(secrets, list) else [secrets]
        if not 1 <= len(items) <= 2 or not all(isinstance(s, str) and len(s) >= 16 for s in items):
            raise ValueError(f"{name!r}: one or two secrets of at least 16 characters")
    return value


def _secret_list(value: SecretStr) -> SecretStr:
    """Comma-separated, one or two secrets of at least 16 characters (the first signs)."""
    items = [s.strip() for s in value.get_secret_value().split(",") if s.strip()]
    if len(items) > 2 or any(len(s) < 16 for s in items):
        raise ValueError("one or two comma-separated secrets of at least 16 characters")
    return value


# Public, so that a local cluster signs its webhooks out of the box; never used off devnet.
DEVNET_WEBHOOK_MASTER = "tronpay-devnet-insecure-webhook-master"
SecretMap = Annotated[SecretStr, AfterValidator(_secret_map)]
SecretList = Annotated[SecretStr, AfterValidator(_secret_list)]


class PaymentGatewaySettings(Settings):
    """Settings of payment-gateway."""

    # Payments: time to live when a request gives none, and the tolerances within which a received amount
    # counts as exact (both apply: the larger wins). Outside them the payment is UNDERPAID or OVERPAID.
    PAYMENT_DEFAULT_TTL_SECONDS: int = Field(default=3600, ge=60, le=7 * 86_400)
    PAYMENT_TOLERANCE_ABSOLUTE: int = Field(default=0, ge=0)  # base units of the payment's asset
    PAYMENT_TOLERANCE_BPS: int = Field(default=0, ge=0, le=5000)  # basis points of the amount (100 = 1 %)
    # Money arriving after expiry: "accept" counts it (PAID_LATE when the amount is reached), "flag" keeps it
    # on the payment as late but never settles it (the payment stays EXPIRED/UNDERPAID for an operator).
    PAYMENT_LATE_POLICY: str = Field(default="accept", pattern="^(accept|flag)$")
    # Seconds between detection steps that need no stream event (expiry of open payments).
    PAYMENT_POLL_SECONDS: float = Field(default=1.0, gt=0, le=60)
    # Seconds a replica holds the detection lease before another may take over.
    PAYMENT_LEASE_SECONDS: float = Field(default=15.0, ge=1, le=600)

    # Refunds are sent from this wallet in wallet-manager (funded by the operator with USDT and TRX for fees).
    PAYMENT_REFUND_WALLET_ID: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$")
    # Refunds of at least this amount (base units of the payment's asset; 0 = never) wait for the payout
    # approval rule: PAYMENT_REFUND_REQUIRED_APPROVALS distinct approvers, never the refund's initiator.
    PAYMENT_REFUND_APPROVAL_THRESHOLD_USDT: int = Field(default=0, ge=0)
    PAYMENT_REFUND_APPROVAL_THRESHOLD_TRX: int = Field(default=0, ge=0)
    PAYMENT_REFUND_REQUIRED_APPROVALS: int = Field(default=2, ge=1, le=16)

    # Sweeping deposit addresses to the merchant's collection wallet: when a deposit address holds at least
    # the threshold, or its oldest unswept funds are older than the age, or at the batch window.
    PAYMENT_SWEEP_ENABLED: bool = True
    PAYMENT_SWEEP_THRESHOLD_USDT: int = Field(default=100_000_000, ge=0)
    PAYMENT_SWEEP_THRESHOLD_TRX: int = Field(default=100_000_000, ge=0)
    PAYMENT_SWEEP_MAX_AGE_SECONDS: int = Field(default=86_400, ge=0)
    PAYMENT_SWEEP_INTERVAL_SECONDS: float = Field(default=60.0, gt=0, le=86_400)
    # Ask trx-staking's energy broker for a USDT sweep's energy (the deposit address burns no TRX for it).
    PAYMENT_SWEEP_ENERGY_BROKER: bool = True
    # The wallet that tops up deposit addresses with TRX for a USDT sweep's bandwidth and activation; empty
    # uses the merchant's collection wallet.
    PAYMENT_SWEEP_FEE_WALLET_ID: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$")
    # Collection address per merchant, JSON {"merchant": "T..."}; a merchant without one is not swept.
    PAYMENT_COLLECTION_ADDRESSES: str = "{}"
    # A fixed collection address for every merchant not in PAYMENT_COLLECTION_ADDRESSES ("" = none).
    PAYMENT_DEFAULT_COLLECTION_ADDRESS: OptionalTronAddress = ""

    # Reconciliation: seconds between runs of the continuous job.
    PAYMENT_RECONCILE_SECONDS: float = Field(default=60.0, gt=0, le=86_400)

    # Outgoing webhooks. Each merchant's signing secret is HMAC-SHA256(master, "webhook:" + merchant id) of
    # each master secret here (comma-separated, at most two: the first is new, the second still valid during
    # rotation; every delivery carries a signature under each). `make webhook-secret MERCHANT=m` prints it.
    # Unset on devnet: the public DEVNET_WEBHOOK_MASTER (so `make up` works); elsewhere unset or empty means
    # deliveries are recorded but not sent.
    PAYMENT_WEBHOOK_MASTER_SECRETS: SecretList | None = None
    # Merchant default webhook URLs, JSON {"merchant": "https://..."}, used when a payment names none.
    PAYMENT_WEBHOOK_URLS: str = "{}"
    # Loopback, private and link-local targets are refused unless allowed; unset: allowed on devnet only.
    PAYMENT_WEBHOOK_ALLOW_PRIVATE: bool | None = None
    # Retries: exponential back-off from the first delay doubling to the cap, for at least the retry window;
    # then the delivery is dead-lettered (FAILED) and counted in the dead-letter metric.
    PAYMENT_WEBHOOK_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0, le=60)
    PAYMENT_WEBHOOK_FIRST_RETRY_SECONDS: float = Field(default=5.0, gt=0, le=3600)
    PAYMENT_WEBHOOK_MAX_RETRY_SECONDS: float = Field(default=3600.0, gt=0, le=86_400)
    PAYMENT_WEBHOOK_RETRY_WINDOW_SECONDS: float = Field(default=36 * 3600.0, gt=0, le=30 * 86_400)
    # A new event is relayed and delivered at once; this is how often the outbox is scanned for retries that
    # are due and for work another replica left (each scan reads whole collections on FerretDB).
    PAYMENT_WEBHOOK_POLL_SECONDS: float = Field(default=5.0, gt=0, le=60)
    PAYMENT_WEBHOOK_CONCURRENCY: int = Field(default=32, ge=1, le=1024)

    # Incoming webhooks (POST /api/v1/payments/webhook?source=name): the HMAC secrets per source, JSON
    # {"source": "secret"} or {"source": ["new", "old"]}; a source not listed is refused (401).
    PAYMENT_INBOUND_WEBHOOK_SECRETS: SecretMap = SecretStr("")
    # How far a signed timestamp may be from now (either way) before the notification counts as replayed.
    PAYMENT_INBOUND_WEBHOOK_WINDOW_SECONDS: int = Field(default=300, ge=10, le=3600)

    @property
    def webhook_masters(self) -> list[str]:
        """The master secrets deliveries are signed under (the current one first); [] sends nothing."""
        if self.PAYMENT_WEBHOOK_MASTER_SECRETS is None:
            return [DEVNET_WEBHOOK_MASTER] if self.TRON_NETWORK is TronNetwork.DEVNET else []
        return [
            s.strip() for s in self.PAYMENT_WEBHOOK_MASTER_SECRETS.get_secret_value().split(",") if s.strip()
        ]

    @property
    def webhook_allow_private(self) -> bool:
        """Whether webhook URLs may name loopback, private or link-local targets."""
        if self.PAYMENT_WEBHOOK_ALLOW_PRIVATE is None:
            return self.TRON_NETWORK is TronNetwork.DEVNET
        return self.PAYMENT_WEBHOOK_ALLOW_PRIVATE
