"""wallet-manager's own settings: the vault's encryption keys, operators, tokens shown, hardware wallets.

WALLET_ENCRYPTION_KEY wraps every key the cluster holds, so start-up refuses (one line naming the
variable, never its value):
- a key shorter than MIN_KEY_CHARS characters or below MIN_KEY_BITS by `estimated_bits` (generate one:
  `openssl rand -base64 32`, about 200 bits by that estimate);
- the public devnet key, set explicitly;
- no key, unless TRON_NETWORK=devnet and every TRON_NODE_URL is a loopback address: only then is the
  public DEVNET_FALLBACK_KEY used (and keys.KeyVault also asks tron-client that its chain is no public
  network's before it uses it).
WALLET_ENCRYPTION_KEY_PREVIOUS is the key being rotated away from and is not held to the minimum.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
from collections import Counter
from collections.abc import Sequence
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, model_validator

from services.common.settings import DEFAULT_NODE_URLS, Settings, TokenList, TronNetwork

# Only for TRON_NETWORK=devnet on loopback without a configured key, so a local cluster works out of the box.
DEVNET_FALLBACK_KEY = "tronpay-devnet-insecure-wallet-key"
MIN_KEY_CHARS = 24
MIN_KEY_BITS = 112


def _shannon_bits(symbols: Sequence[object]) -> float:
    """len(symbols) x the Shannon entropy of their own frequency distribution."""
    n = len(symbols)
    return -sum(c * math.log2(c / n) for c in Counter(symbols).values())


def estimated_bits(key: str) -> float:
    """A conservative entropy estimate of a key: the Shannon estimate of its characters, or of the steps
    between consecutive characters if that is lower (so runs like "abcdef..." and repeated patterns count
    for little). Dictionary words are not recognised: long English text scores high; use random keys."""
    steps = [ord(b) - ord(a) for a, b in itertools.pairwise(key)]
    return min(_shannon_bits(key), _shannon_bits(steps))


def _strong_key(value: SecretStr) -> SecretStr:
    key = value.get_secret_value()
    if not key:
        return value
    if key == DEVNET_FALLBACK_KEY:
        raise ValueError("is the public devnet key")
    if len(key) < MIN_KEY_CHARS or estimated_bits(key) < MIN_KEY_BITS:
        raise ValueError(
            f"too weak: needs at least {MIN_KEY_CHARS} characters and an estimated {MIN_KEY_BITS} bits of "
            "entropy (generate one with `openssl rand -base64 32`)"
        )
    return value


def _node_urls(value: str) -> str:
    if not value:  # the network's default
        return value
    for i, url in enumerate(u.strip() for u in value.split(",")):
        if not url.startswith(("http://", "https://")) or not urlsplit(url).hostname:
            # Named by position, not echoed: a URL may carry credentials (user:password@).
            raise ValueError(f"entry {i + 1} is not an http(s) URL")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WalletManagerSettings(Settings):
    """Settings of wallet-manager, the only service that holds key material."""

    WALLET_ENCRYPTION_KEY: Annotated[SecretStr, AfterValidator(_strong_key)] = SecretStr("")
    # The key being rotated away from: accepted for opening secrets until `rotate-key` has re-wrapped all.
    WALLET_ENCRYPTION_KEY_PREVIOUS: SecretStr = SecretStr("")
    # tron-client's TRON node(s) (the cluster shares one environment; empty: the network's default). Read
    # here only to allow the devnet fallback key on loopback nodes alone.
    TRON_NODE_URL: Annotated[str, AfterValidator(_node_urls)] = ""
    # This cluster's name in TronLink ownership messages, so a proof made for one cluster is never
    # accepted by another.
    CLUSTER_NAME: str = Field(default="tronpay", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
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

    @model_validator(mode="after")
    def _fallback_key_only_on_a_local_devnet(self) -> WalletManagerSettings:
        if not self.uses_devnet_fallback_key:
            return self
        if self.TRON_NETWORK != TronNetwork.DEVNET:
            raise ValueError(
                f"WALLET_ENCRYPTION_KEY: required on TRON_NETWORK={self.TRON_NETWORK.value} "
                "(the devnet fallback key is public)"
            )
        urls = (self.TRON_NODE_URL or DEFAULT_NODE_URLS[TronNetwork.DEVNET]).split(",")
        if not all(_is_loopback(urlsplit(u.strip()).hostname or "") for u in urls):
            raise ValueError(
                "WALLET_ENCRYPTION_KEY: required unless every TRON_NODE_URL is a loopback address "
                "(the devnet fallback key is public)"
            )
        return self

    @property
    def uses_devnet_fallback_key(self) -> bool:
        """No key is configured: the public DEVNET_FALLBACK_KEY protects the vault (a local devnet only)."""
        return not self.WALLET_ENCRYPTION_KEY.get_secret_value()

    @property
    def wallet_tokens(self) -> tuple[str, ...]:
        """TRC20 contracts wallet balances show: USDT first, then WALLET_TRC20_TOKENS, without duplicates."""
        return self.usdt_and(self.WALLET_TRC20_TOKENS)
