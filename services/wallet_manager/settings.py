"""wallet-manager's own settings: the vault's encryption keys, operators, tokens shown, hardware wallets."""

from __future__ import annotations

from pydantic import SecretStr

from services.common.settings import Settings, TokenList


class WalletManagerSettings(Settings):
    """Settings of wallet-manager, the only service that holds key material."""

    WALLET_ENCRYPTION_KEY: SecretStr = SecretStr("")
    # The key being rotated away from: accepted for opening secrets until `rotate-key` has re-wrapped all.
    WALLET_ENCRYPTION_KEY_PREVIOUS: SecretStr = SecretStr("")
    # Subjects (JWT `sub`) allowed to force-delete a wallet that still holds funds; comma-separated.
    WALLET_OPERATORS: str = ""
    # TRC20 tokens shown in wallet balances besides USDT; comma-separated base58 addresses.
    WALLET_TRC20_TOKENS: TokenList = ""
    HARDWARE_WALLET_ENABLED: bool = False
    LEDGER_ENABLED: bool = False
    TREZOR_ENABLED: bool = False
    # Ledger transport: host:port of a Speculos-framed TCP APDU server; empty means the first USB Ledger.
    LEDGER_ADDRESS: str = ""
    # trezorlib transport path, e.g. udp:127.0.0.1:21324; empty means the first Trezor found.
    TREZOR_PATH: str = ""

    @property
    def wallet_tokens(self) -> tuple[str, ...]:
        """TRC20 contracts wallet balances show: USDT first, then WALLET_TRC20_TOKENS, without duplicates."""
        return self.usdt_and(self.WALLET_TRC20_TOKENS)
