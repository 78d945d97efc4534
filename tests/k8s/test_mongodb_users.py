"""Least privilege in MongoDB: the generated roles (k8s/components/mongodb/service-roles.json) give each
service's user exactly its own collections, they are what the services' code opens (the generator's
--check), the init script grants exactly them, the init Job has every user's password, and every service
pod connects as its own user."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import pytest

from services.common.settings import ServiceName
from tests.k8s.conftest import OVERLAYS, REPO_ROOT, dev_secrets
from tests.k8s.test_manifests import Doc, config_map, containers, env_of, kinds, named, service_deployments

MONGODB_DIR = REPO_ROOT / "k8s" / "components" / "mongodb"
ROLES = json.loads((MONGODB_DIR / "service-roles.json").read_text())
BY_SERVICE = {s["service"]: s for s in ROLES["services"]}
# Documents only: no database-wide, user, role or drop action.
CRUD_AND_INDEXES = {"createCollection", "createIndex", "find", "insert", "remove", "update"}


def test_the_committed_roles_are_what_the_services_open() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "k8s" / "tools" / "mongodb_roles.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_each_service_may_touch_only_its_own_collections() -> None:
    assert sorted(BY_SERVICE) == sorted(s.dashed for s in ServiceName)
    assert set(ROLES["actions"]) == CRUD_AND_INDEXES
    owners: dict[str, str] = {}
    for name in ServiceName:
        entry = BY_SERVICE[name.dashed]
        assert entry["user"] == name.dashed and entry["role"] == f"tronpay-{name.dashed}"
        collections = entry["collections"]
        assert collections and len(set(collections)) == len(collections)
        for collection in collections:
            # Its own prefix, and not also another service's (no service name extends another's).
            owner = [s for s in ServiceName if collection.startswith(f"{s.value}_")]
            assert owner == [name], (name, collection)
            assert owners.setdefault(collection, name.dashed) == name.dashed
        # The stores every service has (idempotency records, its audit log) are its own copies.
        assert {f"{name.value}_requests", f"{name.value}_audit_log"} <= set(collections)
    assert {r["role"] for r in ROLES["services"]} == {f"tronpay-{s.dashed}" for s in ServiceName}
    # The keys' ciphertexts are wallet-manager's alone.
    secrets = [s for s, e in BY_SERVICE.items() if "wallet_manager_secrets" in e["collections"]]
    assert secrets == ["wallet-manager"]


def test_the_init_script_grants_exactly_the_generated_roles() -> None:
    """Runs init-replica-set.js under node against a stand-in for mongosh's API and compares what it asks
    MongoDB for with the generated file."""
    node = shutil.which("node")
    assert node is not None, "node is required (make install)"
    harness = r"""
const vm = require("vm");
const fs = require("fs");
const [script, roles] = process.argv.slice(1);
const calls = [];
const db = {
  auth() {},
  runCommand(cmd) {
    if (cmd.replSetGetStatus) return { ok: 1, set: "rs0", members: [{}] };
    if (cmd.replSetGetConfig) return { ok: 1, config: { members: [{ host: "mongodb-0:27017" }] } };
    if (cmd.hello) return { isWritablePrimary: true };
    throw new Error(`unexpected command ${JSON.stringify(cmd)}`);
  },
  getRole(name) { return name === "tronpay-wallet-manager" ? { role: name } : null; },
  getUser(name) { return name === "tron-client" ? { user: name } : null; },
  createRole(role, wc) { calls.push(["createRole", role, wc]); },
  updateRole(name, update, wc) { calls.push(["updateRole", { role: name, ...update }, wc]); },
  createUser(user, wc) { calls.push(["createUser", user, wc]); },
  updateUser(name, update, wc) { calls.push(["updateUser", { user: name, ...update }, wc]); },
};
const env = { MONGODB_REPLICAS: "1", PAYMENT_DB_NAME: "tronpay", ROOT_USERNAME: "root", ROOT_PASSWORD: "r",
              MONGODB_URI_OPTIONS: "tls=true&tlsCAFile=/ca.crt" };
