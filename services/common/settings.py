"""Process configuration from the environment, parsed once at start-up and passed down explicitly.

Every service reads the same variables (the cluster shares one environment); SERVICE_NAME picks the
process's own port. Secrets are SecretStr so they never reach logs or reprs. Bad values stop the
process with one line naming the variable (see `load_settings`), never a traceback.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.tron.address import from_base58 as decode_tron_address


class ServiceName(StrEnum):
    """The six services; the value is the Python package under services/."""

    TRON_CLIENT = "tron_client"
    PAYOUT_ROUTER = "payout_router"
    WALLET_MANAGER = "wallet_manager"
    USDT_MANAGER = "usdt_manager"
    TRX_STAKING = "trx_staking"
    PAYMENT_GATEWAY = "payment_gateway"

    @property
    def dashed(self) -> str:
        """The service's name as used in hostnames, logs and error domains (tron-client)."""
        return self.value.replace("_", "-")


class TronNetwork(StrEnum):
    """TRON networks the cluster can run against."""

    DEVNET = "devnet"
    MAINNET = "mainnet"
    NILE = "nile"
    SHASTA = "shasta"


# Public defaults per network. chain id = last 4 bytes of the genesis block id (TIP-712 / TronWeb).
DEFAULT_NODE_URLS: dict[TronNetwork, str] = {
    TronNetwork.DEVNET: "http://127.0.0.1:8091",
    TronNetwork.MAINNET: "https://api.trongrid.io",
    TronNetwork.NILE: "https://nile.trongrid.io",
    TronNetwork.SHASTA: "https://api.shasta.trongrid.io",
}
DEFAULT_CHAIN_IDS: dict[TronNetwork, int] = {
    TronNetwork.MAINNET: 0x2B6653DC,
    TronNetwork.NILE: 0xCD8690DC,
    TronNetwork.SHASTA: 0x94A9059E,
}


def _tron_address(value: str) -> str:
    decode_tron_address(value)
    return value


def _optional_tron_address(value: str) -> str:
    return _tron_address(value) if value else value


def _node_urls(value: str) -> str:
    if not value:  # empty: the network's default is filled in later
        return value
    for i, url in enumerate(u.strip() for u in value.split(",")):
        if not url.startswith(("http://", "https://")) or len(url) < 10:
            # Named by position, not echoed: a URL may carry credentials (user:password@).
            raise ValueError(f"entry {i + 1} is not an http(s) URL")
    return value


def _token_list(value: str) -> str:
    for addr in (a.strip() for a in value.split(",") if a.strip()):
        _tron_address(addr)
    return value


