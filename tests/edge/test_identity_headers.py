"""Identity metadata (end-user subject, roles, tenant, calling service) is the cluster's own: the edge drops
a client's copy, so no REST or gRPC client can pose as an operator or as another service; what reaches a
service is the verified token's claims (tests/edge/test_auth.py checks all three keys on a recording
upstream; here the real wallet-manager logs the subject, in the line it writes for a failed call: a read of a
wallet that does not exist, NOT_FOUND)."""

from __future__ import annotations

import time

import grpc
import pytest
from tronpay.wallet_manager.v1 import wallet_manager_pb2, wallet_manager_pb2_grpc

from tests.edge.http import call
from tests.harness.envoy import Edge
from tests.harness.services import Cluster

FORGED = {
    "x-tronpay-subject": "forged-operator-7f3a",
    "x-tronpay-caller": "forged-service-7f3a",
    "x-tronpay-roles": "admin",
    "x-tronpay-tenant": "forged-tenant-7f3a",
    "x-jwt-payload": "eyJzdWIiOiJmb3JnZWQtcGF5bG9hZC03ZjNhIn0",
}
SUBJECT = "verified-subject-7f3a"
MISSING = "wal_does_not_exist_7f3a"  # services log a line for each failed call (successful reads at DEBUG)


def _log_lines_with(cluster: Cluster, marker: str) -> list[str]:
    """wallet-manager's log lines naming `marker`, waiting a little: an error's line is written after the
    answer has gone out."""
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in cluster["wallet_manager"].log().splitlines() if marker in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_rest_client_cannot_set_identity(envoy_edge: Edge, cluster: Cluster) -> None:
    headers = {**FORGED, **envoy_edge.auth("viewer", subject=SUBJECT)}
    reply = call(envoy_edge.rest_url, "GET", f"/api/v1/wallets/{MISSING}", headers=headers)
    assert reply.status == 404, reply.body
    (line,) = _log_lines_with(cluster, reply.request_id)  # the service's own line for this request
    assert all(value not in line for value in FORGED.values()), line
    assert SUBJECT in line, line  # the token's subject is the identity the service sees


def test_grpc_client_cannot_set_identity(envoy_edge: Edge, cluster: Cluster) -> None:
    with grpc.insecure_channel(envoy_edge.grpc_target) as channel:
        stub = wallet_manager_pb2_grpc.WalletManagerServiceStub(channel)
        metadata = (*FORGED.items(), *envoy_edge.grpc_auth("viewer", subject=SUBJECT))
        with pytest.raises(grpc.RpcError) as err:
            stub.GetWallet(
                wallet_manager_pb2.GetWalletRequest(wallet_id=MISSING), metadata=metadata, timeout=20
            )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # An error answer is trailers-only: Envoy's x-request-id comes with the trailers.
    request_id = dict([*err.value.initial_metadata(), *err.value.trailing_metadata()])["x-request-id"]
    (line,) = _log_lines_with(cluster, request_id)
    assert all(value not in line for value in FORGED.values()), line
    assert SUBJECT in line, line


def test_direct_call_keeps_identity(cluster: Cluster) -> None:
    """Control: the same metadata sent straight to the service by a peer with a mesh certificate (as the edge
    and internal callers do) is honoured for the end user, so the edge tests above would see it if the edge
    let it through; the calling service is the certificate's, whatever the metadata claims."""
    proc = cluster["wallet_manager"]
    marker = "direct-call-7f3a"
    with proc.channel(subject="") as channel, pytest.raises(grpc.RpcError):
        wallet_manager_pb2_grpc.WalletManagerServiceStub(channel).GetWallet(
            wallet_manager_pb2.GetWalletRequest(wallet_id=MISSING),
            metadata=(
                ("x-tronpay-subject", FORGED["x-tronpay-subject"]),
                ("x-tronpay-caller", FORGED["x-tronpay-caller"]),
                ("x-request-id", marker),
            ),
            timeout=20,
        )
    (line,) = _log_lines_with(cluster, marker)
    assert FORGED["x-tronpay-subject"] in line and '"caller": "edge"' in line, line
    assert FORGED["x-tronpay-caller"] not in line, line
