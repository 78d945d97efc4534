"""MongoDB access: one database, collections owned per service and prefixed with its name.

A service declares its collections' indexes as `IndexSpec`s; `ServiceDatabase.bootstrap()` creates
them at start-up (idempotent). Only unique/compound indexes: the FerretDB test server has no TTL,
partial or text indexes, and no transactions, so correctness rests on single-document atomic
updates and unique keys.

Concurrency contract (holds on MongoDB; the FerretDB test server gets it by running each database's
write commands one at a time, scripts/ferretdb/serialize.go; tests/services/test_mongo_atomicity.py
checks it): move a state with one conditional write whose filter carries the guard
(`{"_id": x, "state": "PENDING"}`) and act only if it won (`modified_count == 1` or a returned
document); never read, decide, then write unguarded. Upsert only on keys with a unique index (MongoDB
may otherwise insert twice). Never rely on `update_many`/`insert_many`/bulk writes being atomic as a
whole: the test server is stricter there than MongoDB.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import Settings

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """An index on one of the service's collections (`collection` without the service prefix)."""

    collection: str
    keys: Sequence[tuple[str, int]]
    unique: bool = False
    name: str = ""

    def index_name(self) -> str:
        """Explicit name, so re-declaring the same index is a no-op."""
        return self.name or "_".join(f"{k}_{d}" for k, d in self.keys)


class ServiceDatabase:
    """The service's view of the shared database: only its own, prefixed collections."""

    def __init__(self, client: AsyncMongoClient[Document], db_name: str, service: str) -> None:
        self._client = client
        self._db: AsyncDatabase[Document] = client[db_name]
        self._prefix = f"{service}_"

    @classmethod
    def connect(cls, settings: Settings) -> ServiceDatabase:
        """Create the client (connects lazily; `ping` checks reachability)."""
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            settings.MONGODB_URI.get_secret_value(),
            appname=settings.SERVICE_NAME.value,
            serverSelectionTimeoutMS=int(settings.MONGODB_TIMEOUT_SECONDS * 1000),
            connectTimeoutMS=int(min(settings.MONGODB_TIMEOUT_SECONDS, 3.0) * 1000),
            tz_aware=True,
        )
        return cls(client, settings.PAYMENT_DB_NAME, settings.SERVICE_NAME.value)

    def collection(self, name: str) -> AsyncCollection[Document]:
        """The service-owned collection `<service>_<name>`."""
        return self._db[self._prefix + name]

    def collection_name(self, name: str) -> str:
        """Full collection name of `name`."""
        return self._prefix + name

    async def ping(self) -> None:
        """Raise if the server cannot be reached."""
        await self._client.admin.command("ping")

    async def bootstrap(self, specs: Iterable[IndexSpec]) -> None:
        """Create the declared indexes (and so their collections); safe to repeat."""
        for spec in specs:
            keys = [(k, d or ASCENDING) for k, d in spec.keys]
            await self.collection(spec.collection).create_index(
                keys, unique=spec.unique, name=spec.index_name()
            )

    async def close(self) -> None:
        """Close the client's pools."""
        await self._client.close()
