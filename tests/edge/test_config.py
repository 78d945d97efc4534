"""The rendered edge config: contract coverage, routes, admin binding, and `envoy --mode validate`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.edge.endpoints import DOCUMENTED
from tests.harness.envoy import REPO_ROOT, envoy_binary, render


@pytest.fixture(scope="module")
def config(envoy_descriptor: Path) -> dict[str, Any]:
    cfg: dict[str, Any] = render.render({"ENVOY_DESCRIPTOR": str(envoy_descriptor)})
    return cfg


def _hcm(config: dict[str, Any]) -> dict[str, Any]:
    (listener,) = config["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    (hcm,) = chain["filters"]
    return hcm["typed_config"]  # type: ignore[no-any-return]


def _transcoder(config: dict[str, Any]) -> dict[str, Any]:
    (transcoder,) = [
        f["typed_config"]
        for f in _hcm(config)["http_filters"]
        if f["name"] == "envoy.filters.http.grpc_json_transcoder"
    ]
    return transcoder  # type: ignore[no-any-return]


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
    routes = vhost["routes"]
    public = {m.grpc_path: m for m in render.load_public_methods(envoy_descriptor)}
    assert {r["match"]["path"] for r in routes} == set(public)
    for r in routes:
        method = public[r["match"]["path"]]
        assert set(r["match"]) == {"path"}, "no prefix routes: internal RPCs must stay unreachable"
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
    ("name", "value"), [("EDGE_PORT", "70000"), ("ADMIN_PORT", "x"), ("EDGE_ROUTE_TIMEOUT", "soon")]
)
def test_bad_environment_is_rejected(envoy_descriptor: Path, name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        render.render({"ENVOY_DESCRIPTOR": str(envoy_descriptor), name: value})


def test_envoy_validates_the_rendered_config(tmp_path: Path, envoy_descriptor: Path) -> None:
    path = render.write({"ENVOY_DESCRIPTOR": str(envoy_descriptor)}, tmp_path / "envoy.json")
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


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
