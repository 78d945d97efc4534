"""Envoy's own replies at the edge, with no service behind it: JSON errors in the services' shape.

Also checks that the admin interface is not reachable through the edge port and that native gRPC
requests keep gRPC semantics (grpc-status, no JSON). Requests carry an admin token (authentication
itself: tests/edge/test_auth.py).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from tests.edge.http import Reply
from tests.edge.http import call as _call
from tests.harness.envoy import Edge, EdgeFactory, mint, render


def call(base_url: str, method: str, path: str, **options: Any) -> Reply:
    """One request with an admin token."""
    headers = {"authorization": "Bearer " + mint(), **options.pop("headers", {})}
    return _call(base_url, method, path, headers=headers, **options)


def assert_status_json(reply: Reply, http_status: int, grpc_code: int) -> dict[str, Any]:
    """The reply is `http_status` with a google.rpc.Status-shaped JSON body of code `grpc_code`."""
    assert reply.status == http_status, (reply.status, reply.body)
    assert reply.content_type.startswith("application/json"), reply.headers
    body = reply.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == grpc_code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert body["details"] == [], body
    return body


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (an upstream that hangs)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        server.close()


@pytest.fixture
def lone_edge(envoy_edge_factory: EdgeFactory, blackhole: int) -> Edge:
    """An edge whose wallet-manager hangs and whose other services are down."""
    return envoy_edge_factory(
        {"wallet_manager": blackhole}, wait_healthy=False, extra_env={"EDGE_ROUTE_TIMEOUT": "1s"}
    )


def test_unknown_path_is_404_json(lone_edge: Edge) -> None:
    body = assert_status_json(call(lone_edge.rest_url, "GET", "/api/v1/nope"), 404, 5)
    assert "/api/v1/nope" in body["message"]
    assert_status_json(call(lone_edge.rest_url, "GET", "/api/v1/wallets/w1/nope"), 404, 5)
    assert_status_json(call(lone_edge.rest_url, "PATCH", "/api/v1/tron/network/height"), 404, 5)


def test_unknown_query_parameter_is_400_json(lone_edge: Edge) -> None:
    reply = call(lone_edge.rest_url, "GET", "/api/v1/tron/network/height?foo=bar")
    body = assert_status_json(reply, 400, 3)
    assert '"foo"' in body["message"]


def test_malformed_json_body_is_400_json(lone_edge: Edge) -> None:
    reply = call(lone_edge.rest_url, "POST", "/api/v1/payouts/initiate", body='{"request_id": ')
    assert_status_json(reply, 400, 3)


def test_wrongly_typed_json_field_is_400_json(lone_edge: Edge) -> None:
    reply = call(lone_edge.rest_url, "GET", "/api/v1/wallets?page_size=many")
    assert_status_json(reply, 400, 3)


def test_oversized_body_is_413_json(lone_edge: Edge) -> None:
    body = '{"request_id": "' + "x" * (5 * 1024 * 1024) + '"}'
    reply = call(lone_edge.rest_url, "POST", "/api/v1/payouts/initiate", body=body)
    assert_status_json(reply, 413, 8)


def test_service_down_is_503_json(lone_edge: Edge) -> None:
    reply = call(lone_edge.rest_url, "GET", "/api/v1/tron/network/height")
    assert_status_json(reply, 503, 14)
    entry = lone_edge.access_entry(reply.request_id)
    assert entry["cluster"] == "tron_client"


def test_hanging_service_is_504_json(lone_edge: Edge) -> None:
    reply = call(lone_edge.rest_url, "GET", "/api/v1/wallets")
    body = assert_status_json(reply, 504, 4)
    assert "timeout" in body["message"]


@pytest.mark.parametrize("path", ["/stats", "/clusters", "/config_dump", "/ready", "/quitquitquit"])
def test_admin_is_not_reachable_on_the_edge_port(lone_edge: Edge, path: str) -> None:
    for method in ("GET", "POST"):
        reply = call(lone_edge.rest_url, method, path)
        assert_status_json(reply, 404, 5)
    assert lone_edge.admin("/ready")[0] == 200  # still alive: /quitquitquit did not reach the admin


def _non_loopback_ipv4() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            address = str(s.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_admin_listens_on_loopback_only(lone_edge: Edge) -> None:
    address = _non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to probe")
    refused = (ConnectionError, TimeoutError)  # refused, or dropped by a firewall
    with pytest.raises(refused), socket.create_connection((address, lone_edge.admin_port), timeout=1):
        pass


def test_native_grpc_keeps_grpc_status_for_edge_errors(lone_edge: Edge, envoy_descriptor: Any) -> None:
    """Unrouted and failing native gRPC calls get grpc-status, never JSON (the mappers skip gRPC)."""
    methods = render.load_public_methods(envoy_descriptor)
    height = next(m for m in methods if m.http_path == "/api/v1/tron/network/height")
    auth = (("authorization", "Bearer " + mint()),)
    with grpc.insecure_channel(lone_edge.grpc_target) as channel:
        unrouted = channel.unary_unary("/grpc.health.v1.Health/Check")
        with pytest.raises(grpc.RpcError) as err:
            unrouted(b"", metadata=auth, timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED  # no public method by that name
        assert err.value.details() == "no such public gRPC method"  # grpc-message, not JSON
        down = channel.unary_unary(height.grpc_path)
        with pytest.raises(grpc.RpcError) as err:
            down(b"", metadata=auth, timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "{" not in (err.value.details() or "")
