"""Prometheus metrics: per-method RPC counters and latency, served on the process's metrics port."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

# Names follow go-grpc-prometheus so the usual dashboards work.
RPC_STARTED = Counter(
    "grpc_server_started_total", "RPCs started on the server.", ["grpc_service", "grpc_method"]
)
RPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle an RPC on the server.",
    ["grpc_service", "grpc_method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def split_method(full_method: str) -> tuple[str, str]:
    """'/pkg.Service/Method' -> ('pkg.Service', 'Method')."""
    _, service, method = [*full_method.split("/"), "", ""][:3]
    return service, method


def start_metrics_server(port: int, host: str) -> None:
    """Serve /metrics over HTTP in a daemon thread (no-op when port is 0)."""
    if port:
        start_http_server(port, addr=host)
