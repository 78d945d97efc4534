"""OpenTelemetry traces (services/common/tracing.py, envoy/render.py): off by default; with
OTEL_EXPORTER_OTLP_ENDPOINT set, a request's spans across the edge and the services share the trace id its
`traceparent` carried, each span the child of the one that called it, and every log line names the trace.

A stub OTLP/gRPC collector on 127.0.0.1 (the opentelemetry-proto service, decoded as a real collector would)
receives what the processes export."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as wm_grpc

from services.common import tracing
from services.common.logging import JsonFormatter
from tests.edge.http import call
from tests.harness.envoy import render, start_edge
from tests.harness.ferretdb import FerretDB
from tests.harness.services import REPO, Cluster, ServiceFactory

WALLET = "tronpay.wallet_manager.v1.WalletManagerService"
TRON_CLIENT = "tronpay.tron_client.v1.TronClientService"
WAIT_SECONDS = 30.0  # Envoy exports about every 5 s, the services every 0.1 s (OTEL_BSP_SCHEDULE_DELAY)


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span exported to it."""

    def __init__(self) -> None:
        self._spans: list[Span] = []
        self._lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 (the gRPC method name)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                with self._lock:
                    self._spans.extend(
                        Span(
                            attributes.get("service.name", ""),
                            s.name,
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                        )
                        for s in scope.spans
                    )
        return trace_service_pb2.ExportTraceServiceResponse()

    def wait_for(self, trace_id: str, service: str, name: str | None = None) -> Span:
        """The span of `service` (named `name`, if given) in the trace, once it arrived (bounded wait)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            with self._lock:
                for span in self._spans:
                    if (span.trace_id, span.service) == (trace_id, service) and name in (None, span.name):
                        return span
            time.sleep(0.1)
        with self._lock:
            seen = sorted({(s.service, s.name) for s in self._spans if s.trace_id == trace_id})
        raise AssertionError(f"no span {service} {name} in trace {trace_id}; its spans: {seen}")


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Collector, str]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    sink = Collector()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield sink, f"http://127.0.0.1:{port}"
    finally:
        server.stop(0)


@pytest.fixture(scope="module")
def traced(
    ferretdb: FerretDB, tmp_path_factory: pytest.TempPathFactory, collector: tuple[Collector, str]
) -> Iterator[Cluster]:
    """wallet-manager and the tron-client it reads balances from, exporting spans to the collector."""
    factory = ServiceFactory(ferretdb, tmp_path_factory.mktemp("traced"))
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector[1], "OTEL_BSP_SCHEDULE_DELAY": "100", "LOG_LEVEL": "INFO"}
    try:
        yield factory.start("tron_client", "wallet_manager", env=env)
    finally:
        factory.close()


def traceparent() -> tuple[str, str, str]:
    """A sampled W3C traceparent of a new trace: (header value, trace id, parent span id)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def log_lines(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    out = []
    for line in cluster[name].log().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "service" in record:
            out.append(record)
    return out


def rpc_line(cluster: Cluster, name: str, method: str, trace_id: str) -> dict[str, Any]:
    """The service's log line of that RPC in that trace (written before its span ended)."""
    lines = [r for r in log_lines(cluster, name) if r["msg"].startswith(f"rpc /{method} ")]
    matching = [r for r in lines if r.get("trace_id") == trace_id]
    assert matching, f"no log line of {method} with trace_id {trace_id}: {lines[-3:]}"
    return matching[-1]


def test_a_trace_continues_across_services_and_into_their_logs(
    traced: Cluster, collector: tuple[Collector, str]
) -> None:
    sink, _ = collector
    header, trace_id, parent = traceparent()
    # Importing a key asks tron-client for the network's identity, which fails there (its node is
    # tests.harness.services.UNREACHABLE_NODE): a call across two services that both log.
    with traced["wallet_manager"].channel() as ch, pytest.raises(grpc.RpcError) as failed:
        wm_grpc.WalletManagerServiceStub(ch).CreateWallet(
            wm.CreateWalletRequest(
                request_id=secrets.token_hex(8),
                wallet=wm.Wallet(owner_id="tracing", kind=wm.Wallet.KIND_IMPORTED),
                private_key=secrets.token_hex(32),
            ),
            metadata=[("traceparent", header)],
            timeout=30,
        )
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value.details()
    served = sink.wait_for(trace_id, "wallet-manager", f"{WALLET}/CreateWallet")
    assert served.parent_id == parent
    upstream = sink.wait_for(trace_id, "tron-client")
    assert upstream.name.startswith(f"{TRON_CLIENT}/")
    assert upstream.parent_id == served.span_id  # the internal call carried wallet-manager's span
    rpc_line(traced, "wallet_manager", f"{WALLET}/CreateWallet", trace_id)
    rpc_line(traced, "tron_client", upstream.name, trace_id)
    for name in ("wallet_manager", "tron_client"):  # every line, "-" where no RPC is being traced
        lines = log_lines(traced, name)
        assert lines and all("trace_id" in r for r in lines), [r for r in lines if "trace_id" not in r][:3]
        assert any(r["trace_id"] == "-" for r in lines)  # start-up, before any RPC


def test_the_edge_starts_the_trace_the_services_continue(
    traced: Cluster, collector: tuple[Collector, str], tmp_path: Path
) -> None:
    sink, endpoint = collector
    ports = {"wallet_manager": traced["wallet_manager"].port, "tron_client": traced["tron_client"].port}
    with start_edge(
        ports,
        tmp_path / "edge",
        extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint},
        wait_healthy=("wallet_manager",),
    ) as edge:
        header, trace_id, parent = traceparent()
        missing = "w" + secrets.token_hex(8)
        reply = call(
            edge.rest_url,
            "GET",
            f"/api/v1/wallets/{missing}",
            headers={**edge.auth("admin"), "traceparent": header},
        )
        assert reply.status == 404, reply.body
        edge_span = sink.wait_for(trace_id, "edge")
        assert edge_span.parent_id == parent  # the client's traceparent is continued, not replaced
        served = sink.wait_for(trace_id, "wallet-manager", f"{WALLET}/GetWallet")
        assert served.parent_id == edge_span.span_id
        assert edge.access_entry(reply.request_id)["trace_id"] == trace_id
    line = rpc_line(traced, "wallet_manager", f"{WALLET}/GetWallet", trace_id)
    assert line["request_id"] == reply.request_id  # the edge's request id, as without tracing


