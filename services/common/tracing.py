"""OpenTelemetry traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (Settings).

On, every RPC of our own contracts (/tronpay.*; health checks and reflection are not traced) is a SERVER
span that continues the W3C `traceparent` the caller sent: Envoy starts the trace at the edge, and the
internal client interceptor (services.common.clients) forwards the span being served, so a request's
spans across the edge and the services share one trace id. Spans go in batches over OTLP/gRPC to the
endpoint; the other standard OTEL_* variables (headers, sampler, batch delays) apply as the SDK reads them.
Every log line then carries `trace_id` (services.common.logging; "-" outside a traced RPC).

Off, nothing here runs on the request path: no spans, no traceparent forwarded, no trace id in the logs.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import Token
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACED_PREFIX = "/tronpay."
# Server errors in the gRPC semantic conventions; the others are the caller's (the span stays UNSET).
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

_tracer: trace.Tracer | None = None
_shutdown: Any = None  # the provider's shutdown (flushes what is queued)


def setup(service: str, endpoint: str) -> None:
    """Export this process's spans to `endpoint` (OTLP/gRPC); nothing when it is empty."""
    global _tracer, _shutdown
    if not endpoint:
        return
    # The SDK and exporter load only when tracing is on.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "tronpay"})
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    _tracer = provider.get_tracer("tronpay")
    _shutdown = provider.shutdown


def enabled() -> bool:
    """Whether this process traces."""
    return _tracer is not None


def shutdown() -> None:
    """Send the spans still queued (blocking; at process stop)."""
    global _tracer, _shutdown
    if _shutdown is not None:
        _shutdown()
    _tracer = _shutdown = None


@dataclass(slots=True)
class ServerSpan:
    """An RPC's span and the context token that made it current."""

    span: trace.Span
    token: Token[Context]


def start_server_span(method: str, metadata: Iterable[tuple[str, str | bytes]] | None) -> ServerSpan | None:
    """Start and make current the span of an incoming RPC, child of the caller's `traceparent`; None when
    tracing is off or the method is not one of ours."""
    if _tracer is None or not method.startswith(_TRACED_PREFIX):
        return None
    carrier = {k: v for k, v in metadata or () if isinstance(v, str)}
    service, _, name = method[1:].partition("/")
    span = _tracer.start_span(
        method[1:],
        context=_PROPAGATOR.extract(carrier),
        kind=trace.SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
    )
    return ServerSpan(span, otel_context.attach(trace.set_span_in_context(span)))


def end_server_span(handle: ServerSpan | None, code: grpc.StatusCode) -> None:
    """End the span with the RPC's status code and restore the previous context."""
    if handle is None:
        return
    handle.span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in _SERVER_ERRORS:
        handle.span.set_status(trace.StatusCode.ERROR, code.name)
    handle.span.end()
    otel_context.detach(handle.token)


def outgoing(metadata: list[tuple[str, str | bytes]]) -> None:
    """Append the current span's `traceparent` (and `tracestate`) to an outgoing call's metadata."""
    if _tracer is None:
        return
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    metadata.extend(carrier.items())


def current_trace_id() -> str:
    """The current span's trace id (32 hex digits), or "-" outside a traced RPC."""
    ctx = trace.get_current_span().get_span_context()
    return trace.format_trace_id(ctx.trace_id) if ctx.is_valid else "-"