for (const s of JSON.parse(fs.readFileSync(roles, "utf8")).services) env[s.password_env] = `pw-${s.user}`;
const sandbox = {
  process: { env },
  require: (m) => ({
    readFileSync(path) {
      if (m !== "fs" || path !== "/scripts/service-roles.json") throw new Error(`${m} ${path}`);
      return fs.readFileSync(roles, "utf8");
    },
  }),
  Mongo: function (uri) { calls.push(["connect", { uri }, {}]); this.getDB = () => db; },
  print: () => {},
  sleep: () => {},
};
vm.runInNewContext(fs.readFileSync(script, "utf8"), sandbox);
process.stdout.write(JSON.stringify(calls));
"""
    proc = subprocess.run(
        [
            node,
            "-e",
            harness,
            str(MONGODB_DIR / "init-replica-set.js"),
            str(MONGODB_DIR / "service-roles.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = json.loads(proc.stdout)
    uris = [c[1]["uri"] for c in calls if c[0] == "connect"]
    assert uris and all(u.endswith("&tls=true&tlsCAFile=/ca.crt") for u in uris), (
        uris
    )  # components/mongodb-tls
    calls = [c for c in calls if c[0] != "connect"]
    roles = {c[1]["role"]: c for c in calls if c[0] in ("createRole", "updateRole")}
    users = {c[1]["user"]: c for c in calls if c[0] in ("createUser", "updateUser")}
    assert len(roles) == len(users) == len(ServiceName) == len(calls) // 2
    assert roles["tronpay-wallet-manager"][0] == "updateRole" and users["tron-client"][0] == "updateUser"
    for entry in ROLES["services"]:
        _op, role, write_concern = roles[entry["role"]]
        assert write_concern["w"] == "majority"
        assert role["roles"] == []  # inherits nothing (no built-in readWrite)
        granted = {(p["resource"]["db"], p["resource"]["collection"]) for p in role["privileges"]}
        assert granted == {("tronpay", c) for c in entry["collections"]}
        assert all(sorted(p["actions"]) == sorted(ROLES["actions"]) for p in role["privileges"])
        _op, user, _wc = users[entry["user"]]
        assert (
            user["roles"] == [{"role": entry["role"], "db": "admin"}] and user["pwd"] == f"pw-{entry['user']}"
        )


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o != "production-external-db"])
def test_the_init_job_has_every_users_password_and_the_roles(
    builds: dict[str, list[Doc]], overlay: str
) -> None:
    docs = builds[overlay]
    (c,) = containers(named(docs, "Job", "mongodb-init"))
    env = env_of(c)
    for entry in ROLES["services"]:
        ref = env[entry["password_env"]]["valueFrom"]["secretKeyRef"]
        # (the dev overlay generates the Secret: its name carries a hash)
        assert ref["name"].startswith("mongodb-admin") and ref["key"] == f"{entry['service']}-password"
    assert not {"APP_USERNAME", "APP_PASSWORD"} & set(env)  # no shared application user any more
    data = config_map(docs, "mongodb-init")["data"]
    assert json.loads(data["service-roles.json"]) == ROLES
    assert "readWrite" not in data["init-replica-set.js"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_pod_connects_as_its_own_user(builds: dict[str, list[Doc]], overlay: str) -> None:
    deployments = service_deployments(builds[overlay])
    assert len(deployments) >= len(ServiceName)
    for dep in deployments:
        (c,) = containers(dep, init=False)
        service = ServiceName(c["command"][-1].removeprefix("services."))
        ref = env_of(c)["MONGODB_URI"]["valueFrom"]["secretKeyRef"]
        assert ref["name"].startswith("tronpay-secrets"), dep["metadata"]["name"]
        assert ref["key"] == dev_secrets.uri_key(service.dashed), dep["metadata"]["name"]
    if overlay == "dev":  # the generated dev Secret has exactly those keys
        (secret,) = [
            s for s in kinds(builds[overlay], "Secret") if s["metadata"]["name"].startswith("tronpay-secrets")
        ]
        uri_keys = {k for k in secret["data"] if k.startswith("MONGODB_URI")}
        assert uri_keys == {dev_secrets.uri_key(s.dashed) for s in ServiceName}
