"""The rendered edge config: contract coverage, routes, admin binding, and `envoy --mode validate`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from services.common import access
from tests.edge.endpoints import DOCUMENTED
from tests.harness.envoy import DEV_KEY, REPO_ROOT, envoy_binary, render
from tests.harness.pki import pki_dir


@pytest.fixture(scope="module")
def config(envoy_descriptor: Path) -> dict[str, Any]:
    cfg: dict[str, Any] = render.render({"ENVOY_DESCRIPTOR": str(envoy_descriptor)})
    return cfg


def _hcm(config: dict[str, Any]) -> dict[str, Any]:
    (listener,) = config["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    (hcm,) = chain["filters"]
    return hcm["typed_config"]


def _transcoder(config: dict[str, Any]) -> dict[str, Any]:
    (transcoder,) = [
        f["typed_config"]
        for f in _hcm(config)["http_filters"]
        if f["name"] == "envoy.filters.http.grpc_json_transcoder"
    ]
    return transcoder


def test_every_documented_endpoint_has_exactly_its_binding(envoy_descriptor: Path) -> None:
    methods = render.load_public_methods(envoy_descriptor)
    by_binding = {(m.http_verb.upper(), m.http_path): m for m in methods}
    missing = [str(e) for e in DOCUMENTED if (e.verb, e.template) not in by_binding]
    assert not missing, f"documented endpoints without a google.api.http binding: {missing}"
    for e in DOCUMENTED:
        method = by_binding[(e.verb, e.template)]
        assert method.cluster == e.service, f"{e} is bound to {method.grpc_path}"


def test_routes_are_exact_public_methods_only(config: dict[str, Any], envoy_descriptor: Path) -> None:
    (vhost,) = _hcm(config)["route_config"]["virtual_hosts"]
    forwarded = [r for r in vhost["routes"] if "route" in r]
    answered = [r for r in vhost["routes"] if "route" not in r]  # by Envoy itself: docs, unknown methods
    assert all("direct_response" in r for r in answered)
    public = {m.grpc_path: m for m in render.load_public_methods(envoy_descriptor)}
    assert {r["match"]["path"] for r in forwarded} == {*public, render.REFLECTION_PATH}
    for r in forwarded:
        assert "prefix" not in r["match"], "no prefix routes: internal RPCs must stay unreachable"
        if r["match"]["path"] == render.REFLECTION_PATH:
            assert r["route"]["cluster"] == render.REFLECTION_CLUSTER
            continue
        method = public[r["match"]["path"]]
        assert set(r["match"]) == {"path"}
        assert r["route"]["cluster"] == method.cluster
        retry_on = set(r["route"]["retry_policy"]["retry_on"].split(","))
        if method.read_only:
            assert "unavailable" in retry_on
        else:
            assert retry_on == {"connect-failure", "refused-stream"}, f"{method.grpc_path} retries {retry_on}"


def test_transcoder_serves_all_six_services_strictly(config: dict[str, Any]) -> None:
    transcoder = _transcoder(config)
    packages = {s.split(".")[1] for s in transcoder["services"]}
    assert packages == set(render.SERVICES)
    assert transcoder["convert_grpc_status"] is True
    assert transcoder["auto_mapping"] is False
    assert transcoder["match_incoming_request_route"] is False
    assert transcoder["request_validation_options"]["reject_unknown_method"] is True
    assert transcoder["request_validation_options"]["reject_unknown_query_parameters"] is True


def test_admin_is_loopback_only(config: dict[str, Any]) -> None:
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


def test_clusters_are_http2_and_health_checked(config: dict[str, Any]) -> None:
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    assert set(clusters) == set(render.SERVICES)
    for name, c in clusters.items():
        opts = c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert "http2_protocol_options" in opts["explicit_http_config"]
        (hc,) = c["health_checks"]
        assert hc["grpc_health_check"]["service_name"].startswith(f"tronpay.{name}.v1.")
        assert c["circuit_breakers"]["thresholds"]


def test_environment_sets_ports_and_hosts(envoy_descriptor: Path) -> None:
    cfg = render.render(
        {"ENVOY_DESCRIPTOR": str(envoy_descriptor), "EDGE_PORT": "18080", "WALLET_MANAGER_HOST": "wallet.svc"}
    )
    assert cfg["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] == 18080
    wallet = next(c for c in cfg["static_resources"]["clusters"] if c["name"] == "wallet_manager")
    assert wallet["type"] == "STRICT_DNS"
    endpoint = wallet["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "wallet.svc", "port_value": 8087}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EDGE_PORT", "70000"),
        ("ADMIN_PORT", "x"),
        ("EDGE_ROUTE_TIMEOUT", "soon"),
        ("EDGE_RATE_LIMIT_MONEY_BURST", "0"),
        ("EDGE_RATE_LIMIT_READ_PER_SECOND", "fast"),
        ("EDGE_JWT_AUDIENCES", " , "),
        ("EDGE_JWKS_URI", "ftp://idp.example/jwks.json"),
        ("EDGE_JWT_CLOCK_SKEW_SECONDS", "9999"),
    ],
)
def test_bad_environment_is_rejected(envoy_descriptor: Path, name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        render.render({"ENVOY_DESCRIPTOR": str(envoy_descriptor), name: value})


def test_envoy_validates_the_rendered_config(tmp_path: Path, envoy_descriptor: Path) -> None:
    jwks = tmp_path / "jwks.json"  # Envoy reads the JWKS while validating
    jwks.write_text(json.dumps(DEV_KEY.jwks()))
    edge = pki_dir() / "edge"  # Envoy reads the certificates too; with them, TLS for clients as well
    env = {
        "ENVOY_DESCRIPTOR": str(envoy_descriptor),
        "EDGE_JWKS_FILE": str(jwks),
        "TLS_DIR": str(pki_dir()),
        "EDGE_TLS_CERT_FILE": str(edge / "tls.crt"),
        "EDGE_TLS_KEY_FILE": str(edge / "tls.key"),
    }
    path = render.write(env, tmp_path / "envoy.json")
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_upstreams_are_mutual_tls_to_the_named_service(config: dict[str, Any]) -> None:
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] not in render.SERVICES:
            continue
        peer = cluster["name"].replace("_", "-")
        tls = cluster["transport_socket"]["typed_config"]
        assert tls["sni"] == peer
        context = tls["common_tls_context"]
        (cert,) = context["tls_certificates"]
        assert cert["certificate_chain"]["filename"].endswith("/edge/tls.crt")
        assert context["validation_context"]["match_typed_subject_alt_names"] == [
            {"san_type": "DNS", "matcher": {"exact": peer}}
        ]
        assert context["validation_context"]["trusted_ca"]["filename"].endswith("/edge/ca.crt")


def test_client_tls_only_with_both_files(envoy_descriptor: Path) -> None:
    base = {"ENVOY_DESCRIPTOR": str(envoy_descriptor)}
    (chain,) = render.render(base)["static_resources"]["listeners"][0]["filter_chains"]
    assert "transport_socket" not in chain
    with pytest.raises(ValueError, match="EDGE_TLS_CERT_FILE and EDGE_TLS_KEY_FILE go together"):
        render.render({**base, "EDGE_TLS_CERT_FILE": "/x/tls.crt"})


def test_make_envoy_validate(tmp_path: Path, envoy_descriptor: Path) -> None:
    """The CI step (`CHECK_STEPS += envoy-validate`) passes."""
    env = {**os.environ, "ENVOY_DESCRIPTOR": str(envoy_descriptor)}
    result = subprocess.run(
        ["make", "-s", "envoy-validate", f"ENVOY_CONFIG={tmp_path / 'envoy.json'}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"configuration '{tmp_path / 'envoy.json'}' OK" in result.stdout


def test_served_descriptor_knows_the_error_detail_types(tmp_path: Path, envoy_descriptor: Path) -> None:
    """convert_grpc_status renders ErrorInfo/BadRequest only if their types are in the descriptor set."""
    from google.protobuf import descriptor_pb2

    config = render.render({"ENVOY_DESCRIPTOR": str(envoy_descriptor)}, descriptor_out=tmp_path / "d.pb")
    served = Path(_transcoder(config)["proto_descriptor"])
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(served.read_bytes())
    seen: set[str] = set()
    for file in fds.file:
        assert set(file.dependency) <= seen, f"{file.name} comes before its imports"
        seen.add(file.name)
    assert {"google/rpc/status.proto", "google/rpc/error_details.proto"} <= seen


def test_descriptor_mount_path_for_other_machines(envoy_descriptor: Path) -> None:
    """Rendering for Kubernetes: routes come from the local descriptor, the config names the mount."""
    cfg = render.render(
        {"ENVOY_DESCRIPTOR": str(envoy_descriptor), "ENVOY_DESCRIPTOR_MOUNT": "/etc/envoy/tronpay.pb"}
    )
    assert _transcoder(cfg)["proto_descriptor"] == "/etc/envoy/tronpay.pb"


# --------------------------------------------------------------------------------------------------
# Identity, authorisation, rate limits (behaviour: test_auth.py, test_roles.py)


def _filter(config: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [f["typed_config"] for f in _hcm(config)["http_filters"] if f["name"] == name]
    return found


def test_filter_order(config: dict[str, Any]) -> None:
    assert [f["name"].removeprefix("envoy.filters.http.") for f in _hcm(config)["http_filters"]] == [
        "header_mutation",  # client copies of the identity metadata go first
        "jwt_authn",
        "lua",  # the roles header from the verified claims
        "buffer",
        "tronpay.strict_json",  # unknown JSON fields and whole-body query strings (test_strict_json.py)
        "grpc_json_transcoder",
        "tronpay.strict_json_guard",  # a REST body the check did not see is refused
        "rbac",  # on the gRPC method the transcoder resolved (REST and native gRPC alike)
        "local_ratelimit",  # per route class, after authorisation
        "router",
    ]
    # A route-level request_headers_to_remove would run after jwt_authn and strip the verified claims too.
    assert "request_headers_to_remove" not in _hcm(config)["route_config"]


def test_identity_headers_are_dropped_before_jwt(config: dict[str, Any]) -> None:
    removed = {
        m["remove"]
        for m in _filter(config, "envoy.filters.http.header_mutation")["mutations"]["request_mutations"]
    }
    assert set(access.IDENTITY_KEYS) <= removed
    assert {"x-envoy-original-path", "x-envoy-original-method"} <= removed


def test_jwt_is_required_everywhere_but_the_open_path(config: dict[str, Any]) -> None:
    jwt = _filter(config, "envoy.filters.http.jwt_authn")
    (provider,) = jwt["providers"].values()
    assert provider["issuer"] == render.DEFAULT_JWT_ISSUER
    assert provider["audiences"] == [render.DEFAULT_JWT_AUDIENCE]
    assert provider["local_jwks"] == {"filename": str(render.DEFAULT_JWKS_FILE)}
    assert {h["name"] for h in provider["from_headers"]} == {"authorization"}  # never ?access_token=
    assert "jwt_cache_config" not in provider  # its expiry check ignores clock_skew_seconds
    assert "from_params" not in provider and provider["forward"] is False and provider["require_expiration"]
    claims = {c["claim_name"]: c["header_name"] for c in provider["claim_to_headers"]}
    assert claims == {"sub": access.SUBJECT_KEY, "tenant": access.TENANT_KEY}
    assert provider["normalize_payload_in_metadata"] == {"space_delimited_claims": ["roles"]}
    get = [{"name": ":method", "string_match": {"exact": "GET"}}]
    open_rule, *docs, everything = jwt["rules"]
    assert open_rule["match"] == {"path": "/api/v1/tron/network/status", "headers": get}
    assert {"allow_missing": {}} in open_rule["requires"]["requires_any"]["requirements"]
    # The documentation's exact GET paths: no requirement at all (no token needed, none checked).
    assert docs == [{"match": {"path": path, "headers": get}} for path in render.docs_paths({})]
    assert {render.OPENAPI_PATH, render.DOCS_PATH} <= set(render.docs_paths({}))
    assert everything == {"match": {"prefix": "/"}, "requires": {"provider_name": render.JWT_PROVIDER}}


def test_rbac_is_generated_from_the_matrix(config: dict[str, Any], envoy_descriptor: Path) -> None:
    rules = _filter(config, "envoy.filters.http.rbac")["rules"]
    assert rules["action"] == "ALLOW"  # default deny
    policies = dict(rules["policies"])
    open_policy = policies.pop("open: GET /api/v1/tron/network/status")
    assert open_policy["principals"] == [{"any": True}]
    assert set(policies) == set(access.PUBLIC)
    grpc_paths = {m.rpc: m.grpc_path for m in render.load_public_methods(envoy_descriptor)}
    for rpc, policy in policies.items():
        assert policy["permissions"] == [{"url_path": {"path": {"exact": grpc_paths[rpc]}}}]
        roles = set()
        for principal in policy["principals"]:
            matcher = principal["sourced_metadata"]["metadata_matcher"]
            assert matcher["path"] == [{"key": "jwt_payload"}, {"key": "roles"}]
            roles.add(matcher["value"]["list_match"]["one_of"]["string_match"]["exact"])
        assert roles == {r.value for r in access.PUBLIC[rpc]}, rpc


def test_routes_carry_their_matrix_entry(config: dict[str, Any]) -> None:
    (vhost,) = _hcm(config)["route_config"]["virtual_hosts"]
    for route in vhost["routes"]:
        meta = route["metadata"]["filter_metadata"][render.ROUTE_METADATA]
        if "rpc" not in meta:  # documentation, reflection, unknown methods: no RPC of the matrix
            assert meta == {"class": access.RouteClass.READ.value}, route["name"]
            continue
        assert route["match"]["path"] == "/" + meta["rpc"]
        assert meta["class"] == access.route_class(meta["rpc"]).value
        assert meta["roles"] == ", ".join(sorted(access.PUBLIC[meta["rpc"]]))


def test_the_roles_header_knows_every_role(config: dict[str, Any]) -> None:
    code = _filter(config, "envoy.filters.http.lua")["default_source_code"]["inline_string"]
    assert all(f'["{r.value}"] = true' in code for r in access.Role)
    assert access.ROLES_KEY in code


def test_rate_limits_come_from_the_environment(envoy_descriptor: Path) -> None:
    env = {
        "ENVOY_DESCRIPTOR": str(envoy_descriptor),
        "EDGE_RATE_LIMIT_MONEY_PER_SECOND": "3",
        "EDGE_RATE_LIMIT_MONEY_BURST": "7",
    }
    limit = _filter(render.render(env), "envoy.filters.http.local_ratelimit")
    buckets = {d["entries"][0]["value"]: d["token_bucket"] for d in limit["descriptors"]}
    assert set(buckets) == {c.value for c in access.RouteClass}
    assert buckets["money"] == {"max_tokens": 7, "tokens_per_fill": 3, "fill_interval": "1s"}
    assert buckets["read"]["max_tokens"] == render.RATE_LIMITS[access.RouteClass.READ][1]
    assert limit["local_rate_limit_per_downstream_connection"] is False  # one bucket per Envoy instance
    assert {
        "header": {"key": "retry-after", "value": "1"},
        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
    } in limit["response_headers_to_add"]


def test_access_log_keeps_no_query_string(config: dict[str, Any]) -> None:
    (log,) = _hcm(config)["access_log"]
    fields = log["typed_config"]["log_format"]["json_format"]
    paths = [v for v in fields.values() if "PATH" in v]
    assert paths and all(v.startswith("%REQ_WITHOUT_QUERY(") for v in paths), paths


def test_devtoken_defaults_are_the_renderers() -> None:
    from tests.harness.envoy import devtoken

    assert (devtoken.DEFAULT_ISSUER, devtoken.DEFAULT_AUDIENCE) == (
        render.DEFAULT_JWT_ISSUER,
        render.DEFAULT_JWT_AUDIENCE,
    )
    assert devtoken.DEFAULT_DIR / devtoken.JWKS_FILE == render.DEFAULT_JWKS_FILE


def test_remote_jwks_for_production(tmp_path: Path, envoy_descriptor: Path) -> None:
    env = {
        "ENVOY_DESCRIPTOR": str(envoy_descriptor),
        "EDGE_JWT_ISSUER": "https://idp.example.com/",
        "EDGE_JWT_AUDIENCES": "tronpay-api, tronpay-grpc",
        "EDGE_JWKS_URI": "https://idp.example.com/.well-known/jwks.json",
        "EDGE_JWKS_CACHE_DURATION": "300s",
    }
    cfg = render.render(env)
    (provider,) = _filter(cfg, "envoy.filters.http.jwt_authn")["providers"].values()
    assert provider["issuer"] == "https://idp.example.com/"
    assert provider["audiences"] == ["tronpay-api", "tronpay-grpc"]
    remote = provider["remote_jwks"]
    assert remote["http_uri"] == {"uri": env["EDGE_JWKS_URI"], "cluster": "jwks", "timeout": "5s"}
    assert remote["cache_duration"] == "300.000s" and "local_jwks" not in provider
    jwks = next(c for c in cfg["static_resources"]["clusters"] if c["name"] == "jwks")
    address = jwks["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address["socket_address"] == {"address": "idp.example.com", "port_value": 443}
    assert jwks["transport_socket"]["typed_config"]["sni"] == "idp.example.com"
    with pytest.raises(ValueError, match="exclusive"):
        render.render({**env, "EDGE_JWKS_FILE": "/etc/envoy/jwks.json"})
    if not Path(render.DEFAULT_CA_FILE).exists():
        pytest.skip(f"no CA bundle at {render.DEFAULT_CA_FILE} to validate with")
    path = render.write(env, tmp_path / "envoy.json")
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
