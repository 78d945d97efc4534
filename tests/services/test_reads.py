"""Coalesced reads by `_id` (services/common/reads.py) against the test database: concurrent reads of one
document share database reads, yet no answer is older than a write finished before its caller asked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from services.common.reads import CoalescedReads
from tests.harness.ferretdb import FerretDB

Doc = dict[str, Any]


class Gated:
    """The real collection, counting find_one calls; while `hold` is clear, an answer read from the database
    waits before it is returned (a read in flight, slow to come back)."""

    def __init__(self, col: AsyncCollection[Doc]) -> None:
        self.col = col
        self.reads = 0
        self.reading = asyncio.Event()  # set at the first read
        self.hold = asyncio.Event()
        self.hold.set()
        self.fail: Exception | None = None

    async def find_one(self, query: Doc) -> Doc | None:
        self.reads += 1
        self.reading.set()
        if self.fail is not None:
            raise self.fail
        doc = await self.col.find_one(query)
        await self.hold.wait()
        return doc


@pytest.fixture
async def col(ferretdb: FerretDB, mongo_db_name: str) -> AsyncIterator[AsyncCollection[Doc]]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(ferretdb.uri)
    c = client[mongo_db_name]["wallets"]
    await c.insert_one({"_id": "w1", "name": "first", "policy": {"limit": 1}})
    yield c
    await client.drop_database(mongo_db_name)
    await client.close()


async def test_concurrent_reads_share_reads_and_get_their_own_copy(col: AsyncCollection[Doc]) -> None:
    gated = Gated(col)
    reads = CoalescedReads(gated)
    docs = [d for d in await asyncio.gather(*(reads.get("w1") for _ in range(50))) if d is not None]
    assert len(docs) == 50 and all(d == {"_id": "w1", "name": "first", "policy": {"limit": 1}} for d in docs)
    assert gated.reads < 50 / 5, gated.reads  # one read while the previous ran serves all who asked meanwhile
    docs[0]["policy"]["limit"] = 2  # a caller changing its copy changes nobody else's
    assert docs[1]["policy"]["limit"] == 1
    assert await reads.get("missing") is None


async def test_no_answer_is_older_than_a_write_finished_before_the_call(col: AsyncCollection[Doc]) -> None:
    gated = Gated(col)
    reads = CoalescedReads(gated)
    gated.hold.clear()
    early = asyncio.create_task(reads.get("w1"))  # its read has the old version and is slow to come back
    await gated.reading.wait()
    await asyncio.sleep(0.1)  # the database has answered it by now; the answer waits for `hold`
    await col.update_one({"_id": "w1"}, {"$set": {"name": "second"}})  # finished before `late` asks
    late = asyncio.create_task(reads.get("w1"))
    await asyncio.sleep(0.05)
    gated.hold.set()
    old, new = await early, await late
    assert old is not None and old["name"] == "first"  # asked before the write: either version is right
    assert new is not None and new["name"] == "second"  # joining the read in flight would give "first"
    assert gated.reads == 2


async def test_an_error_reaches_the_callers_of_that_read_only(col: AsyncCollection[Doc]) -> None:
    gated = Gated(col)
    reads = CoalescedReads(gated)
    gated.fail = ConnectionError("database away")
    results = await asyncio.gather(*(reads.get("w1") for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    gated.fail = None
    doc = await reads.get("w1")
    assert doc is not None and doc["name"] == "first"
