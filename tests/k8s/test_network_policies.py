"""NetworkPolicies isolate the namespace: evaluated on the rendered overlays (tests/k8s/netpol.py) for the
paths the cluster needs and for the paths it must not have."""

from __future__ import annotations

import re
from typing import Any

import pytest

from services.common.settings import ServiceName, Settings
from tests.k8s.conftest import OVERLAYS, REPO_ROOT
from tests.k8s.netpol import External, Pod, Policies

Doc = dict[str, Any]

#: Who calls whom over internal gRPC (DESIGN.md): tron-client is called by all, wallet-manager signs for
#: the four that move funds, usdt-manager moves USDT for payouts and payment refunds and sweeps, and
#: usdt-manager and payment-gateway (sweeps) ask trx-staking's energy broker for energy.
CALLS: dict[str, set[str]] = {
    "tron-client": set(),
    "wallet-manager": {"tron-client"},
    "usdt-manager": {"tron-client", "wallet-manager", "trx-staking"},
    "trx-staking": {"tron-client", "wallet-manager"},
    "payout-router": {"tron-client", "wallet-manager", "usdt-manager"},
    "payment-gateway": {"tron-client", "wallet-manager", "usdt-manager", "trx-staking"},
}
INTERNET = External("203.0.113.10")  # TEST-NET-3: a public address, never contacted
PRIVATE = External("10.1.2.3")
KUBE_DNS = Pod({"k8s-app": "kube-dns"}, namespace="kube-system")
PROMETHEUS = Pod({"app.kubernetes.io/name": "prometheus"}, namespace="monitoring")
OTHER_TENANT = Pod({"app.kubernetes.io/name": "tron-client"}, namespace="another-team")


def port(name: str) -> int:
    return int(Settings.model_fields[f"{ServiceName(name.replace('-', '_')).name}_PORT"].default)


def pods(docs: list[Doc]) -> dict[str, list[Pod]]:
    """app.kubernetes.io/name -> the pod label sets of the workloads carrying it."""
    out: dict[str, list[Pod]] = {}
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            labels = d["spec"]["template"]["metadata"]["labels"]
            out.setdefault(labels["app.kubernetes.io/name"], []).append(Pod(labels))
    return out


def code_calls() -> set[tuple[str, str]]:
    """(caller, callee) pairs found in the services' code: a ServiceName.X other than their own."""
    edges = set()
    for service in ServiceName:
        for path in (REPO_ROOT / "services" / service.value).rglob("*.py"):
            for name in re.findall(r"ServiceName\.([A-Z_]+)", path.read_text()):
                callee = ServiceName[name]
                if callee != service:
                    edges.add((service.dashed, callee.dashed))
    return edges


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(
    request: pytest.FixtureRequest, builds: dict[str, list[Doc]]
) -> tuple[str, Policies, dict[str, list[Pod]]]:
    docs = builds[request.param]
    return request.param, Policies.from_docs(docs), pods(docs)


