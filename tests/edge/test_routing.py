"""Every documented REST path through the real Envoy in front of the real six services.

For each endpoint the test checks, independently of the service's own answer, that the request reached
the intended gRPC method: Envoy's access log line for the request (found by the x-request-id Envoy
returns) names the gRPC path it was transcoded to, the cluster and the upstream address (the port of
the intended service process), and says the answer came from that upstream. Then the answer itself: the
status the sample gets (endpoints.ANSWERS), with JSON; an error is the service's own (its ErrorInfo domain).
None may 404 unless the service says so.

Also: a service's rich error (BadRequest field violations) comes back as JSON through the edge, native
gRPC through the same listener reaches the services (a real RPC and a NOT_FOUND answer), and internal
RPCs (no HTTP binding) are not reachable at the edge. Every request carries an admin token (the matrix
allows an admin everything public); tests/edge/test_roles.py covers the other roles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.edge.endpoints import ANSWERS, DOCUMENTED, Endpoint
from tests.edge.http import call
from tests.harness.envoy import Edge, render

ADDRESS = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
SPENDER = "TKzxdSv2FZKQrEqkKVgp5DcwEXBEKMg2Ax"
REQ = "routing-test-1"

#: A concrete, valid request per endpoint (path with query, JSON body or None): valid so that it gets past
#: the services' request validation to the answer endpoints.ANSWERS expects.
SAMPLES: dict[str, tuple[str, dict[str, Any] | None]] = {
    "GET /api/v1/tron/network/info": ("/api/v1/tron/network/info", None),
    "GET /api/v1/tron/network/status": ("/api/v1/tron/network/status", None),
    "GET /api/v1/tron/network/height": ("/api/v1/tron/network/height", None),
    "GET /api/v1/tron/network/fees": ("/api/v1/tron/network/fees", None),
    "GET /api/v1/wallets": ("/api/v1/wallets?page_size=10", None),
    "POST /api/v1/wallets": (
        "/api/v1/wallets",
        {"request_id": REQ, "wallet": {"display_name": "ops", "owner_id": "acme", "kind": "KIND_HD"}},
    ),
    "GET /api/v1/wallets/{wallet_id}": ("/api/v1/wallets/w1", None),
    "PUT /api/v1/wallets/{wallet_id}": (
        "/api/v1/wallets/w1",
        {"request_id": REQ, "wallet": {"display_name": "ops2", "owner_id": "acme", "kind": "KIND_HD"}},
    ),
    "DELETE /api/v1/wallets/{wallet_id}": (f"/api/v1/wallets/w1?request_id={REQ}", None),
    "GET /api/v1/wallets/{wallet_id}/balance": ("/api/v1/wallets/w1/balance", None),
    "GET /api/v1/wallets/{wallet_id}/transactions": ("/api/v1/wallets/w1/transactions?page_size=5", None),
    "POST /api/v1/usdt/transfer": (
        "/api/v1/usdt/transfer",
        {"request_id": REQ, "wallet_id": "w1", "to_address": ADDRESS, "amount": "1000000"},
    ),
    "GET /api/v1/usdt/balance/{address}": (f"/api/v1/usdt/balance/{ADDRESS}", None),
    "GET /api/v1/usdt/transactions/{address}": (f"/api/v1/usdt/transactions/{ADDRESS}?page_size=5", None),
    "POST /api/v1/usdt/approve": (
        "/api/v1/usdt/approve",
        {"request_id": REQ, "wallet_id": "w1", "spender_address": SPENDER, "amount": "5"},
    ),
    "GET /api/v1/usdt/allowance": (
        f"/api/v1/usdt/allowance?owner_address={ADDRESS}&spender_address={SPENDER}",
        None,
    ),
    "POST /api/v1/payouts/initiate": (
        "/api/v1/payouts/initiate",
        {
            "request_id": REQ,
            "wallet_id": "w1",
            "recipient_address": ADDRESS,
            "asset": "ASSET_USDT",
            "amount": "1000000",
        },
    ),
    "GET /api/v1/payouts/{payout_id}": ("/api/v1/payouts/p1", None),
    "POST /api/v1/payouts/batch": (
        "/api/v1/payouts/batch",
        {
            "request_id": REQ,
            "wallet_id": "w1",
            "asset": "ASSET_USDT",
            "items": [{"recipient_address": ADDRESS, "amount": "1000000"}],
        },
    ),
    "GET /api/v1/payouts/history": ("/api/v1/payouts/history?page_size=10", None),
    "POST /api/v1/payouts/cancel": ("/api/v1/payouts/cancel", {"request_id": REQ, "payout_id": "p1"}),
    "POST /api/v1/staking/stake": (
        "/api/v1/staking/stake",
        {"request_id": REQ, "wallet_id": "w1", "amount_sun": "1000000", "resource": "RESOURCE_TYPE_ENERGY"},
    ),
    "POST /api/v1/staking/unstake": (
        "/api/v1/staking/unstake",
        {"request_id": REQ, "wallet_id": "w1", "amount_sun": "1000000", "resource": "RESOURCE_TYPE_ENERGY"},
    ),
    "GET /api/v1/staking/status/{address}": (f"/api/v1/staking/status/{ADDRESS}", None),
    "GET /api/v1/staking/rewards/{address}": (f"/api/v1/staking/rewards/{ADDRESS}", None),
    "POST /api/v1/staking/withdraw": (
        "/api/v1/staking/withdraw",
        {"request_id": REQ, "wallet_id": "w1", "kind": "WITHDRAW_KIND_UNSTAKED"},
    ),
    "POST /api/v1/payments/process": (
        "/api/v1/payments/process",
        {
            "request_id": REQ,
            "merchant_id": "acme",
            "order_id": "o1",
            "asset": "ASSET_USDT",
            "amount": "1000000",
        },
    ),
    "GET /api/v1/payments/{payment_id}": ("/api/v1/payments/pay1", None),
    "POST /api/v1/payments/refund": (
        "/api/v1/payments/refund",
        {"request_id": REQ, "payment_id": "pay1", "amount": "1", "to_address": ADDRESS},
    ),
    "GET /api/v1/payments/reconciliation": ("/api/v1/payments/reconciliation?page_size=10", None),
    "POST /api/v1/payments/webhook": ("/api/v1/payments/webhook", {"event": "test", "id": "evt-1"}),
}


def test_samples_cover_every_documented_endpoint() -> None:
    assert set(SAMPLES) == {str(e) for e in DOCUMENTED}


@pytest.fixture(scope="module")
def bindings(envoy_descriptor: Path) -> dict[str, Any]:
    """'VERB /template' -> the public RPC bound to it (from the descriptor the edge serves)."""
    return {f"{m.http_verb.upper()} {m.http_path}": m for m in render.load_public_methods(envoy_descriptor)}


@pytest.mark.parametrize("endpoint", DOCUMENTED, ids=str)
def test_documented_endpoint_reaches_its_method(
    envoy_edge: Edge, bindings: dict[str, Any], endpoint: Endpoint
) -> None:
    method = bindings[str(endpoint)]
    path, body = SAMPLES[str(endpoint)]
    reply = call(envoy_edge.rest_url, endpoint.verb, path, body=body, headers=envoy_edge.auth())
    assert reply.status != 404 or ANSWERS[str(endpoint)] == 404, reply.body
    assert reply.content_type.startswith("application/json"), (reply.status, reply.headers, reply.body)

    # Envoy's view: transcoded to the right gRPC method, sent to the intended service process.
    entry = envoy_edge.access_entry(reply.request_id)
    assert entry["grpc_path"] == method.grpc_path, entry
    assert entry["cluster"] == endpoint.service, entry
    assert entry["upstream"] == f"127.0.0.1:{envoy_edge.service_ports[endpoint.service]}", entry
    assert entry["details"] == "via_upstream", entry

    # The service's answer.
    data = reply.json()
    assert reply.status == ANSWERS[str(endpoint)], data
    assert isinstance(data, dict) and data, data
    if reply.status != 200:  # the service's own error, e.g. NOT_FOUND for the sample id
        (info,) = [d for d in data["details"] if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"]
        assert info["domain"] == endpoint.service.replace("_", "-") + ".tronpay.example", data


def test_upstreams_pass_grpc_health_checks(envoy_edge: Edge) -> None:
    """Envoy's active grpc.health.v1 checks (one service name per cluster) see all six SERVING."""
    assert envoy_edge.cluster_health() == {name: True for name in render.SERVICES}
    for name in render.SERVICES:
        assert envoy_edge.stat(f"cluster.{name}.health_check.success") > 0
        assert envoy_edge.stat(f"cluster.{name}.health_check.failure") == 0


