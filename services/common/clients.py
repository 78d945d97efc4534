"""Internal gRPC channels to the other services: deadlines, retries, and context propagation.

Retries and per-method timeouts live in the gRPC service config (retry only UNAVAILABLE, which is
safe for every method because mutating RPCs carry a request_id). A client interceptor sets a default
deadline when the caller gave none and forwards the request id and end-user subject, adding this
service as the caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from services.common import context
from services.common.settings import ServiceName, Settings

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


def outgoing_metadata(caller: str, metadata: Any) -> list[tuple[str, str | bytes]]:
    """The call's metadata plus request id / subject from the current context and caller = us."""
    out: list[tuple[str, str | bytes]] = [
        (k, v) for k, v in (metadata or ()) if k not in (context.REQUEST_ID_KEY, context.CALLER_KEY)
    ]
    ctx = context.current()
    out.append((context.REQUEST_ID_KEY, ctx.request_id if ctx else context.new_request_id()))
    if ctx and ctx.subject and not any(k == context.SUBJECT_KEY for k, _ in out):
        out.append((context.SUBJECT_KEY, ctx.subject))
    out.append((context.CALLER_KEY, caller))
    return out


class _Propagate(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Adds context metadata and a default deadline to every outgoing call."""

    def __init__(self, caller: str, default_timeout: float) -> None:
        self._caller, self._timeout = caller, default_timeout

    def _details(self, d: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        return grpc.aio.ClientCallDetails(
            method=d.method,
            timeout=d.timeout if d.timeout is not None else self._timeout,
            metadata=grpc.aio.Metadata(*outgoing_metadata(self._caller, d.metadata)),
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


def open_channel(target: str, caller: str, timeout_seconds: float) -> grpc.aio.Channel:
    """An insecure channel (in-cluster traffic; NetworkPolicies isolate the namespace)."""
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.service_config", service_config(timeout_seconds)),
            ("grpc.enable_retries", 1),
            ("grpc.keepalive_time_ms", 30_000),
        ],
        interceptors=[_Propagate(caller, timeout_seconds)],
    )


class ServiceClients:
    """Lazily opened channels to the other services; one per target, closed together."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._channels: dict[ServiceName, grpc.aio.Channel] = {}

    def channel(self, service: ServiceName) -> grpc.aio.Channel:
        """The channel to `service` (opened on first use)."""
        if service not in self._channels:
            self._channels[service] = open_channel(
                self._settings.target_of(service),
                self._settings.SERVICE_NAME.dashed,
                self._settings.INTERNAL_RPC_TIMEOUT,
            )
        return self._channels[service]

    def stub(self, service: ServiceName, stub_class: Callable[[grpc.aio.Channel], T]) -> T:
        """A generated stub (e.g. TronClientServiceStub) bound to `service`'s channel."""
        return stub_class(self.channel(service))

    async def close(self) -> None:
        """Close every opened channel."""
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()