def test_the_namespace_denies_everything_by_default(builds: dict[str, list[Doc]]) -> None:
    for name, docs in builds.items():
        deny = [
            d
            for d in docs
            if d["kind"] == "NetworkPolicy"
            and d["spec"]["podSelector"] == {}
            and set(d["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not d["spec"].get("ingress")
            and not d["spec"].get("egress")
        ]
        assert len(deny) == 1, name
        # A workload no other policy mentions can do nothing at all.
        only = Policies(deny)
        a, b = Pod({"app.kubernetes.io/name": "a"}), Pod({"app.kubernetes.io/name": "b"})
        assert (
            not only.allows(a, b, 8085)
            and not only.allows(INTERNET, a, 8080)
            and not only.allows(a, KUBE_DNS, 53)
        )


def test_every_policy_port_is_a_number(builds: dict[str, list[Doc]]) -> None:
    for docs in builds.values():
        for d in docs:
            if d["kind"] == "NetworkPolicy":
                for rule in d["spec"].get("ingress", []) + d["spec"].get("egress", []):
                    assert all(isinstance(p.get("port", 0), int) for p in rule.get("ports", [])), d[
                        "metadata"
                    ]["name"]


def test_internal_calls_follow_the_design(overlay: tuple[str, Policies, dict[str, list[Pod]]]) -> None:
    name, policies, by_name = overlay
    services = list(CALLS)
    for caller in services:
        for callee in services:
            for src in by_name[caller]:
                for dst in by_name[callee]:
                    allowed = policies.allows(src, dst, port(callee))
                    assert allowed == (callee in CALLS[caller]), f"{name}: {caller} -> {callee}"


def test_calls_in_the_code_are_allowed(overlay: tuple[str, Policies, dict[str, list[Pod]]]) -> None:
    name, policies, by_name = overlay
    edges = code_calls()
    assert ("wallet-manager", "tron-client") in edges  # the scan finds the calls that exist today
    for caller, callee in sorted(edges):
        assert callee in CALLS[caller], f"{caller} calls {callee}: add it to CALLS and the NetworkPolicies"
        for src in by_name[caller]:
            for dst in by_name[callee]:
                assert policies.allows(src, dst, port(callee)), f"{name}: {caller} -> {callee}"


def test_the_edge_is_the_only_way_in(overlay: tuple[str, Policies, dict[str, list[Pod]]]) -> None:
    name, policies, by_name = overlay
    (envoy,) = by_name["envoy"]
    assert policies.allows(INTERNET, envoy, 8080)
    assert policies.allows(OTHER_TENANT, envoy, 8080)  # other clusters' gRPC/REST clients come in here
    assert not policies.allows(INTERNET, envoy, 9901)  # admin is loopback-only anyway
    for service in CALLS:
        for dst in by_name[service]:
            assert policies.allows(envoy, dst, port(service)), f"{name}: envoy -> {service}"
            assert not policies.allows(INTERNET, dst, port(service)), f"{name}: internet -> {service}"
            assert not policies.allows(OTHER_TENANT, dst, port(service)), (
                f"{name}: other namespace -> {service}"
            )
            # Metrics: Prometheus in "monitoring" only.
            assert policies.allows(PROMETHEUS, dst, port(service) + 1000)
            assert not policies.allows(OTHER_TENANT, dst, port(service) + 1000)
    for other in ("mongodb", "devnet"):
        for dst in by_name.get(other, []):
            assert not policies.allows(envoy, dst, 27017 if other == "mongodb" else 8091)
            assert not policies.allows(INTERNET, dst, 27017 if other == "mongodb" else 8091)


def test_every_pod_resolves_names(overlay: tuple[str, Policies, dict[str, list[Pod]]]) -> None:
    _, policies, by_name = overlay
    for group in by_name.values():
        for pod in group:
            assert policies.allows(pod, KUBE_DNS, 53, "UDP") and policies.allows(pod, KUBE_DNS, 53, "TCP")
            assert not policies.allows(pod, Pod({"app": "x"}, namespace="kube-system"), 53, "UDP")


def test_only_tron_client_reaches_tron_nodes(overlay: tuple[str, Policies, dict[str, list[Pod]]]) -> None:
    name, policies, by_name = overlay
    for service in CALLS:
        for pod in by_name[service]:
            for node_port in (443, 8090, 8091):
                expected = service == "tron-client" or (service == "payment-gateway" and node_port == 443)
                assert policies.allows(pod, INTERNET, node_port) == expected, f"{name}: {service}:{node_port}"
            # Never into private ranges (other workloads of the cluster, cloud metadata).
            assert not policies.allows(pod, PRIVATE, 443)
            assert not policies.allows(pod, External("169.254.169.254"), 443)
    for pod in by_name["envoy"]:
        assert not policies.allows(pod, INTERNET, 443)
    if "devnet" in by_name:
        (devnet,) = by_name["devnet"]
        for service in CALLS:
            for pod in by_name[service]:
                assert policies.allows(pod, devnet, 8091) == (service == "tron-client"), f"{name}: {service}"
        assert not policies.allows(devnet, INTERNET, 443)


def test_mongodb_is_reached_by_the_services_only(overlay: tuple[str, Policies, dict[str, list[Pod]]]) -> None:
    name, policies, by_name = overlay
    if "mongodb" in by_name:  # in-cluster replica set
        members = by_name["mongodb"]
        for service in CALLS:
            for pod in by_name[service]:
                assert all(policies.allows(pod, m, 27017) for m in members), f"{name}: {service}"
        for init in by_name["mongodb-init"]:
            assert all(policies.allows(init, m, 27017) for m in members)
        for m in members:
            assert all(policies.allows(m, peer, 27017) for peer in members)  # replication
            assert not policies.allows(m, INTERNET, 443)
            assert not policies.allows(OTHER_TENANT, m, 27017)
            for other in ("envoy", "devnet"):
                assert all(not policies.allows(p, m, 27017) for p in by_name.get(other, []))
    else:  # external database: its CIDR on 27017, nothing else
        database = External("192.0.2.10")
        for service in CALLS:
            for pod in by_name[service]:
                assert policies.allows(pod, database, 27017) and not policies.allows(pod, database, 22)
        for pod in by_name["envoy"]:
            assert not policies.allows(pod, database, 27017)
