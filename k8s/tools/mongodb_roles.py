"""Generate k8s/components/mongodb/service-roles.json: one MongoDB role and user per service, each limited to
that service's own collections (the init Job, init-replica-set.js, creates them).

A service's collections are the ones its code opens: the tool builds each service from its ServiceSpec as
the server would (`spec.build` with a Runtime over a database view that records every
`ServiceDatabase.collection` call, plus the collections of `spec.all_indexes`), against an unreachable
MongoDB and TRON node and without channels, then stops it (whatever background work a build starts fails
quietly meanwhile; run the tool as its own process, as the tests do). So a collection added to a service,
to a store every service gets (idempotency, audit) or to a shared lifecycle (chain_ops) appears here once
the tool is re-run, and a test fails until it is. MongoDB grants privileges per database or per exact
collection name (no prefix match), hence the explicit lists.

Each role may find/insert/update/remove and create the collection and its indexes on its own
`<service>_<name>` collections in PAYMENT_DB_NAME, and nothing else (no other collection, no database-wide
action, no user or role management). FerretDB, which `make up` and the tests use, cannot model users or
roles, so this applies to a real MongoDB only (k8s/components/mongodb, or an external one: see
k8s/README.md).

Usage: ``python k8s/tools/mongodb_roles.py`` writes the file; ``--check`` exits 1 when it is stale.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLES_FILE = REPO_ROOT / "k8s" / "components" / "mongodb" / "service-roles.json"
# What the services' queries need (find_one_and_update is find + update; create_index creates the collection).
ACTIONS = ("createCollection", "createIndex", "find", "insert", "remove", "update")
UNREACHABLE = "mongodb://127.0.0.1:9/"  # the discard port: nothing answers there
UNREACHABLE_NODE = "http://127.0.0.1:9"


def _import_services() -> None:
    for path in (REPO_ROOT, REPO_ROOT / "gen"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


async def service_collections(name: Any) -> list[str]:
    """The collections (without the service prefix) service `name` (a ServiceName) opens."""
    from pymongo import AsyncMongoClient

    from services.common import audit, idempotency
    from services.common.clients import ServiceClients
    from services.common.mongo import ServiceDatabase
    from services.common.server import Runtime
    from services.common.settings import parse_settings

    class Recording(ServiceDatabase):
        names: set[str]

        def collection(self, name: str) -> Any:
            self.names.add(name)
            return super().collection(name)

    spec = importlib.import_module(f"services.{name.value}.service").SERVICE
    # Local settings, whatever this shell's environment says (collections do not depend on them), with
    # nothing reachable.
    local = {"TRON_NETWORK": "devnet", "TRON_NODE_URL": UNREACHABLE_NODE, "WALLET_ENCRYPTION_KEY": ""}
    settings = parse_settings(spec.settings, SERVICE_NAME=name, MONGODB_URI=UNREACHABLE, **local)
    # Nothing answers there: give up at once (a stop hook's last write would otherwise wait 30 s per service).
    client: AsyncMongoClient[Any] = AsyncMongoClient(UNREACHABLE, connect=False, serverSelectionTimeoutMS=100)
    db = Recording(client, settings.PAYMENT_DB_NAME, name.value)
    db.names = set()
    rt = Runtime(
        settings,
        db,
        ServiceClients(settings, None),  # type: ignore[arg-type]  # no channel is opened while building
        idempotency.IdempotencyStore(db),
        audit.AuditLog(db),
    )
    try:
        await spec.build(rt)
    finally:
        for hook in rt._on_stop:
            await hook()
        await client.close()
    return sorted(db.names | {index.collection for index in spec.all_indexes})


def roles() -> dict[str, Any]:
    """The file's content: the actions granted and, per service, its user, role and full collection names."""
    _import_services()
    from services.common.settings import ServiceName

    logging.disable(logging.CRITICAL)  # the builds' background work failing against nothing is expected

    async def collect() -> list[dict[str, Any]]:
        out = []
        for name in ServiceName:
            out.append(
                {
                    "service": name.dashed,
                    "user": name.dashed,
                    "role": f"tronpay-{name.dashed}",
                    # The init Job's variable holding the user's password (Secret mongodb-admin,
                    # key <service>-password).
                    "password_env": f"{name.name}_MONGODB_PASSWORD",
                    "collections": [f"{name.value}_{c}" for c in await service_collections(name)],
                }
            )
        return out

    return {
        "generated_by": "k8s/tools/mongodb_roles.py (do not edit; run it and commit the result)",
        "actions": list(ACTIONS),
        "services": asyncio.run(collect()),
    }


def render() -> str:
    return json.dumps(roles(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not ROLES_FILE.exists() or ROLES_FILE.read_text() != text:
            print(f"{ROLES_FILE.relative_to(REPO_ROOT)} is stale: run python k8s/tools/mongodb_roles.py")
            return 1
        return 0
    ROLES_FILE.write_text(text)
    print(f"wrote {ROLES_FILE.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
