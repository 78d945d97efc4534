"""The roles x RPCs matrix (services.common.access.PUBLIC) at the real edge, in front of the real services.

Table-driven from the matrix itself: for every documented endpoint and every role (plus a token without
roles), the REST request and the native gRPC call of its RPC either reach the service or are denied by the
edge's RBAC. "Reached" is read from Envoy's access log (``via_upstream`` to the intended cluster), whatever
the service then answers, never the edge's 401 (the service's own 401 for a webhook without its HMAC
signature is that service's answer).
"Denied" is a 403 (gRPC PERMISSION_DENIED) made by RBAC, in the JSON error shape naming the RPC and its
roles, with no upstream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from services.common import access
from tests.edge.endpoints import DOCUMENTED, SIGNED, Endpoint
from tests.edge.http import call
from tests.edge.test_routing import SAMPLES
from tests.harness.envoy import Edge, mint, render

NO_ROLES = "no-roles"
PRINCIPALS = [*(r.value for r in access.Role), NO_ROLES]
OPEN = "GET /api/v1/tron/network/status"


@pytest.fixture(scope="module")
def bindings(envoy_descriptor: Path) -> dict[str, Any]:
    return {f"{m.http_verb.upper()} {m.http_path}": m for m in render.load_public_methods(envoy_descriptor)}


def _token(principal: str) -> str:
    return mint(subject=f"matrix-{principal}", roles=[] if principal == NO_ROLES else [principal])


def _allowed(rpc: str, principal: str) -> bool:
    return principal != NO_ROLES and access.may_call(rpc, {access.Role(principal)})


def _grpc_request_id(err: grpc.RpcError) -> str:
    meta = dict(err.initial_metadata() or ()) | dict(err.trailing_metadata() or ())
    return str(meta.get("x-request-id", ""))


def test_the_matrix_covers_every_public_rpc(bindings: dict[str, Any]) -> None:
    assert {m.rpc for m in bindings.values()} == set(access.PUBLIC)
    for m in bindings.values():  # reads are exactly the GET bindings
        assert (access.route_class(m.rpc) is access.RouteClass.READ) == m.read_only, m.rpc


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("endpoint", DOCUMENTED, ids=str)
def test_rest_and_grpc_follow_the_matrix(
    envoy_edge: Edge, bindings: dict[str, Any], endpoint: Endpoint, principal: str
) -> None:
    method = bindings[str(endpoint)]
    token = _token(principal)
    path, body = SAMPLES[str(endpoint)]

    reply = call(
        envoy_edge.rest_url, endpoint.verb, path, body=body, headers={"authorization": f"Bearer {token}"}
    )
    entry = envoy_edge.access_entry(reply.request_id)
    expected = _allowed(method.rpc, principal) or (str(endpoint) == OPEN)  # open: any valid token, or none
    if expected:
        assert entry["details"] == "via_upstream" and entry["cluster"] == endpoint.service, (
            reply.body,
            entry,
        )
        assert reply.status not in (401, 429) or str(endpoint) in SIGNED, reply.body
    else:
        assert reply.status == 403, (reply.status, reply.body)
        data = reply.json()
        assert set(data) == {"code", "message", "details"} and data["code"] == 7, data
        roles = ", ".join(sorted(access.PUBLIC[method.rpc]))
        assert data["message"] == f"RBAC: access denied: {method.rpc} needs one of the roles {roles}", data
        assert entry["details"].startswith("rbac_access_denied") and entry["upstream"] is None, entry

    # Native gRPC: the same RPC (an empty request; the service's answer does not matter), the same policy.
    expected = _allowed(method.rpc, principal)  # no exception over gRPC
    with grpc.insecure_channel(envoy_edge.grpc_target) as channel:
        try:
            _, rpc = channel.unary_unary(method.grpc_path).with_call(
                b"", metadata=(("authorization", f"Bearer {token}"),), timeout=20
            )
            code, request_id = grpc.StatusCode.OK, dict(rpc.initial_metadata())["x-request-id"]
            details = ""
        except grpc.RpcError as err:
            code, request_id, details = err.code(), _grpc_request_id(err), err.details() or ""
    entry = envoy_edge.access_entry(request_id)
    if expected:
        assert entry["details"] == "via_upstream" and entry["cluster"] == endpoint.service, (code, entry)
        # (An empty request may stop at the service's validation: any answer will do.)
        assert code != grpc.StatusCode.UNAUTHENTICATED or str(endpoint) in SIGNED, (code, details)
    else:
        assert (code, details) == (grpc.StatusCode.PERMISSION_DENIED, "RBAC: access denied"), (code, details)
        assert entry["details"].startswith("rbac_access_denied") and entry["upstream"] is None, entry
