"""Conformance: single-document conditional writes are atomic on the test database server.

On MongoDB each single-document write is atomic: of N concurrent guarded updates (`{"_id": x, "state":
"PENDING"}` -> SIGNED) exactly one wins, and a `$lte`-guarded `$inc` never overshoots. FerretDB v1 reads the
document and writes it back in two separate SQLite transactions, so without the write serialiser in
scripts/ferretdb/serialize.go several of them win. The state machines of every service rely on this
(DEVELOPERS.md), so these tests hammer one FerretDB from concurrent tasks, several clients and several
processes, and count winners. `make bench-ferretdb` measures what the serialiser costs.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any

import pytest
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from tests.harness.ferretdb import FerretDB

Doc = dict[str, Any]
CONTENDERS = 20  # concurrent attempts per document
DOCS = 5


@pytest.fixture
async def db(ferretdb: FerretDB, mongo_db_name: str) -> AsyncIterator[AsyncDatabase[Doc]]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(ferretdb.uri, maxPoolSize=100)
    yield client[mongo_db_name]
    await client.drop_database(mongo_db_name)
    await client.close()


async def _race(attempts: Iterable[Awaitable[bool]]) -> int:
    """Run all attempts at once; the number that reported a win."""
    return sum(await asyncio.gather(*attempts))


async def _pending(col: AsyncCollection[Doc], n: int = DOCS) -> list[str]:
    ids = [f"p{i}" for i in range(n)]
    await col.insert_many([{"_id": i, "state": "PENDING", "by": None} for i in ids])
    return ids


async def test_guarded_inc_never_overshoots(db: AsyncDatabase[Doc]) -> None:
    col = db["budget"]
    await col.insert_one({"_id": "b", "spent": 0})

    async def spend() -> bool:
        res = await col.update_one({"_id": "b", "spent": {"$lte": 4}}, {"$inc": {"spent": 1}})
        return res.modified_count == 1

    winners = await _race(spend() for _ in range(30))
    doc = await col.find_one({"_id": "b"})
    print(f"\n$inc guarded by spent<=4, 30 concurrent: {winners} matched, spent={doc and doc['spent']}")
    assert (winners, doc) == (5, {"_id": "b", "spent": 5})


@pytest.mark.parametrize("op", ["update_one", "find_one_and_update"])
async def test_state_transition_has_one_winner(db: AsyncDatabase[Doc], op: str) -> None:
    col = db["payouts"]
    ids = await _pending(col)

    async def attempt(doc_id: str, tag: int) -> bool:
        guard = {"_id": doc_id, "state": "PENDING"}
        change = {"$set": {"state": "SIGNED", "by": tag}}
        if op == "update_one":
            return (await col.update_one(guard, change)).modified_count == 1
        after = await col.find_one_and_update(guard, change, return_document=ReturnDocument.AFTER)
        return after is not None and after["by"] == tag

    winners = await _race(attempt(i, t) for t in range(CONTENDERS) for i in ids)
    docs = await col.find().to_list()
    print(f"\n{op} PENDING->SIGNED, {DOCS} docs x {CONTENDERS}: {winners} winners")
    assert winners == DOCS
    assert all(d["state"] == "SIGNED" and d["by"] is not None for d in docs)


async def test_find_one_and_delete_and_delete_one_have_one_winner(db: AsyncDatabase[Doc]) -> None:
    col = db["claims"]
    ids = await _pending(col, 2 * DOCS)

    async def take(doc_id: str) -> bool:
        return await col.find_one_and_delete({"_id": doc_id, "state": "PENDING"}) is not None

    async def drop(doc_id: str) -> bool:
        return (await col.delete_one({"_id": doc_id, "state": "PENDING"})).deleted_count == 1

    taken = await _race(take(i) for _ in range(CONTENDERS) for i in ids[:DOCS])
    dropped = await _race(drop(i) for _ in range(CONTENDERS) for i in ids[DOCS:])
    print(f"\nfind_one_and_delete {taken} winners, delete_one {dropped} winners (of {DOCS} docs each)")
    assert (taken, dropped) == (DOCS, DOCS)
    assert await col.count_documents({}) == 0


@pytest.mark.parametrize("key", ["_id", "key"])
async def test_concurrent_upserts_make_one_document(db: AsyncDatabase[Doc], key: str) -> None:
    col = db["counters"]
    if key != "_id":
        await col.create_index("key", unique=True)
    errors: list[str] = []

    async def bump() -> bool:
        try:
            res = await col.update_one(
                {key: "k"}, {"$inc": {"n": 1}, "$setOnInsert": {"first": True}}, upsert=True
            )
        except Exception as exc:  # MongoDB retries duplicate-key upserts itself; count them
            errors.append(type(exc).__name__)
            return False
        return res.upserted_id is not None

    inserted = await _race(bump() for _ in range(CONTENDERS))
    docs = await col.find({}, {"_id": 0}).to_list()
    print(f"\nupsert on {key}, {CONTENDERS} concurrent: {inserted} inserted, errors {errors}, docs {docs}")
    assert errors == [] and inserted == 1
    expected = {"n": CONTENDERS, "first": True} | ({"key": "k"} if key != "_id" else {})
    assert docs == [expected]


# One process's share of the cross-process race: own MongoClient, one thread per contender.
_WORKER = r"""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from pymongo import MongoClient
uri, db, tag, start_at, ids = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5:]
col = MongoClient(uri, maxPoolSize=8)[db]["payouts"]
col.find_one({})  # connect before the start line
time.sleep(max(0.0, start_at - time.time()))
def run(t):
    won = []
    for i in ids:
        by = f"{tag}.{t}"
        if col.find_one_and_update({"_id": i, "state": "PENDING"}, {"$set": {"state": "SIGNED", "by": by}}):
            won.append([i, by])
    return won
with ThreadPoolExecutor(4) as pool:
    print(json.dumps([w for ws in pool.map(run, range(4)) for w in ws]))
"""


async def test_transition_across_processes_has_one_winner(db: AsyncDatabase[Doc], ferretdb: FerretDB) -> None:
    col = db["payouts"]
    ids = await _pending(col, 4 * DOCS)
    start_at = time.time() + 2.0  # after every interpreter has started and connected
    argv = [sys.executable, "-c", _WORKER, ferretdb.uri, db.name]
    procs = [
        await asyncio.create_subprocess_exec(
            *argv, f"proc{p}", str(start_at), *ids, stdout=asyncio.subprocess.PIPE
        )
        for p in range(4)
    ]
    wins: list[list[str]] = []
    for proc in procs:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0
        wins += json.loads(out)
    final = {d["_id"]: d["by"] async for d in col.find()}
    print(f"\nfind_one_and_update across 4 processes x 4 threads, {len(ids)} docs: {len(wins)} winners")
    assert sorted(i for i, _ in wins) == sorted(ids)  # each document won exactly once
    assert dict(wins) == final  # and the stored state names that winner


async def test_relay_passes_large_messages_batches_and_cursors(db: AsyncDatabase[Doc]) -> None:
    """The serialiser relays whole wire messages: near-limit documents, document sequences, getMore."""
    col = db["bulk"]
    blob = "x" * (15 * 1024 * 1024)
    await col.insert_one({"_id": "big", "blob": blob})
    got = await col.find_one({"_id": "big"})
    assert got is not None and got["blob"] == blob
    await col.insert_many([{"_id": i, "n": i} for i in range(3000)])
    seen = [d["n"] async for d in col.find({"n": {"$gte": 0}}).sort("n", 1).batch_size(100)]
    assert seen == list(range(3000))
