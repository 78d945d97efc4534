"""The test database server finds documents by `_id` through its `_id` index, also when the filter has more
conditions (the guarded writes of every service: `{"_id": x, "state": "PENDING"}`), and still applies those
conditions.

FerretDB v1.24.2's SQLite backend compared `_id` with an expression its `_id` index does not cover, so even an
`_id`-only lookup scanned the collection, and it selected by `_id` only when `_id` was the filter's single
field. scripts/ferretdb/patches fix both; `explain` shows SQLite's query plan (FerretDB-specific output).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from tests.harness.ferretdb import FerretDB

Doc = dict[str, Any]
DOCS = 200


@pytest.fixture
async def db(ferretdb: FerretDB, mongo_db_name: str) -> AsyncIterator[AsyncDatabase[Doc]]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(ferretdb.uri)
    yield client[mongo_db_name]
    await client.drop_database(mongo_db_name)
    await client.close()


@pytest.fixture
async def col(db: AsyncDatabase[Doc]) -> AsyncCollection[Doc]:
    c = db["ops"]
    await c.insert_many([{"_id": f"op{i}", "state": "PENDING", "attempt": 1, "n": i} for i in range(DOCS)])
    return c


async def _plan(db: AsyncDatabase[Doc], flt: Doc) -> str:
    reply = await db.command("explain", {"find": "ops", "filter": flt})
    return " ".join(reply["queryPlanner"]["Plan"])


@pytest.mark.parametrize(
    "flt",
    [
        {"_id": "op7"},
        {"_id": "op7", "state": "PENDING", "attempt": 1},
        {"_id": "op7", "state": {"$in": ["PENDING", "SIGNED"]}, "attempt": {"$gte": 1}},
        {"state": "PENDING", "_id": "op7"},
    ],
)
async def test_id_filters_use_the_id_index(
    db: AsyncDatabase[Doc], col: AsyncCollection[Doc], flt: Doc
) -> None:
    plan = await _plan(db, flt)
    assert "USING INDEX" in plan and "__id_" in plan, plan
    assert [d["_id"] async for d in col.find(flt)] == ["op7"]


async def test_other_filters_scan(db: AsyncDatabase[Doc], col: AsyncCollection[Doc]) -> None:
    assert "SCAN" in await _plan(db, {"state": "PENDING"})
    assert "SCAN" in await _plan(db, {"_id": {"$in": ["op1", "op2"]}})
    assert await col.count_documents({"state": "PENDING"}) == DOCS


async def test_the_rest_of_the_filter_still_applies(col: AsyncCollection[Doc]) -> None:
    assert await col.find_one({"_id": "op7", "state": "SIGNED"}) is None
    assert await col.find_one({"_id": "op7", "attempt": 2}) is None
    assert await col.find_one({"_id": "op7", "n": {"$gt": 7}}) is None
    missed = await col.update_one({"_id": "op7", "state": "SIGNED"}, {"$set": {"state": "BROADCAST"}})
    assert (missed.matched_count, missed.modified_count) == (0, 0)
    assert await col.find_one_and_update({"_id": "op7", "attempt": 2}, {"$set": {"state": "X"}}) is None
    assert (await col.delete_one({"_id": "op7", "state": "SIGNED"})).deleted_count == 0
    assert (await col.find_one({"_id": "op7"}) or {})["state"] == "PENDING"

    won = await col.find_one_and_update(
        {"_id": "op7", "state": "PENDING", "attempt": 1},
        {"$set": {"state": "SIGNED"}},
        return_document=ReturnDocument.AFTER,
    )
    assert won is not None and won["state"] == "SIGNED"
    again = await col.update_one({"_id": "op7", "state": "PENDING"}, {"$set": {"state": "SIGNED"}})
    assert again.matched_count == 0
    assert (await col.delete_one({"_id": "op7", "state": "SIGNED"})).deleted_count == 1
    assert await col.find_one({"_id": "op7"}) is None
    assert await col.count_documents({}) == DOCS - 1


async def test_object_ids_and_other_id_types(db: AsyncDatabase[Doc]) -> None:
    c = db["mixed"]
    oid = ObjectId()
    await c.insert_many([{"_id": oid, "v": 1}, {"_id": 5, "v": 2}, {"_id": "5", "v": 3}, {"v": 4}])
    assert (await c.find_one({"_id": oid, "v": 1}) or {}).get("v") == 1
    assert await c.find_one({"_id": oid, "v": 2}) is None
    assert (await c.find_one({"_id": 5, "v": 2}) or {}).get("v") == 2  # numbers: no index, still found
    assert (await c.find_one({"_id": "5", "v": 3}) or {}).get("v") == 3
    assert await c.find_one({"_id": "5", "v": 2}) is None
    assert (await c.update_one({"_id": 5, "v": 2}, {"$set": {"v": 20}})).modified_count == 1
    assert (await c.find_one({"_id": "5"}) or {}).get("v") == 3