def test_service_field_violations_come_back_as_json(envoy_edge: Edge) -> None:
    reply = call(envoy_edge.rest_url, "GET", "/api/v1/usdt/balance/not-an-address", headers=envoy_edge.auth())
    assert reply.status == 400, reply.body
    data = reply.json()
    assert data["code"] == 3
    types = {d["@type"] for d in data["details"]}
    assert "type.googleapis.com/google.rpc.BadRequest" in types, data
    (bad,) = [d for d in data["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    assert any(v["field"] == "address" for v in bad["fieldViolations"]), bad
    assert envoy_edge.access_entry(reply.request_id)["details"] == "via_upstream"


def test_native_grpc_through_the_edge(envoy_edge: Edge) -> None:
    from tronpay.payment_gateway.v1 import payment_gateway_pb2, payment_gateway_pb2_grpc
    from tronpay.payout_router.v1 import payout_router_pb2, payout_router_pb2_grpc
    from tronpay.tron_client.v1 import tron_client_pb2, tron_client_pb2_grpc

    auth = envoy_edge.grpc_auth()
    with grpc.insecure_channel(envoy_edge.grpc_target) as channel:
        tron = tron_client_pb2_grpc.TronClientServiceStub(channel)
        height, call_ = tron.GetNetworkHeight.with_call(
            tron_client_pb2.GetNetworkHeightRequest(), metadata=auth, timeout=20
        )
        assert height.ByteSize() > 0
        assert dict(call_.initial_metadata()).get("server") == "tronpay-edge"

        payouts = payout_router_pb2_grpc.PayoutRouterServiceStub(channel)
        with pytest.raises(grpc.RpcError) as missing:  # the service's own answer
            payouts.GetPayout(payout_router_pb2.GetPayoutRequest(payout_id="p1"), metadata=auth, timeout=20)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND

        payments = payment_gateway_pb2_grpc.PaymentGatewayServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            payments.GetPayment(
                payment_gateway_pb2.GetPaymentRequest(payment_id="p1"), metadata=auth, timeout=20
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_internal_rpcs_are_not_exposed_at_the_edge(envoy_edge: Edge) -> None:
    from tronpay.wallet_manager.v1 import wallet_manager_pb2

    internal = "/tronpay.wallet_manager.v1.WalletManagerService/SignTransaction"
    request = wallet_manager_pb2.SignTransactionRequest().SerializeToString()
    with grpc.insecure_channel(envoy_edge.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as err:
            channel.unary_unary(internal)(request, metadata=envoy_edge.grpc_auth(), timeout=10)
        # Even an admin: the edge has no route to it, so to its clients it does not exist.
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert err.value.details() == "no such public gRPC method"  # Envoy's answer, not the service's
    # The same RPC is served on the service's own port (reached by the other services directly).
    with grpc.insecure_channel(f"127.0.0.1:{envoy_edge.service_ports['wallet_manager']}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            channel.unary_unary(internal)(request, timeout=10)
        assert err.value.details() != ""
