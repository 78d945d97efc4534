"""payout-router's own settings: the router contract, batch size and payout timeout."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from services.common.settings import OptionalTronAddress, Settings


class PayoutRouterSettings(Settings):
    """Settings of payout-router."""

    PAYOUT_ROUTER_CONTRACT_ADDRESS: OptionalTronAddress = ""
    PAYOUT_ROUTER_PRIVATE_KEY: SecretStr = SecretStr("")
    PAYOUT_BATCH_SIZE: int = Field(default=100, ge=1, le=1000)
    PAYOUT_TIMEOUT: int = Field(default=300, gt=0)  # seconds

    @model_validator(mode="after")
    def _private_key(self) -> PayoutRouterSettings:
        key = self.PAYOUT_ROUTER_PRIVATE_KEY.get_secret_value().removeprefix("0x")
        if key and (len(key) != 64 or any(c not in "0123456789abcdefABCDEF" for c in key)):
            raise ValueError("PAYOUT_ROUTER_PRIVATE_KEY: must be 32 bytes of hex")
        return self
