"""gRPC discovery through the edge, checked with grpcurl (an independent client, built by `make grpcurl`):
`list` and `describe` show every public RPC of the six services and nothing internal, an unknown method
answers UNIMPLEMENTED at once, and both need a token like everything else."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

import grpc
import pytest

from services.common import access
from tests.harness.envoy import Edge

REPO = Path(__file__).resolve().parents[2]


@cache
def grpcurl() -> str:
    """The pinned grpcurl (tools/grpcurl.sh builds it once into the cache outside the repo)."""
    out = subprocess.run([REPO / "tools/grpcurl.sh"], capture_output=True, text=True, check=True, timeout=600)
    return out.stdout.strip()


def run(edge: Edge, *args: str, role: str | None = "admin") -> subprocess.CompletedProcess[str]:
    """grpcurl against the edge with a token for `role` (None: no token)."""
    auth = ["-H", f"authorization: Bearer {edge.token(role)}"] if role else []
    return subprocess.run(
        [grpcurl(), "-plaintext", "-max-time", "10", *auth, edge.grpc_target, *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def public_services() -> set[str]:
    return {rpc.partition("/")[0] for rpc in access.PUBLIC}


def test_list_shows_the_public_services_only(envoy_edge: Edge) -> None:
    listed = run(envoy_edge, "list", role="viewer")
    assert listed.returncode == 0, listed.stderr
    names = set(listed.stdout.split())
    assert names == public_services() | {"grpc.reflection.v1alpha.ServerReflection"}


@pytest.mark.parametrize("service", sorted({rpc.partition("/")[0] for rpc in access.PUBLIC}))
def test_describe_shows_exactly_the_public_methods(envoy_edge: Edge, service: str) -> None:
    listed = run(envoy_edge, "list", service)
    assert listed.returncode == 0, listed.stderr
    methods = {line.rpartition(".")[2] for line in listed.stdout.split()}
    assert methods == {rpc.partition("/")[2] for rpc in access.PUBLIC if rpc.startswith(service + "/")}
    described = run(envoy_edge, "describe", service)
    assert described.returncode == 0 and f"service {service.rpartition('.')[2]} {{" in described.stdout


def test_internal_rpcs_stay_hidden(envoy_edge: Edge) -> None:
    internal = [rpc for rpc in access.INTERNAL if rpc not in access.PUBLIC]
    assert internal  # e.g. TrxStakingService/RequestEnergy, WalletManagerService/SignTransaction
    for rpc in internal:
        symbol = rpc.replace("/", ".")
        described = run(envoy_edge, "describe", symbol)
        assert described.returncode != 0 and "not found" in described.stderr.lower(), (rpc, described)
    # The request messages of public RPCs are still there to describe.
    message = run(envoy_edge, "describe", "tronpay.usdt_manager.v1.CreateTransferRequest")
    assert message.returncode == 0, message.stderr


def test_unknown_methods_fail_fast_with_unimplemented(envoy_edge: Edge) -> None:
    with grpc.insecure_channel(envoy_edge.grpc_target) as channel:
        for path in (
            "/tronpay.nosuch.v1.Nothing/Get",
            "/tronpay.trx_staking.v1.TrxStakingService/RequestEnergy",
        ):
            call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as err:  # a hang would end DEADLINE_EXCEEDED instead
                call(b"", metadata=envoy_edge.grpc_auth("viewer"), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED, (path, err.value)


def test_discovery_needs_a_token(envoy_edge: Edge) -> None:
    listed = run(envoy_edge, "list", role=None)
    assert listed.returncode != 0 and "Unauthenticated" in listed.stderr, listed
    with grpc.insecure_channel(envoy_edge.grpc_target) as channel:
        call = channel.unary_unary(
            "/tronpay.nosuch.v1.Nothing/Get", request_serializer=None, response_deserializer=None
        )
        with pytest.raises(grpc.RpcError) as err:
            call(b"", timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
