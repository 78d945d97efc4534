"""Authentication, identity metadata, rate limits and what the access log keeps, at the real Envoy edge.

The six clusters point at one recording upstream (tests/edge/recorder.py) that answers every RPC and keeps
the method and metadata of what arrived, so "no upstream call" is exact: a rejected request's
``x-request-id`` (the id Envoy returns) never shows up there, and Envoy's access log says who answered.
The roles x RPCs matrix against the real services: tests/edge/test_roles.py.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.common import access
from tests.edge.endpoints import DOCUMENTED, Endpoint
from tests.edge.http import Reply, call
from tests.edge.recorder import Recorder, recording_upstream
from tests.edge.test_routing import SAMPLES
from tests.harness.envoy import DEV_KEY, SERVICE_KEYS, Edge, EdgeFactory, devtoken, mint, render, start_edge

OPEN = "GET /api/v1/tron/network/status"


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    with recording_upstream() as rec:
        yield rec


@pytest.fixture(scope="module")
def edge(
    recorder: Recorder, tmp_path_factory: pytest.TempPathFactory, envoy_descriptor: Path
) -> Iterator[Edge]:
    """An edge whose six services are the recorder."""
    ports = {key: recorder.port for key in SERVICE_KEYS}
    with start_edge(ports, tmp_path_factory.mktemp("auth-edge"), descriptor=envoy_descriptor) as e:
        yield e


@pytest.fixture(scope="module")
def methods(envoy_descriptor: Path) -> dict[str, Any]:
    """'VERB /template' -> the public RPC bound to it."""
    return {f"{m.http_verb.upper()} {m.http_path}": m for m in render.load_public_methods(envoy_descriptor)}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": render.DEFAULT_JWT_ISSUER,
        "aud": render.DEFAULT_JWT_AUDIENCE,
        "sub": "bad-token-7f3a",
        "roles": ["admin"],
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return claims


#: Each kind of bad credential -> the Authorization header it sends (None: no header at all).
BAD_TOKENS: dict[str, Callable[[], str | None]] = {
    "missing": lambda: None,
    "expired": lambda: (
        "Bearer " + DEV_KEY.sign(_claims(iat=int(time.time()) - 3600, exp=int(time.time()) - 300))
    ),
    "wrong audience": lambda: "Bearer " + DEV_KEY.sign(_claims(aud="another-api")),
    "wrong issuer": lambda: "Bearer " + DEV_KEY.sign(_claims(iss="https://evil.example")),
    # Same key id as the trusted key, different key: the signature does not verify.
    "wrong key": lambda: "Bearer " + devtoken.DevKey.generate().sign(_claims(), kid=DEV_KEY.kid),
    "alg none": lambda: "Bearer " + _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims()) + ".",
    "malformed": lambda: "Bearer not-a-jwt",
    "no expiry": lambda: "Bearer " + DEV_KEY.sign({k: v for k, v in _claims().items() if k != "exp"}),
    "not the bearer scheme": lambda: "Basic " + base64.b64encode(b"admin:admin").decode(),
}


def _headers(kind: str) -> dict[str, str]:
    value = BAD_TOKENS[kind]()
    return {} if value is None else {"authorization": value}


def _rest(edge: Edge, endpoint: Endpoint, headers: dict[str, str], query: str = "") -> Reply:
    path, body = SAMPLES[str(endpoint)]
    if query:
        path += ("&" if "?" in path else "?") + query
    return call(edge.rest_url, endpoint.verb, path, body=body, headers=headers)


def _grpc(edge: Edge, grpc_path: str, metadata: tuple[tuple[str, str], ...]) -> tuple[grpc.StatusCode, str]:
    """Call a method with an empty request; return (status code, x-request-id)."""
    with grpc.insecure_channel(edge.grpc_target) as channel:
        try:
            _, rpc = channel.unary_unary(grpc_path).with_call(b"", metadata=metadata, timeout=10)
            return grpc.StatusCode.OK, dict(rpc.initial_metadata())["x-request-id"]
        except grpc.RpcError as err:
            meta = dict(err.initial_metadata() or ()) | dict(err.trailing_metadata() or ())
            return err.code(), str(meta.get("x-request-id", ""))


def _assert_401(edge: Edge, recorder: Recorder, reply: Reply, where: str) -> None:
    assert reply.status == 401, (where, reply.status, reply.body)
    assert reply.content_type.startswith("application/json"), (where, reply.headers)
    body = reply.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == 16, (where, body)
    assert reply.headers.get("www-authenticate", "").startswith("Bearer"), (where, reply.headers)
    entry = edge.access_entry(reply.request_id)
    assert entry["details"].startswith("jwt_authn_access_denied"), (where, entry)
    assert entry["upstream"] is None and not recorder.with_request_id(reply.request_id), where


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_every_documented_path_needs_a_valid_token(
    edge: Edge, recorder: Recorder, methods: dict[str, Any], kind: str
) -> None:
    denied_before = edge.stat("http.edge.jwt_authn.denied")
    rejected = 0
    for endpoint in DOCUMENTED:
        reply = _rest(edge, endpoint, _headers(kind))
        if str(endpoint) == OPEN and kind in ("missing", "not the bearer scheme"):
            # The open path: no token is fine (health checks); a token that is sent must be valid.
            assert reply.status == 200, reply.body
            assert len(recorder.with_request_id(reply.request_id)) == 1
            continue
        _assert_401(edge, recorder, reply, f"{kind}: REST {endpoint}")
        rejected += 1
        # Native gRPC: always a token, also for the open path's RPC.
    for endpoint in DOCUMENTED:
        method = methods[str(endpoint)]
        auth = _headers(kind)
        code, request_id = _grpc(edge, method.grpc_path, tuple(auth.items()))
        assert code == grpc.StatusCode.UNAUTHENTICATED, (kind, method.grpc_path, code)
        assert request_id and not recorder.with_request_id(request_id), (kind, method.grpc_path)
        rejected += 1
    time.sleep(0.2)  # stats are flushed by the workers
    assert edge.stat("http.edge.jwt_authn.denied") - denied_before == rejected


def test_tokens_in_the_query_string_are_not_accepted(edge: Edge, recorder: Recorder) -> None:
    token = mint()
    reply = call(edge.rest_url, "GET", f"/api/v1/tron/network/height?access_token={token}")
    _assert_401(edge, recorder, reply, "?access_token=")


def test_the_open_path_is_exactly_get_status(edge: Edge, recorder: Recorder) -> None:
    assert call(edge.rest_url, "GET", "/api/v1/tron/network/status").status == 200
    # Case, method, trailing segments and near misses all need a token (jwt_authn rules are case-sensitive:
    # the token is required on "/" and only this exact path and method is carved out).
    for method, path in [
        ("GET", "/API/v1/tron/network/status"),
        ("GET", "/api/v1/tron/network/Status"),
        ("GET", "/api/v1/tron/network/status/"),
        ("GET", "/api/v1/tron/network/statusx"),
        ("GET", "/api/v1/tron/network/height"),
        ("POST", "/api/v1/tron/network/status"),
        ("HEAD", "/api/v1/tron/network/status"),
    ]:
        reply = call(edge.rest_url, method, path)
        assert reply.status == 401, (method, path, reply.status, reply.body)
        assert not recorder.with_request_id(reply.request_id)


def test_a_native_grpc_call_cannot_pose_as_the_open_path(edge: Edge, recorder: Recorder) -> None:
    """Without roles, only the REST GET of the open path passes RBAC: a gRPC client sending the header the
    transcoder sets for it (x-envoy-original-path) is still denied (client copies are dropped first)."""
    status_rpc = "/tronpay.tron_client.v1.TronClientService/GetNetworkStatus"
    no_roles = mint("viewer", roles=[])
    reply = call(
        edge.rest_url, "GET", "/api/v1/tron/network/status", headers={"authorization": f"Bearer {no_roles}"}
    )
    assert reply.status == 200, reply.body
    forged = (
        ("authorization", f"Bearer {no_roles}"),
        ("x-envoy-original-path", "/api/v1/tron/network/status"),
    )
    code, request_id = _grpc(edge, status_rpc, forged)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert not recorder.with_request_id(request_id)
    viewer = (("authorization", "Bearer " + mint("viewer")),)
    assert _grpc(edge, status_rpc, viewer)[0] == grpc.StatusCode.OK


def _arrived(recorder: Recorder, request_id: str) -> dict[str, str]:
    (arrived,) = recorder.with_request_id(request_id)
    return arrived.metadata


FORGED = {
    "x-tronpay-subject": "forged-7f3a",
    "x-tronpay-roles": "admin",
    "x-tronpay-tenant": "forged-tenant",
    "x-tronpay-caller": "wallet-manager",
    "x-jwt-payload": "eyJzdWIiOiJmb3JnZWQifQ",
}


@pytest.mark.parametrize(
    ("roles_claim", "header"),
    [
        (["operator", "approver"], "operator,approver"),  # a JSON array claim
        ("operator approver", "operator,approver"),  # a space-delimited string claim
        (["viewer", "superuser", "admin,operator", 7], "viewer"),  # unknown names and non-strings are dropped
    ],
    ids=["array", "space-delimited", "unknown-dropped"],
)
def test_verified_claims_become_the_identity_metadata(
    edge: Edge, recorder: Recorder, roles_claim: Any, header: str
) -> None:
    token = mint(subject="alice", tenant="m1", roles=roles_claim)
    reply = call(
        edge.rest_url,
        "GET",
        "/api/v1/wallets",
        headers={**FORGED, "authorization": f"Bearer {token}"},
    )
    assert reply.status == 200, reply.body
    metadata = _arrived(recorder, reply.request_id)
    assert metadata[access.SUBJECT_KEY] == "alice"
    assert metadata[access.ROLES_KEY] == header
    assert metadata[access.TENANT_KEY] == "m1"
    assert "x-tronpay-caller" not in metadata and "x-jwt-payload" not in metadata
    assert "authorization" not in metadata  # the token itself never reaches a service
    assert access.parse_roles(metadata[access.ROLES_KEY]) == {access.Role(r) for r in header.split(",")}


def test_grpc_identity_metadata_and_no_forgery(edge: Edge, recorder: Recorder) -> None:
    token = mint("compliance", subject="bob")  # no tenant claim: no tenant key
    code, request_id = _grpc(
        edge,
        "/tronpay.payment_gateway.v1.PaymentGatewayService/GetReconciliation",
        (*FORGED.items(), ("authorization", f"Bearer {token}")),
    )
    assert code == grpc.StatusCode.OK
    metadata = _arrived(recorder, request_id)
    assert (metadata[access.SUBJECT_KEY], metadata[access.ROLES_KEY]) == ("bob", "compliance")
    assert not {access.TENANT_KEY, "x-tronpay-caller", "x-jwt-payload", "authorization"} & set(metadata)


def test_no_token_on_the_open_path_means_no_identity(edge: Edge, recorder: Recorder) -> None:
    reply = call(edge.rest_url, "GET", "/api/v1/tron/network/status", headers=FORGED)
    assert reply.status == 200
    assert not set(access.IDENTITY_KEYS) & set(_arrived(recorder, reply.request_id))


@pytest.mark.parametrize("endpoint", [e for e in DOCUMENTED if e.verb in ("POST", "PUT")], ids=str)
def test_body_routes_reject_unknown_query_parameters(edge: Edge, endpoint: Endpoint) -> None:
    reply = _rest(edge, endpoint, edge.auth(), query="foo=1")
    assert reply.status == 400, reply.body
    body = reply.json()
    # Whole-body routes take no query string at all (test_strict_json.py); the webhook's unknown ones are
    # the transcoder's 400.
    assert body["code"] == 3, body
    assert '"foo"' in body["message"] or "takes no query parameters" in body["message"], body
    assert edge.access_entry(reply.request_id)["upstream"] is None


def test_a_key_in_the_query_string_is_in_no_envoy_log(edge: Edge) -> None:
    secret = "5e" * 31 + "c7"  # the shape of a TRON private key
    for method, path, body in [
        ("GET", f"/api/v1/wallets?private_key={secret}", None),
        ("POST", f"/api/v1/usdt/transfer?private_key={secret}", {"request_id": "r1"}),
        ("POST", f"/api/v1/payouts/initiate?privateKey={secret}&x={secret}", {"request_id": "r1"}),
        ("GET", f"/api/v1/tron/network/status?key={secret}", None),  # no token: a 400 before anything
        ("GET", f"/api/v1/nope?private_key={secret}", None),  # no token: 401
    ]:
        headers = edge.auth() if "network/status" not in path and "/nope" not in path else {}
        reply = call(edge.rest_url, method, path, body=body, headers=headers)
        assert reply.status in (400, 401), (path, reply.status, reply.body)
        entry = edge.access_entry(reply.request_id)
        assert entry["path"] == path.split("?")[0], entry
    time.sleep(0.2)
    logs = {"access log": edge.access_log.read_text(), "envoy log": edge.log_path.read_text(errors="replace")}
    for name, text in logs.items():
        assert secret not in text, name


def test_rate_limit_per_route_class(envoy_edge_factory: EdgeFactory, recorder: Recorder) -> None:
    small = {"EDGE_RATE_LIMIT_MONEY_PER_SECOND": "1", "EDGE_RATE_LIMIT_MONEY_BURST": "2"}
    edge = envoy_edge_factory({key: recorder.port for key in SERVICE_KEYS}, extra_env=small)
    auth = edge.auth("operator")
    transfer = {"request_id": "r1", "wallet_id": "w1", "to_address": "T" * 34, "amount": "1"}
    replies = [
        call(edge.rest_url, "POST", "/api/v1/usdt/transfer", body=transfer, headers=auth) for _ in range(5)
    ]
    statuses = [r.status for r in replies]
    # A burst of 2, then 429 (one refill may land within the loop: at most 3 pass).
    assert statuses[:2] == [200, 200] and statuses.count(429) >= 2, statuses
    limited = next(r for r in replies if r.status == 429)
    assert limited.headers.get("retry-after") == "1", limited.headers
    body = limited.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == 8, body
    assert "money" in body["message"], body
    assert not recorder.with_request_id(limited.request_id)
    # Other classes have their own buckets: a payout (money) is limited too, a read and a write are not.
    assert call(edge.rest_url, "GET", "/api/v1/wallets", headers=auth).status == 200
    assert (
        call(
            edge.rest_url,
            "POST",
            "/api/v1/payouts/cancel",
            body={"request_id": "r", "payout_id": "p"},
            headers=auth,
        ).status
        == 200
    )
    payout = "/tronpay.payout_router.v1.PayoutRouterService/InitiatePayout"
    codes = [_grpc(edge, payout, edge.grpc_auth("operator"))[0] for _ in range(3)]
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes, codes  # native gRPC: the gRPC code, not UNAVAILABLE
    time.sleep(0.2)
    assert edge.stat("edge_rate_limit.http_local_rate_limit.rate_limited") >= 3


def test_cached_tokens_still_expire(envoy_edge_factory: EdgeFactory, recorder: Recorder) -> None:
    """A token used before is rejected once past exp + the configured skew (Envoy's jwt cache would allow 60 s
    more whatever the skew, so it stays off)."""
    edge = envoy_edge_factory(
        {key: recorder.port for key in SERVICE_KEYS}, extra_env={"EDGE_JWT_CLOCK_SKEW_SECONDS": "1"}
    )
    token = mint("viewer", ttl_seconds=1)
    headers = {"authorization": f"Bearer {token}"}
    assert call(edge.rest_url, "GET", "/api/v1/wallets", headers=headers).status == 200
    assert call(edge.rest_url, "GET", "/api/v1/wallets", headers=headers).status == 200  # a reused token
    time.sleep(3.2)  # whole seconds: exp = floor(mint) + 1, rejected once floor(now) > exp + skew
    reply = call(edge.rest_url, "GET", "/api/v1/wallets", headers=headers)
    assert reply.status == 401 and reply.json()["message"] == "Jwt is expired", reply.body
