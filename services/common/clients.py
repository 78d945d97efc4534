"""Internal gRPC channels to the other services: mutual TLS, deadlines, retries, context propagation.

Every channel presents this service's certificate and accepts only a server certificate naming the service
it dials (services.common.tls). Retries and per-method timeouts live in the gRPC service config (retry only
UNAVAILABLE, which is safe for every method because mutating RPCs carry a request_id). A client interceptor
sets a default deadline when the caller gave none and forwards the request id and the end user's identity
(subject, roles, tenant) of the call being served, and its trace context when tracing is on; who is calling
is the certificate, not metadata.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

import grpc

from services.common import context, tracing
from services.common.access import IDENTITY_KEYS
from services.common.settings import ServiceName, Settings
from services.common.tls import Credentials, target_options

T = TypeVar("T")


def service_config(timeout_seconds: float) -> str:
    """Service config JSON: round_robin, default timeout, retry on UNAVAILABLE with backoff."""
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [
                {
                    "name": [{}],  # every service and method on the channel
                    "timeout": f"{timeout_seconds:.3f}s",
                    "retryPolicy": {
                        "maxAttempts": 3,
                        "initialBackoff": "0.1s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ],
        }
    )


def outgoing_metadata(metadata: Any) -> list[tuple[str, str | bytes]]:
    """The call's metadata without identity keys, plus the request id and end-user identity of the current
    context (one source of truth: code cannot forward an identity it was not given)."""
    dropped = (context.REQUEST_ID_KEY, *IDENTITY_KEYS)
    out: list[tuple[str, str | bytes]] = [(k, v) for k, v in (metadata or ()) if k not in dropped]
    ctx = context.current()
    out.append((context.REQUEST_ID_KEY, ctx.request_id if ctx else context.new_request_id()))
    if ctx:
        out.extend(ctx.identity_metadata())
    tracing.outgoing(out)  # the span being served, when tracing is on
    return out


class _Propagate(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Adds context metadata and a default deadline to every outgoing call."""

    def __init__(self, default_timeout: float) -> None:
        self._timeout = default_timeout

    def _details(self, d: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        return grpc.aio.ClientCallDetails(
            method=d.method,
            timeout=d.timeout if d.timeout is not None else self._timeout,
            metadata=grpc.aio.Metadata(*outgoing_metadata(d.metadata)),
            credentials=d.credentials,
            wait_for_ready=d.wait_for_ready,
        )

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(details), request_iterator)

    async def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(details), request_iterator)


def open_channel(
    target: str, peer: str, credentials: Credentials, timeout_seconds: float
) -> grpc.aio.Channel:
    """A mutual-TLS channel to `peer` (its certificate must name it) at `target`."""
    return grpc.aio.secure_channel(
        target,
        credentials.channel(),
        options=[
            *target_options(peer),
            ("grpc.service_config", service_config(timeout_seconds)),
            ("grpc.enable_retries", 1),
            ("grpc.keepalive_time_ms", 30_000),
        ],
        interceptors=[_Propagate(timeout_seconds)],
    )


class ServiceClients:
    """Lazily opened channels to the other services; one per target, closed together."""

    def __init__(self, settings: Settings, credentials: Credentials) -> None:
        self._settings, self._credentials = settings, credentials
        self._channels: dict[ServiceName, grpc.aio.Channel] = {}
        self._stubs: dict[tuple[ServiceName, Callable[..., Any]], Any] = {}

    def channel(self, service: ServiceName) -> grpc.aio.Channel:
        """The channel to `service` (opened on first use)."""
        if service not in self._channels:
            self._channels[service] = open_channel(
                self._settings.target_of(service),
                service.dashed,
                self._credentials,
                self._settings.INTERNAL_RPC_TIMEOUT,
            )
        return self._channels[service]

    def stub(self, service: ServiceName, stub_class: Callable[[grpc.aio.Channel], T]) -> T:
        """A generated stub (e.g. TronClientServiceStub) bound to `service`'s channel, made once (a stub
        builds a callable per method: per call, that was a visible share of a busy service's CPU)."""
        key = (service, stub_class)
        stub = self._stubs.get(key)
        if stub is None:
            stub = self._stubs[key] = stub_class(self.channel(service))
        return cast(T, stub)

    async def close(self) -> None:
        """Close every opened channel."""
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()
        self._stubs.clear()
