"""services.common.mongo and idempotency against a real FerretDB (no fakes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from google.protobuf import wrappers_pb2
from pymongo.errors import DuplicateKeyError
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm_pb

from services.common import errors
from services.common.idempotency import COLLECTION, INDEXES, IdempotencyStore, idempotent
from services.common.mongo import IndexSpec, ServiceDatabase
from services.common.settings import Settings, parse_settings
from tests.harness.ferretdb import FerretDB


@pytest.fixture
async def db(ferretdb: FerretDB, mongo_db_name: str) -> AsyncIterator[ServiceDatabase]:
    settings = parse_settings(
        Settings, SERVICE_NAME="usdt_manager", MONGODB_URI=ferretdb.uri, PAYMENT_DB_NAME=mongo_db_name
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


async def test_a_retry_takes_over_a_key_whose_attempt_died(db: ServiceDatabase) -> None:
    """kill -9 mid-mutation leaves the key RUNNING; once its lease runs out the same request runs again
    (another request under the key is still refused), instead of ABORTED for good."""
    await db.bootstrap(INDEXES)
    lease = timedelta(milliseconds=300)
    dead, alive = IdempotencyStore(db, lease=lease), IdempotencyStore(db, lease=lease)
    req = wrappers_pb2.Int64Value(value=9)
    never = asyncio.Event()

    async def hang() -> wrappers_pb2.StringValue:
        await never.wait()
        raise AssertionError("unreachable")

    async def ok() -> wrappers_pb2.StringValue:
        return wrappers_pb2.StringValue(value="second attempt")

    # The first owner claims the key and then "dies": its task (and its lease renewal) is stopped.
    first = asyncio.create_task(dead.run_once("Transfer", "r4", req, wrappers_pb2.StringValue, hang))
    await asyncio.sleep(0.05)
    for task in list(dead._running):
        task.cancel()
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    with pytest.raises(errors.Aborted):  # lease still valid: the owner may be alive
        await alive.run_once("Transfer", "r4", req, wrappers_pb2.StringValue, ok)
    await asyncio.sleep(0.4)
    with pytest.raises(errors.FailedPrecondition):  # a different request never takes the key
        await alive.run_once("Transfer", "r4", wrappers_pb2.Int64Value(value=1), wrappers_pb2.StringValue, ok)
    assert (
        await alive.run_once("Transfer", "r4", req, wrappers_pb2.StringValue, ok)
    ).value == "second attempt"
    again = await dead.run_once("Transfer", "r4", req, wrappers_pb2.StringValue, hang)
    assert again.value == "second attempt"


async def test_a_running_attempt_renews_its_lease(db: ServiceDatabase) -> None:
    await db.bootstrap(INDEXES)
    lease = timedelta(milliseconds=300)
    owner, other = IdempotencyStore(db, lease=lease), IdempotencyStore(db, lease=lease)
    gate = asyncio.Event()
    calls = 0

    async def slow() -> wrappers_pb2.StringValue:
        nonlocal calls
        calls += 1
        await gate.wait()
        return wrappers_pb2.StringValue(value="once")

    req = wrappers_pb2.Int64Value(value=2)
    first = asyncio.create_task(owner.run_once("Transfer", "r5", req, wrappers_pb2.StringValue, slow))
    await asyncio.sleep(1.0)  # three lease lengths: renewed all along
    with pytest.raises(errors.Aborted):
        await other.run_once("Transfer", "r5", req, wrappers_pb2.StringValue, slow)
    gate.set()
    assert (await first).value == "once" and calls == 1


async def test_records_expire_after_retention_and_are_swept(db: ServiceDatabase) -> None:
    await db.bootstrap(INDEXES)
    store = IdempotencyStore(db, retention=timedelta(milliseconds=200))
    calls = 0

    async def mutate() -> wrappers_pb2.StringValue:
        nonlocal calls
        calls += 1
        return wrappers_pb2.StringValue(value=f"run-{calls}")

    req = wrappers_pb2.Int64Value(value=4)
    assert (await store.run_once("Transfer", "r6", req, wrappers_pb2.StringValue, mutate)).value == "run-1"
    assert (await store.run_once("Transfer", "r6", req, wrappers_pb2.StringValue, mutate)).value == "run-1"
    await store.run_once("Transfer", "r7", req, wrappers_pb2.StringValue, mutate)
    await asyncio.sleep(0.3)
    # Past retention the key is a new request (AIP-155), and the sweep deletes what is left.
    assert (await store.run_once("Transfer", "r6", req, wrappers_pb2.StringValue, mutate)).value == "run-3"
    await asyncio.sleep(0.3)
    assert await store.sweep() == 2
    assert await db.collection(COLLECTION).count_documents({}) == 0


async def test_drain_waits_for_attempts_whose_callers_left(db: ServiceDatabase) -> None:
    await db.bootstrap(INDEXES)
    store = IdempotencyStore(db)

    async def slow() -> wrappers_pb2.StringValue:
        await asyncio.sleep(0.3)
        return wrappers_pb2.StringValue(value="stored")

    req = wrappers_pb2.Int64Value(value=5)
    caller = asyncio.create_task(store.run_once("Transfer", "r8", req, wrappers_pb2.StringValue, slow))
    await asyncio.sleep(0.05)
    caller.cancel()  # the client went away; shutdown must still let the attempt store its result
    await asyncio.gather(caller, return_exceptions=True)
    await store.drain(5)
    doc = await db.collection(COLLECTION).find_one({"_id": "Transfer/r8"})
    assert doc is not None and doc["state"] == "DONE"


class _Servicer:
    def __init__(self, store: IdempotencyStore) -> None:
        self.idempotency = store
        self.calls = 0

    @idempotent(wrappers_pb2.StringValue)
    async def CreateThing(
        self, request: wm_pb.DeleteWalletRequest, context: object
    ) -> wrappers_pb2.StringValue:
        self.calls += 1
        return wrappers_pb2.StringValue(value=f"{request.request_id}:{self.calls}")


async def test_the_decorator_keys_on_the_method_and_request_id(db: ServiceDatabase) -> None:
    await db.bootstrap(INDEXES)
    servicer = _Servicer(IdempotencyStore(db))
    req = wm_pb.DeleteWalletRequest(request_id="k1", wallet_id="w")
    assert (await servicer.CreateThing(req, None)).value == "k1:1"
    assert (await servicer.CreateThing(req, None)).value == "k1:1" and servicer.calls == 1
    assert await db.collection(COLLECTION).find_one({"_id": "CreateThing/k1"}) is not None
    with pytest.raises(errors.InvalidArgument):
        await servicer.CreateThing(wm_pb.DeleteWalletRequest(wallet_id="w"), None)
    assert servicer.calls == 1
