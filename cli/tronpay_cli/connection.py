"""Channels to the cluster and the one way commands call it (`App.call`).

Public RPCs go to the edge (Envoy, default localhost:8080) with the bearer token in the `authorization`
metadata, as REST clients send it. The few commands for operators (audit verify, payout approvals, listing
payments) call a service's own port over mutual TLS with the operator certificate from the cluster CA
(`make up` makes a development one in .data/pki/operator), which is how the cluster's own tools are
authorised (docs/access.md).
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from tronpay_cli.errors import CliError, ExitCode, from_rpc_error

R = TypeVar("R", bound=Message)

DEFAULT_SERVER = "localhost:8080"
DEFAULT_DEADLINE = 30.0

#: Each service's default gRPC port (README "The cluster"); `<SERVICE>_HOST` / `<SERVICE>_PORT`, the
#: variables the cluster itself reads, override them for the operator commands.
SERVICE_PORTS = {
    "tron-client": 8085,
    "payout-router": 8086,
    "wallet-manager": 8087,
    "usdt-manager": 8088,
    "trx-staking": 8089,
    "payment-gateway": 8090,
}


def is_loopback(server: str) -> bool:
    """Whether `server` ("host:port") names this machine."""
    host = server.rsplit(":", 1)[0].strip("[]") if ":" in server else server
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def service_address(service: str) -> str:
    """host:port of a service's own gRPC port, from `<SERVICE>_HOST`/`<SERVICE>_PORT` or the defaults."""
    prefix = service.upper().replace("-", "_")
    host = os.environ.get(f"{prefix}_HOST") or "127.0.0.1"
    port = os.environ.get(f"{prefix}_PORT") or str(SERVICE_PORTS[service])
    return f"{host}:{port}"


def new_request_id() -> str:
    """An idempotency key for a mutating call made without --request-id (shown so it can be retried)."""
    return f"cli-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Direct:
    """A service's own gRPC port, reached over mutual TLS with the operator certificate."""

    channel: grpc.Channel
    service: str
    address: str


@dataclass
class App:
    """What every command shares: connection settings, open channels and the output mode."""

    server: str = DEFAULT_SERVER
    token: str = field(default="", repr=False)
    tls: bool | None = None  # None: TLS unless the server is on this machine
    ca_file: Path | None = None
    deadline: float = DEFAULT_DEADLINE
    tls_dir: Path | None = None
    as_json: bool = False
    _channels: dict[str, grpc.Channel] = field(default_factory=dict, repr=False)

    # -- channels ----------------------------------------------------------------------------------

    def edge(self) -> grpc.Channel:
        """The channel to the edge (opened once)."""
        if "edge" not in self._channels:
            use_tls = self.tls if self.tls is not None else not is_loopback(self.server)
            if use_tls:
                ca = self._read(self.ca_file, "--ca-file") if self.ca_file else None
                channel = grpc.secure_channel(self.server, grpc.ssl_channel_credentials(root_certificates=ca))
            else:
                channel = grpc.insecure_channel(self.server)
            self._channels["edge"] = channel
        return self._channels["edge"]

    def operator_dir(self) -> Path:
        """Where the operator certificate is (`--tls-dir`, TLS_DIR, or `make up`'s .data/pki)."""
        return (self.tls_dir or Path(os.environ.get("TLS_DIR") or ".data/pki")) / "operator"

    def has_operator_certificate(self) -> bool:
        return (self.operator_dir() / "tls.crt").is_file()

    def operator(self, service: str, address: str | None = None) -> Direct:
        """`service`'s own port as the operator (the channel is opened once)."""
        target = address or service_address(service)
        key = f"operator/{service}/{target}"
        if key not in self._channels:
            base = self.operator_dir()
            creds = grpc.ssl_channel_credentials(
                self._read(base / "ca.crt", "--tls-dir"),
                self._read(base / "tls.key", "--tls-dir"),
                self._read(base / "tls.crt", "--tls-dir"),
            )
            # The service's certificate names the service, whatever address is dialled (common/tls.py).
            options = [("grpc.ssl_target_name_override", service), ("grpc.default_authority", service)]
            self._channels[key] = grpc.secure_channel(target, creds, options=options)
        return Direct(self._channels[key], service, target)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    # -- calls -------------------------------------------------------------------------------------

    def metadata(self) -> list[tuple[str, str]]:
        """The bearer token for the edge (none when no token is set)."""
        return [("authorization", f"Bearer {self.token}")] if self.token else []

    def call(
        self,
        method: Callable[..., R],
        request: Message,
        *,
        direct: Direct | None = None,
        metadata: list[tuple[str, str]] | None = None,
    ) -> R:
        """`method(request)` with the deadline and, through the edge, the token; a failed call becomes a
        CliError. `direct`: the call goes to that service's own port (no token: the certificate counts)."""
        if metadata is None:
            metadata = [] if direct else self.metadata()
        try:
            return method(request, timeout=self.deadline, metadata=metadata)
        except grpc.RpcError as err:
            raise self.failed(err, rpc_name(request), direct) from None

    def failed(self, err: grpc.RpcError, rpc: str, direct: Direct | None = None) -> CliError:
        if direct is None:
            error = from_rpc_error(err, rpc, self.server)
        else:
            error = from_rpc_error(err, rpc, direct.address, direct.service)
        error.as_json = self.as_json
        return error

    def _read(self, path: Path, option: str) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise self.error(
                ExitCode.USAGE,
                f"cannot read {path}: {exc.strerror or exc.__class__.__name__}",
                hint=f"{option}; `make up` makes the development certificates in .data/pki",
            ) from None

    def error(self, code: ExitCode, message: str, **extra: Any) -> CliError:
        """A local failure in this command's output mode."""
        error = CliError(code, message, **extra)
        error.as_json = self.as_json
        return error


def rpc_name(request: Message) -> str:
    """ "Service/Method" of the RPC that takes `request` (found in the request's own proto file)."""
    wanted = request.DESCRIPTOR.full_name
    for service in request.DESCRIPTOR.file.services_by_name.values():
        for method in service.methods:
            if method.input_type.full_name == wanted:
                return f"{service.name}/{method.name}"
    return type(request).__name__
