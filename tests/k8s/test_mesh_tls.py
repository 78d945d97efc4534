"""Mutual TLS inside the mesh, as the manifests wire it: every pod mounts exactly its own identity's Secret
tronpay-tls-<identity> at TLS_DIR/<identity> (readable by its process only), readiness asks the plaintext
health-only port, nothing else reaches that port, the dev overlay's Secrets hold each identity's
certificate, the cert-manager component issues every Secret a pod mounts, and the production replica set
requires TLS."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # kubernetes-validate's dependency; no stubs
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.common.access import Peer
from services.common.settings import ServiceName, Settings
from tests.k8s.conftest import OVERLAYS, REPO_ROOT, envoy_config, load_tool, validate
from tests.k8s.netpol import External, Pod, Policies
from tests.k8s.test_manifests import (
    WORKLOADS,
    Doc,
    config_map,
    containers,
    env_of,
    kinds,
    named,
    pod_spec,
    public_services,
    service_deployments,
)
from tests.k8s.test_network_policies import pods

dev_tls = load_tool("dev_tls")

#: Identities with a Secret: the mesh's (services.common.access.Peer) and the in-cluster database's.
IDENTITIES = (*(p.value for p in Peer), "mongodb")
TLS_FILES = {"tls.crt", "tls.key", "ca.crt"}
CERT_MANAGER_SCHEMAS = json.loads(
    (Path(__file__).parent / "schemas" / "cert-manager-v1.21.1.json").read_text()
)


def identity_of_secret(name: str) -> str | None:
    """The identity a Secret name belongs to (tronpay-tls-<identity>, plus the dev overlay's content hash)."""
    for identity in IDENTITIES:
        if re.fullmatch(rf"tronpay-tls-{identity}(-[a-z0-9]{{10}})?", name):
            return identity
    assert not name.startswith("tronpay-tls-"), f"Secret {name} names no identity"
    return None


def tls_volumes(doc: Doc) -> dict[str, tuple[str, Doc]]:
    """volume name -> (identity, secret source) for every volume or projection of a tronpay-tls Secret."""
    out = {}
    for volume in pod_spec(doc).get("volumes", []):
        sources = [volume["secret"]] if "secret" in volume else []
        sources += [s["secret"] for s in volume.get("projected", {}).get("sources", []) if "secret" in s]
        for source in sources:
            identity = identity_of_secret(source.get("secretName") or source["name"])
            if identity is not None:
                out[volume["name"]] = (identity, source)
    return out


def mounts_of(doc: Doc, volume: str) -> list[tuple[str, Doc]]:
    """(container name, mount) of every container, init containers included, that mounts `volume`."""
    return [(c["name"], m) for c in containers(doc) for m in c.get("volumeMounts", []) if m["name"] == volume]


def identity_of_workload(doc: Doc) -> str | None:
    """Whose certificate a workload's pods present: a service's, the edge's, the database's, or none."""
    if doc in service_deployments([doc]):
        (c,) = containers(doc, init=False)
        return ServiceName(c["command"][-1].removeprefix("services.")).dashed
    return {"envoy": "edge", "mongodb": "mongodb"}.get(doc["metadata"]["name"])


def readable_by_the_process_only(doc: Doc, mode: int) -> bool:
    """With fsGroup the kubelet gives the files to the pod's group (adding group read): the process reads
    them through that group, no other user can, and nobody may write."""
    security = pod_spec(doc)["securityContext"]
    return "fsGroup" in security and mode & 0o777 in (0o400, 0o440)


def tls_dir(docs: list[Doc]) -> str:
    return str(config_map(docs, "tronpay-config")["data"]["TLS_DIR"])


# --------------------------------------------------------------------------------------------------
# what each pod mounts


def test_tls_dir_is_where_the_edge_and_the_services_look() -> None:
    assert envoy_config.read_env()["TLS_DIR"] == "/etc/tronpay/pki"
    assert set(dev_tls.MOUNTED) == {p.value for p in Peer} - {Peer.OPERATOR.value}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_pod_mounts_its_own_identity_at_tls_dir(
    builds: dict[str, list[Doc]], overlay: str
) -> None:
    docs = builds[overlay]
    root = tls_dir(docs)
    assert root == "/etc/tronpay/pki"
    for dep in service_deployments(docs):
        where = f"{overlay}: {dep['metadata']['name']}"
        (c,) = containers(dep, init=False)
        assert "TLS_DIR" not in env_of(c), where  # the shared ConfigMap's, never a per-pod override
        identity = identity_of_workload(dep)
        volumes = tls_volumes(dep)
        assert [i for i, _ in volumes.values()] == [identity], where
        ((volume, (_, source)),) = volumes.items()
        assert "items" not in source, where  # all three files
        assert readable_by_the_process_only(dep, source["defaultMode"]), where
        ((container, mount),) = mounts_of(dep, volume)
        assert (container, mount["mountPath"], mount.get("readOnly")) == (
            "service",
            f"{root}/{identity}",
            True,
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_edge_mounts_the_edge_identity_where_its_config_reads_it(
    builds: dict[str, list[Doc]], overlay: str
) -> None:
    envoy = named(builds[overlay], "Deployment", "envoy")
    volumes = tls_volumes(envoy)
    assert [i for i, _ in volumes.values()] == ["edge"]
    ((volume, (_, source)),) = volumes.items()
    assert "items" not in source and readable_by_the_process_only(envoy, source["defaultMode"])
    ((_, mount),) = mounts_of(envoy, volume)
    directory = f"{envoy_config.read_env()['TLS_DIR']}/edge"
    assert mount == {"name": volume, "mountPath": directory, "readOnly": True}
    # Every file the rendered config reads for mesh TLS is one of the Secret's, and each service's cluster
    # accepts only a certificate that names that service.
    config = json.loads(envoy_config.expected()[0])
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    for service in ServiceName:
        context = clusters[service.value]["transport_socket"]["typed_config"]
        common = context["common_tls_context"]
        (certificate,) = common["tls_certificates"]
        assert certificate == {
            "certificate_chain": {"filename": f"{directory}/tls.crt"},
            "private_key": {"filename": f"{directory}/tls.key"},
        }
        validation = common["validation_context"]
        assert validation["trusted_ca"] == {"filename": f"{directory}/ca.crt"}
        assert context["sni"] == service.dashed
        assert validation["match_typed_subject_alt_names"] == [
            {"san_type": "DNS", "matcher": {"exact": service.dashed}}
        ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_pod_mounts_another_identitys_secret(builds: dict[str, list[Doc]], overlay: str) -> None:
    docs = builds[overlay]
    mounted: set[str] = set()
    for doc in kinds(docs, *WORKLOADS):
        where = f"{overlay}: {doc['kind']}/{doc['metadata']['name']}"
        own = identity_of_workload(doc)
        for identity, source in tls_volumes(doc).values():
            mounted.add(identity)
            if doc["metadata"]["name"] == "mongodb-init":  # the database's CA certificate, not its key
                assert identity == "mongodb" and source["items"] == [{"key": "ca.crt", "path": "ca.crt"}], (
                    where
                )
            else:
                assert identity == own, where
        for c in containers(doc):  # and no key of one through the environment
            refs = [
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in env_of(c).values()
                if "secretKeyRef" in e.get("valueFrom", {})
            ]
            refs += [s["secretRef"]["name"] for s in c.get("envFrom", []) if "secretRef" in s]
            assert not [r for r in refs if r.startswith("tronpay-tls-")], where
    assert Peer.OPERATOR.value not in mounted  # the operator's tools run outside the pods
    assert {s.dashed for s in ServiceName} | {"edge"} <= mounted


# --------------------------------------------------------------------------------------------------
# probes: the plaintext health-only port


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_readiness_asks_the_health_only_port(builds: dict[str, list[Doc]], overlay: str) -> None:
    docs = builds[overlay]
    public = public_services()
    assert Settings.model_fields["HEALTH_PORT"].default is None  # so: gRPC port + 2000
    for dep in service_deployments(docs):
        (c,) = containers(dep, init=False)
        service = ServiceName(c["command"][-1].removeprefix("services."))
        settings = Settings.model_construct(SERVICE_NAME=service)
        assert settings.health_port == settings.port + 2000
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["health"] == settings.health_port
        # A grpc probe takes a port number only; it asks grpc.health.v1 for the public service.
        assert c["readinessProbe"]["grpc"] == {"port": settings.health_port, "service": public[service.value]}
        for probe in ("startupProbe", "livenessProbe"):  # the mutual-TLS port accepting connections
            assert c[probe]["tcpSocket"] == {"port": "grpc"}
        # Nobody dials the health port through the Service: Envoy checks health over mutual TLS.
        svc = named(docs, "Service", service.dashed)
        assert settings.health_port not in {p["port"] for p in svc["spec"]["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_pod_reaches_the_health_only_port(builds: dict[str, list[Doc]], overlay: str) -> None:
    """The kubelet probes from the node, which NetworkPolicies always allow (k8s/README.md); every pod,
    here or elsewhere, is refused on the plaintext port."""
    docs = builds[overlay]
    policies, by_name = Policies.from_docs(docs), pods(docs)
    strangers: list[Pod | External] = [
        Pod({"app.kubernetes.io/name": "prometheus"}, namespace="monitoring"),
        Pod({"app.kubernetes.io/name": "tron-client"}, namespace="another-team"),
        External("203.0.113.10"),
    ]
    sources = [*(p for group in by_name.values() for p in group), *strangers]
    for service in ServiceName:
        health = Settings.model_construct(SERVICE_NAME=service).health_port
        for dst in by_name[service.dashed]:
            allowed = [s for s in sources if policies.allows(s, dst, health)]
            assert allowed == [], f"{overlay}: {service.dashed}:{health} open to {allowed}"


# --------------------------------------------------------------------------------------------------
# the dev overlay's Secrets and the tool that writes them


def _certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def test_the_dev_secrets_hold_each_identitys_certificate(builds: dict[str, list[Doc]]) -> None:
    secrets = {
        identity_of_secret(d["metadata"]["name"]): d
        for d in kinds(builds["dev"], "Secret")
        if d["metadata"]["name"].startswith("tronpay-tls-")
    }
    assert set(secrets) == set(dev_tls.MOUNTED)
    cas = set()
    for identity, secret in secrets.items():
        assert secret["type"] == "kubernetes.io/tls" and set(secret["data"]) == TLS_FILES, identity
        data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
        cert, ca = _certificate(data["tls.crt"]), _certificate(data["ca.crt"])
        cert.verify_directly_issued_by(ca)
        cas.add(data["ca.crt"])
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == identity
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.DNSName) == [identity]
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages)
        key = serialization.load_pem_private_key(data["tls.key"], None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
    assert len(cas) == 1  # one cluster CA


def test_the_dev_tls_tool_copies_the_development_pki(tmp_path: Path) -> None:
    overlay, pki = tmp_path / "dev", tmp_path / "pki"
    written = dev_tls.write(overlay, pki=pki)
    assert sorted(p.relative_to(overlay / dev_tls.SUBDIR).as_posix() for p in written) == sorted(
        f"{i}/{f}" for i in dev_tls.MOUNTED for f in TLS_FILES
    )
    for path in written:
        assert path.read_bytes() == (pki / path.parent.name / path.name).read_bytes()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not (overlay / dev_tls.SUBDIR / Peer.OPERATOR.value).exists()
    assert dev_tls.write(overlay, pki=pki) == []  # unchanged PKI, nothing rewritten
    # A renewed PKI (here: a new CA) is copied over the stale files.
    for path in pki.rglob("*"):
        if path.is_file():
            path.unlink()
    assert len(dev_tls.write(overlay, pki=pki)) == len(written)
    assert (overlay / dev_tls.SUBDIR / "edge" / "ca.crt").read_bytes() == (pki / "ca.crt").read_bytes()


def test_the_dev_overlay_generates_a_tls_secret_per_mounted_identity() -> None:
    kustomization = yaml.safe_load(
        (REPO_ROOT / "k8s" / "overlays" / "dev" / "kustomization.yaml").read_text()
    )
    generated = {
        g["name"]: g for g in kustomization["secretGenerator"] if g["name"].startswith("tronpay-tls-")
    }
    assert set(generated) == {dev_tls.secret_name(i) for i in dev_tls.MOUNTED}
    for identity in dev_tls.MOUNTED:
        entry = generated[dev_tls.secret_name(identity)]
        assert entry["type"] == "kubernetes.io/tls"
        assert entry["files"] == [
            f"{dev_tls.SUBDIR}/{identity}/{name}" for name in ("tls.crt", "tls.key", "ca.crt")
        ]


# --------------------------------------------------------------------------------------------------
# cert-manager


CERT_MANAGER = ("../../components/cert-manager", "../../components/cert-manager/mongodb")


@pytest.fixture(scope="module")
def with_cert_manager() -> list[Doc]:
    """The production overlay with the cert-manager components added, as an operator's overlay would."""
    kustomize = validate.kustomize_bin()
    with validate.workspace() as root:
        overlay = root / "overlays" / "production-cert-manager"
        overlay.mkdir()
        (overlay / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "namespace": "tronpay",
                    "labels": [{"pairs": {"app.kubernetes.io/part-of": "tronpay"}, "includeTemplates": True}],
                    "resources": ["../production"],
                    "components": list(CERT_MANAGER),
                }
            )
        )
        docs: list[Doc] = validate.build(root, overlay.name, kustomize).docs
        return docs


def _strict(schema: Any) -> Any:
    """Unknown fields become errors, as `kubectl apply --validate=strict` makes them."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def cert_manager_errors(docs: list[Doc]) -> list[str]:
    """Schema errors of the cert-manager.io objects (the CRDs' own schemas, strict)."""
    errors = []
    for doc in docs:
        schema = _strict(CERT_MANAGER_SCHEMAS["schemas"][doc["kind"]])
        for error in jsonschema.Draft7Validator(schema).iter_errors(doc):
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {error.message} at {list(error.path)}")
    return errors


def _cert_manager_docs(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["apiVersion"] == "cert-manager.io/v1"]


def test_the_cert_manager_components_pass_the_strict_schemas(with_cert_manager: list[Doc]) -> None:
    ours = _cert_manager_docs(with_cert_manager)
    assert {d["kind"] for d in ours} == {"Certificate", "Issuer"}
    assert cert_manager_errors(ours) == []
    assert validate.schema_errors([d for d in with_cert_manager if d not in ours]) == []
    assert all(d["metadata"]["namespace"] == "tronpay" for d in ours)
    assert all(d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "tronpay" for d in ours)
    misspelt = copy.deepcopy(named(ours, "Certificate", "tronpay-tls-edge"))
    misspelt["spec"]["privateKey"]["algorithim"] = "ECDSA"
    assert len(cert_manager_errors([misspelt])) == 1


def _hours(duration: str) -> int:
    match = re.fullmatch(r"(\d+)h", duration)
    assert match, f"{duration}: written in whole hours here"
    return int(match.group(1))


def _chain(docs: list[Doc], certificate: Doc) -> Iterator[Doc]:
    """The Issuers from a Certificate up to the self-signed root, checking each CA link."""
    issuer = named(docs, "Issuer", certificate["spec"]["issuerRef"]["name"])
    assert certificate["spec"]["issuerRef"] == {
        "name": issuer["metadata"]["name"],
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    yield issuer
    if "ca" in issuer["spec"]:
        (ca,) = [
            d
            for d in kinds(docs, "Certificate")
            if d["spec"]["secretName"] == issuer["spec"]["ca"]["secretName"]
        ]
        assert ca["spec"]["isCA"] is True
        yield from _chain(docs, ca)
    else:
        assert issuer["spec"] == {"selfSigned": {}}


def test_cert_manager_issues_every_mounted_secret_from_one_ca(with_cert_manager: list[Doc]) -> None:
    docs = with_cert_manager
    by_secret = {d["spec"]["secretName"]: d for d in kinds(_cert_manager_docs(docs), "Certificate")}
    mounted = {
        source.get("secretName") or source["name"]
        for doc in kinds(docs, *WORKLOADS)
        for _, source in tls_volumes(doc).values()
    }
    identities = {*mounted, f"tronpay-tls-{Peer.OPERATOR.value}"}
    assert identities <= set(by_secret), identities - set(by_secret)
    roots = set()
    for secret in identities:
        certificate = by_secret[secret]
        spec = certificate["spec"]
        identity = identity_of_secret(secret)
        assert certificate["metadata"]["name"] == secret
        assert spec["commonName"] == identity  # the services read the caller from the common name
        if identity != "mongodb":
            assert spec["dnsNames"] == [identity]  # clients check the server's certificate names it
        assert {"digital signature", "server auth", "client auth"} == set(spec["usages"])
        assert spec["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
        assert 0 < _hours(spec["renewBefore"]) < _hours(spec["duration"])
        assert not spec.get("isCA")
        chain = list(_chain(docs, certificate))
        assert [i["metadata"]["name"] for i in chain] == ["tronpay-ca", "tronpay-bootstrap"]
        roots.add(chain[-1]["metadata"]["name"])
    assert len(roots) == 1
    ca = named(docs, "Certificate", "tronpay-ca")["spec"]
    # Renewal keeps the CA's key, so the ca.crt every pod already holds still verifies new certificates.
    assert ca["privateKey"]["rotationPolicy"] == "Never"
    assert 0 < _hours(ca["renewBefore"]) < _hours(ca["duration"])


def test_the_database_certificate_names_every_member(with_cert_manager: list[Doc]) -> None:
    docs = with_cert_manager
    members = named(docs, "StatefulSet", "mongodb")
    service = members["spec"]["serviceName"]
    names = named(docs, "Certificate", "tronpay-tls-mongodb")["spec"]["dnsNames"]
    assert names == [f"mongodb-{i}.{service}" for i in range(members["spec"]["replicas"])]
    script = config_map(docs, "mongodb-init")["data"]["init-replica-set.js"]
    assert f"mongodb-${{i}}.{service}:27017" in script  # the hosts the replica set config names


# --------------------------------------------------------------------------------------------------
# MongoDB over TLS (production's in-cluster replica set)


def _flags(args: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    words = args.split()
    for i, word in enumerate(words):
        if word.startswith("--"):
            value = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else None
            out[word] = value
    return out


def test_the_production_replica_set_requires_tls(builds: dict[str, list[Doc]]) -> None:
    docs = builds["production"]
    members = named(docs, "StatefulSet", "mongodb")
    mongod = next(c for c in containers(members, init=False) if c["name"] == "mongod")
    assert "${MONGOD_TLS_ARGS:-}" in mongod["command"][-1]
    flags = _flags(env_of(mongod)["MONGOD_TLS_ARGS"]["value"])
    assert flags["--tlsMode"] == "requireTLS"
    assert "--tlsAllowConnectionsWithoutCertificates" in flags  # clients log in with their own user
    (volume,) = [v for v, (identity, _) in tls_volumes(members).items() if identity == "mongodb"]
    mount_dirs = {m["mountPath"]: m["name"] for m in mongod["volumeMounts"]}
    secret_dir = next(p for p, n in mount_dirs.items() if n == volume)
    assert flags["--tlsCAFile"] == f"{secret_dir}/ca.crt"
    # The joined certificate + key file: written by an init container into a volume mongod mounts.
    pem = flags["--tlsCertificateKeyFile"]
    assert pem is not None
    pem_volume = mount_dirs[os.path.dirname(pem)]
    (writer,) = [c for c in pod_spec(members)["initContainers"] if pem in " ".join(c["command"])]
    assert {m["name"] for m in writer["volumeMounts"]} == {volume, pem_volume}
    assert all(f"{secret_dir}/{name}" in writer["command"][-1] for name in ("tls.crt", "tls.key"))
    assert next(v for v in pod_spec(members)["volumes"] if v["name"] == pem_volume)["emptyDir"]["medium"] == (
        "Memory"
    )
    # The init Job trusts the same CA and passes the TLS options to the URIs it opens.
    job = named(docs, "Job", "mongodb-init")
    (init,) = containers(job)
    options = env_of(init)["MONGODB_URI_OPTIONS"]["value"]
    ((ca_volume, _),) = tls_volumes(job).items()
    ((_, ca_mount),) = mounts_of(job, ca_volume)
    assert options == f"tls=true&tlsCAFile={ca_mount['mountPath']}/ca.crt"


@pytest.mark.parametrize("overlay", ["dev", "production-external-db"])
def test_other_overlays_leave_the_database_connection_as_it_was(
    builds: dict[str, list[Doc]], overlay: str
) -> None:
    for doc in kinds(builds[overlay], "StatefulSet", "Job"):
        for c in containers(doc):
            assert {"MONGOD_TLS_ARGS", "MONGODB_URI_OPTIONS"}.isdisjoint(env_of(c)), doc["metadata"]["name"]