def test_tracing_is_off_by_default(tmp_path: Path) -> None:
    assert not tracing.enabled()
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    assert "trace_id" not in json.loads(JsonFormatter().format(record))
    metadata: list[tuple[str, str | bytes]] = []
    tracing.outgoing(metadata)
    assert metadata == []
    assert tracing.start_server_span(f"/{WALLET}/GetWallet", [("traceparent", traceparent()[0])]) is None

    base = {"ENVOY_DESCRIPTOR": str(REPO / "gen" / "envoy" / "tronpay.pb")}
    config = render.render({k: v for k, v in os.environ.items() if k != "OTEL_EXPORTER_OTLP_ENDPOINT"} | base)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert "tracing" not in hcm
    assert "otlp" not in {c["name"] for c in config["static_resources"]["clusters"]}
    assert "trace_id" not in json.dumps(hcm["access_log"])


@pytest.mark.parametrize("endpoint", ["", "http://127.0.0.1:4317", "https://otel-collector.example:4317"])
def test_make_envoy_validate_with_and_without_tracing(tmp_path: Path, endpoint: str) -> None:
    env = {**os.environ, "ENVOY_DESCRIPTOR": str(REPO / "gen" / "envoy" / "tronpay.pb")}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    if endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    out = tmp_path / "envoy.json"
    result = subprocess.run(
        ["make", "-s", "envoy-validate", f"ENVOY_CONFIG={out}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ('"envoy.tracers.opentelemetry"' in out.read_text()) == bool(endpoint)


@pytest.mark.parametrize("endpoint", ["otel:4317", "ftp://otel:4317", "http://otel:4318/v1/traces"])
def test_a_bad_endpoint_is_refused(endpoint: str) -> None:
    base = {"ENVOY_DESCRIPTOR": str(REPO / "gen" / "envoy" / "tronpay.pb")}
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        render.render({**base, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
    from services.common.settings import Settings, SettingsError, parse_settings

    with pytest.raises(SettingsError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        parse_settings(Settings, SERVICE_NAME="tron_client", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