def _mongodb_uri(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().startswith(("mongodb://", "mongodb+srv://")):
        raise ValueError("must start with mongodb:// or mongodb+srv://")
    return value


TronAddress = Annotated[str, AfterValidator(_tron_address)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    """All cluster settings. Field names are the environment variable names."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, extra="ignore")

    SERVICE_NAME: ServiceName
    TRON_NETWORK: TronNetwork = TronNetwork.DEVNET
    DEBUG: bool = False
    LOG_LEVEL: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

    # gRPC ports of the six services (each process serves on its own; clients dial the others).
    TRON_CLIENT_PORT: Port = 8085
    PAYOUT_ROUTER_PORT: Port = 8086
    WALLET_MANAGER_PORT: Port = 8087
    USDT_MANAGER_PORT: Port = 8088
    TRX_STAKING_PORT: Port = 8089
    PAYMENT_GATEWAY_PORT: Port = 8090
    # Hosts internal clients dial (Kubernetes sets the Service names).
    TRON_CLIENT_HOST: str = "127.0.0.1"
    PAYOUT_ROUTER_HOST: str = "127.0.0.1"
    WALLET_MANAGER_HOST: str = "127.0.0.1"
    USDT_MANAGER_HOST: str = "127.0.0.1"
    TRX_STAKING_HOST: str = "127.0.0.1"
    PAYMENT_GATEWAY_HOST: str = "127.0.0.1"
    BIND_HOST: str = "127.0.0.1"
    # Prometheus /metrics port of this process; 0 turns it off; unset means gRPC port + 1000.
    METRICS_PORT: int | None = Field(default=None, ge=0, le=65535)
    # Seconds between NOT_SERVING and stopping the server, and the in-flight grace after that.
    SHUTDOWN_DRAIN_SECONDS: float = Field(default=1.0, ge=0, le=60)
    SHUTDOWN_GRACE_SECONDS: float = Field(default=5.0, ge=0, le=120)
    # Default deadline of internal gRPC calls.
    INTERNAL_RPC_TIMEOUT: float = Field(default=10.0, gt=0, le=300)

    # TRON node(s): comma-separated list; on equal health the first is preferred.
    TRON_NODE_URL: Annotated[str, AfterValidator(_node_urls)] = ""
    # TRON-PRO-API-KEY: the default for every node, and optional per-node keys in TRON_NODE_URL order
    # (comma-separated; an empty entry falls back to TRON_NODE_API_KEY). Kept out of the URLs so they stay
    # secret (SecretStr) while URLs are shown in status and metrics.
    TRON_NODE_API_KEY: SecretStr = SecretStr("")
    TRON_NODE_API_KEYS: SecretStr = SecretStr("")
    # Seconds between health probes (head, latency) of every node; set-aside nodes are probed back.
    TRON_NODE_PROBE_SECONDS: float = Field(default=5.0, gt=0, le=3600)
    # Transaction building: validity window, reference block (java-tron default: solid) and whether the
    # txID of every build is checked against the node's own (one extra round trip).
    TRON_TX_EXPIRATION_SECONDS: int = Field(default=60, ge=3, le=86400)
    TRON_REF_BLOCK: str = Field(default="solid", pattern="^(solid|head)$")
    TRON_TXID_CHECK: bool = True
    TRON_NODE_TIMEOUT: float = Field(default=5.0, gt=0, le=120)
    TRON_NETWORK_ID: int | None = Field(default=None, ge=0)
    TRON_CHAIN_ID: int | None = Field(default=None, ge=0)
    # A head block older than this many seconds means the node is not synced.
    TRON_SYNC_MAX_LAG_SECONDS: int = Field(default=60, gt=0)
    # Block sync (tron-client): on/off, first block on a fresh database (unset: the head at first start),
    # TRC20 tokens followed besides USDT (comma-separated), head poll interval, blocks per fetch/write
    # batch, concurrent node requests while backfilling.
    TRON_SYNC_ENABLED: bool = True
    TRON_SYNC_START_BLOCK: int | None = Field(default=None, ge=0)
    TRON_SYNC_TOKENS: Annotated[str, AfterValidator(_token_list)] = ""
    TRON_SYNC_POLL_SECONDS: float = Field(default=1.0, gt=0, le=60)
    TRON_SYNC_BATCH_BLOCKS: int = Field(default=50, ge=1, le=100)
    TRON_SYNC_CONCURRENCY: int = Field(default=8, ge=1, le=64)

    USDT_CONTRACT_ADDRESS: TronAddress = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    PAYOUT_ROUTER_CONTRACT_ADDRESS: Annotated[str, AfterValidator(_optional_tron_address)] = ""
    PAYOUT_ROUTER_PRIVATE_KEY: SecretStr = SecretStr("")
    PAYOUT_BATCH_SIZE: int = Field(default=100, ge=1, le=1000)
    PAYOUT_TIMEOUT: int = Field(default=300, gt=0)  # seconds

    WALLET_ENCRYPTION_KEY: SecretStr = SecretStr("")
    # The key being rotated away from: accepted for opening secrets until `rotate-key` has re-wrapped all.
    WALLET_ENCRYPTION_KEY_PREVIOUS: SecretStr = SecretStr("")
    # Subjects (JWT `sub`) allowed to force-delete a wallet that still holds funds; comma-separated.
    WALLET_OPERATORS: str = ""
    # TRC20 tokens shown in wallet balances besides USDT; comma-separated base58 addresses.
    WALLET_TRC20_TOKENS: Annotated[str, AfterValidator(_token_list)] = ""
    HARDWARE_WALLET_ENABLED: bool = False
    LEDGER_ENABLED: bool = False
    TREZOR_ENABLED: bool = False
    # Ledger transport: host:port of a Speculos-framed TCP APDU server; empty means the first USB Ledger.
    LEDGER_ADDRESS: str = ""
    # trezorlib transport path, e.g. udp:127.0.0.1:21324; empty means the first Trezor found.
    TREZOR_PATH: str = ""

    # Secret: a production URI carries credentials.
    MONGODB_URI: Annotated[SecretStr, AfterValidator(_mongodb_uri)] = SecretStr("mongodb://127.0.0.1:27017/")
    PAYMENT_DB_NAME: str = Field(default="tronpay", pattern=r"^[A-Za-z0-9_-]{1,63}$")
    # How long a Mongo operation waits for a reachable server, and how often health re-checks it.
    MONGODB_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0, le=60)
    HEALTH_POLL_SECONDS: float = Field(default=5.0, gt=0, le=300)

    @model_validator(mode="after")
    def _network_defaults(self) -> Settings:
        # Fill network-dependent defaults; frozen models are set through object.__setattr__.
        if not self.TRON_NODE_URL:
            object.__setattr__(self, "TRON_NODE_URL", DEFAULT_NODE_URLS[self.TRON_NETWORK])
        if self.TRON_CHAIN_ID is None and self.TRON_NETWORK in DEFAULT_CHAIN_IDS:
            object.__setattr__(self, "TRON_CHAIN_ID", DEFAULT_CHAIN_IDS[self.TRON_NETWORK])
        keys = self.TRON_NODE_API_KEYS.get_secret_value()
        if keys and len(keys.split(",")) != len(self.tron_node_urls):
            raise ValueError("TRON_NODE_API_KEYS: needs one entry (possibly empty) per TRON_NODE_URL")
        if self.PAYOUT_ROUTER_PRIVATE_KEY.get_secret_value():
            key = self.PAYOUT_ROUTER_PRIVATE_KEY.get_secret_value().removeprefix("0x")
            if len(key) != 64 or any(c not in "0123456789abcdefABCDEF" for c in key):
                raise ValueError("PAYOUT_ROUTER_PRIVATE_KEY: must be 32 bytes of hex")
        return self

    @property
    def tron_node_urls(self) -> tuple[str, ...]:
        """The configured node URLs in preference order, without trailing slashes."""
        return tuple(u.strip().rstrip("/") for u in self.TRON_NODE_URL.split(","))

    @property
    def tron_nodes(self) -> tuple[tuple[str, SecretStr], ...]:
        """(url, api key) per configured node, keys from TRON_NODE_API_KEYS or TRON_NODE_API_KEY."""
        urls = self.tron_node_urls
        keys = (
            self.TRON_NODE_API_KEYS.get_secret_value().split(",")
            if self.TRON_NODE_API_KEYS.get_secret_value()
            else []
        )
        keys += [""] * (len(urls) - len(keys))
        return tuple(
            (u, SecretStr(k.strip()) if k.strip() else self.TRON_NODE_API_KEY)
            for u, k in zip(urls, keys, strict=True)
        )

    @property
    def sync_tokens(self) -> tuple[str, ...]:
        """TRC20 contracts block sync follows: USDT first, then TRON_SYNC_TOKENS, without duplicates."""
        return self._usdt_and(self.TRON_SYNC_TOKENS)

    @property
    def wallet_tokens(self) -> tuple[str, ...]:
        """TRC20 contracts wallet balances show: USDT first, then WALLET_TRC20_TOKENS, without duplicates."""
        return self._usdt_and(self.WALLET_TRC20_TOKENS)

    def _usdt_and(self, tokens: str) -> tuple[str, ...]:
        extra = (a.strip() for a in tokens.split(",") if a.strip())
        return tuple(dict.fromkeys((self.USDT_CONTRACT_ADDRESS, *extra)))

    def port_of(self, service: ServiceName) -> int:
        """gRPC port of a service."""
        return int(getattr(self, f"{service.name}_PORT"))

    def target_of(self, service: ServiceName) -> str:
        """host:port internal clients dial for a service."""
        return f"{getattr(self, f'{service.name}_HOST')}:{self.port_of(service)}"

    @property
    def port(self) -> int:
        """This process's gRPC port."""
        return self.port_of(self.SERVICE_NAME)

    @property
    def metrics_port(self) -> int:
        """This process's Prometheus port (0 = off)."""
        return self.port + 1000 if self.METRICS_PORT is None else self.METRICS_PORT


class SettingsError(Exception):
    """Configuration is invalid; the message names each bad variable."""


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        name = ".".join(str(p) for p in e["loc"]) or "settings"
        msg = e["msg"].removeprefix("Value error, ")
        if not e["loc"] and ": " in msg:  # model-level checks name their variable first
            name, msg = msg.split(": ", 1)
        # Never echo the input: it may be a secret.
        parts.append(f"{name}: {msg}")
    return "; ".join(parts)


def parse_settings(**overrides: Any) -> Settings:
    """Parse the environment (plus overrides); raise SettingsError with a one-line reason."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise SettingsError(f"invalid configuration: {_describe(err)}") from None


def load_settings(service: ServiceName) -> Settings:
    """Parse settings for a process, exiting with status 2 and one clear line on bad values."""
    try:
        return parse_settings(SERVICE_NAME=service)
    except SettingsError as err:
        print(f"{service.dashed}: {err}", file=sys.stderr)
        raise SystemExit(2) from None
