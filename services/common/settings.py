"""Process configuration from the environment, parsed once at start-up and passed down explicitly.

`Settings` holds what every service reads (the cluster shares one environment; SERVICE_NAME picks the
process's own port). A variable only one service uses lives in that service's subclass
(`services/<name>/settings.py`), so a bad value there stops only that service; the others ignore it.
Secrets are SecretStr so they never reach logs or reprs. Bad values stop the process with one line
naming the variable (see `load_settings`), never a traceback.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field, SecretStr, ValidationError
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


def _token_list(value: str) -> str:
    for addr in (a.strip() for a in value.split(",") if a.strip()):
        _tron_address(addr)
    return value


def _mongodb_uri(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().startswith(("mongodb://", "mongodb+srv://")):
        raise ValueError("must start with mongodb:// or mongodb+srv://")
    return value


# Field types the services' own settings use too.
TronAddress = Annotated[str, AfterValidator(_tron_address)]
OptionalTronAddress = Annotated[str, AfterValidator(_optional_tron_address)]
TokenList = Annotated[str, AfterValidator(_token_list)]  # comma-separated base58 TRC20 contracts
Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    """Settings every service reads. Field names are the environment variable names."""

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
    # grpc.health.v1 alone, in plaintext, for probes that cannot present a client certificate (kubelet);
    # 0 turns it off; unset means gRPC port + 2000. Every other RPC needs mutual TLS on the gRPC port.
    HEALTH_PORT: int | None = Field(default=None, ge=0, le=65535)
    # <TLS_DIR>/<identity>/{tls.crt,tls.key,ca.crt}: this service's certificate and the cluster CA
    # (services.common.tls; `make up` makes development ones, Kubernetes mounts Secrets).
    TLS_DIR: Path = Path(".data/pki")
    # Seconds between NOT_SERVING and stopping the server, and the in-flight grace after that.
    SHUTDOWN_DRAIN_SECONDS: float = Field(default=1.0, ge=0, le=60)
    SHUTDOWN_GRACE_SECONDS: float = Field(default=5.0, ge=0, le=120)
    # Default deadline of internal gRPC calls.
    INTERNAL_RPC_TIMEOUT: float = Field(default=10.0, gt=0, le=300)
    # OpenTelemetry traces over OTLP/gRPC to this collector (http://otel-collector:4317); empty = off.
    OTEL_EXPORTER_OTLP_ENDPOINT: str = Field(default="", pattern=r"^(https?://[^\s/]+/?)?$")

    USDT_CONTRACT_ADDRESS: TronAddress = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    # Secret: a production URI carries credentials.
    MONGODB_URI: Annotated[SecretStr, AfterValidator(_mongodb_uri)] = SecretStr("mongodb://127.0.0.1:27017/")
    PAYMENT_DB_NAME: str = Field(default="tronpay", pattern=r"^[A-Za-z0-9_-]{1,63}$")
    # How long a Mongo operation waits for a reachable server, and how often health re-checks it.
    MONGODB_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0, le=60)
    HEALTH_POLL_SECONDS: float = Field(default=5.0, gt=0, le=300)

    def usdt_and(self, tokens: str) -> tuple[str, ...]:
        """USDT first, then the comma-separated `tokens`, without duplicates."""
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

    @property
    def health_port(self) -> int:
        """This process's plaintext health-only port (0 = off)."""
        return self.port + 2000 if self.HEALTH_PORT is None else self.HEALTH_PORT


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


S = TypeVar("S", bound=Settings)


def parse_settings(settings_type: type[S], /, **overrides: Any) -> S:
    """Parse the environment (plus overrides) into `settings_type`; SettingsError with a one-line reason."""
    try:
        return settings_type(**overrides)
    except ValidationError as err:
        raise SettingsError(f"invalid configuration: {_describe(err)}") from None


def load_settings(service: ServiceName, settings_type: type[S]) -> S:
    """Parse settings for a process, exiting with status 2 and one clear line on bad values."""
    try:
        return parse_settings(settings_type, SERVICE_NAME=service)
    except SettingsError as err:
        print(f"{service.dashed}: {err}", file=sys.stderr)
        raise SystemExit(2) from None
