"""services.common.mongo and idempotency against a real FerretDB (no fakes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from google.protobuf import wrappers_pb2
from pymongo.errors import DuplicateKeyError

from services.common import errors
from services.common.idempotency import INDEXES, IdempotencyStore
from services.common.mongo import IndexSpec, ServiceDatabase
from services.common.settings import parse_settings
from tests.harness.ferretdb import FerretDB


@pytest.fixture
async def db(ferretdb: FerretDB, mongo_db_name: str) -> AsyncIterator[ServiceDatabase]:
    settings = parse_settings(
        SERVICE_NAME="usdt_manager", MONGODB_URI=ferretdb.uri, PAYMENT_DB_NAME=mongo_db_name
    )
    database = ServiceDatabase.connect(settings)
    await database.ping()
    yield database
    await database.close()


async def test_collections_are_prefixed_and_indexes_bootstrap_idempotently(db: ServiceDatabase) -> None:
    spec = IndexSpec("transfers", [("tx_id", 1)], unique=True)
    await db.bootstrap([spec])
    await db.bootstrap([spec])  # start-up repeats it on every restart
    col = db.collection("transfers")
    assert col.name == "usdt_manager_transfers"
    names = {ix["name"] async for ix in await col.list_indexes()}
    assert "tx_id_1" in names
    await col.insert_one({"tx_id": "ab", "amount": 2**62})
    with pytest.raises(DuplicateKeyError):
        await col.insert_one({"tx_id": "ab"})
    doc = await col.find_one({"tx_id": "ab"})
    assert doc is not None and doc["amount"] == 2**62


async def test_idempotent_mutation_runs_once(db: ServiceDatabase) -> None:
    await db.bootstrap(INDEXES)
    store = IdempotencyStore(db)
    calls = 0

    async def mutate() -> wrappers_pb2.StringValue:
        nonlocal calls
        calls += 1
        return wrappers_pb2.StringValue(value=f"result-{calls}")

    req = wrappers_pb2.Int64Value(value=5)
    first = await store.run_once("Transfer", "r1", req, wrappers_pb2.StringValue, mutate)
    again = await store.run_once("Transfer", "r1", req, wrappers_pb2.StringValue, mutate)
    assert first.value == again.value == "result-1" and calls == 1
    with pytest.raises(errors.FailedPrecondition) as err:
        await store.run_once(
            "Transfer", "r1", wrappers_pb2.Int64Value(value=6), wrappers_pb2.StringValue, mutate
        )
    assert err.value.reason == "REQUEST_ID_REUSED"
    other = await store.run_once("Approve", "r1", req, wrappers_pb2.StringValue, mutate)
    assert other.value == "result-2"


async def test_failed_mutation_releases_the_key(db: ServiceDatabase) -> None:
    await db.bootstrap(INDEXES)
    store = IdempotencyStore(db)

    async def boom() -> wrappers_pb2.StringValue:
        raise errors.Unavailable("node down")

    async def ok() -> wrappers_pb2.StringValue:
        return wrappers_pb2.StringValue(value="ok")

    req = wrappers_pb2.Int64Value(value=1)
    with pytest.raises(errors.Unavailable):
        await store.run_once("Transfer", "r2", req, wrappers_pb2.StringValue, boom)
    assert (await store.run_once("Transfer", "r2", req, wrappers_pb2.StringValue, ok)).value == "ok"


async def test_cancelled_caller_does_not_strand_the_key(db: ServiceDatabase) -> None:
    """A client deadline cancels the RPC mid-mutation: the mutation still completes and stores its result,
    so the retry gets it (never ABORTED for good, never a second run)."""
    await db.bootstrap(INDEXES)
    store = IdempotencyStore(db)
    gate = asyncio.Event()
    calls = 0

    async def slow() -> wrappers_pb2.StringValue:
        nonlocal calls
        calls += 1
        await gate.wait()
        return wrappers_pb2.StringValue(value="done")

    req = wrappers_pb2.Int64Value(value=3)
    first = asyncio.create_task(store.run_once("Transfer", "r3", req, wrappers_pb2.StringValue, slow))
    for _ in range(500):
        if calls:
            break
        await asyncio.sleep(0.01)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(errors.Aborted):  # still running
        await store.run_once("Transfer", "r3", req, wrappers_pb2.StringValue, slow)
    gate.set()
    again = None
    for _ in range(500):
        try:
            again = await store.run_once("Transfer", "r3", req, wrappers_pb2.StringValue, slow)
            break
        except errors.Aborted:
            await asyncio.sleep(0.01)
    assert again is not None and again.value == "done" and calls == 1
