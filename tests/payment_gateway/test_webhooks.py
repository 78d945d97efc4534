"""Outgoing webhooks (relay, delivery, retries, dead letters, redelivery, rotation, URL safety) and the
incoming webhook checks, against the session's FerretDB and a local receiver that verifies signatures like a
merchant.

Payments are inserted as the payments code writes them (the contract between the two): events on the payment
document and `relay_pending` set in the same guarded update."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY
from tronpay.payment_gateway.v1 import payment_gateway_pb2 as pb

from services.common import context, errors
from services.common.mongo import Document, ServiceDatabase
from services.common.settings import parse_settings
from services.payment_gateway.metrics import WEBHOOK_BACKLOG
from services.payment_gateway.settings import PaymentGatewaySettings
from services.payment_gateway.signing import (
    SignatureError,
    merchant_secret,
    parse_signature,
    sign,
    signature_header,
    verify_signature,
)
from services.payment_gateway.webhooks import (
    DELIVERIES,
    INDEXES,
    PAYMENTS,
    UNCONFIGURED,
    URL_INVALID,
    URL_NOT_ALLOWED,
    Webhooks,
    address_allowed,
    check_webhook_url,
    delivery_pb,
    event_id,
    inbound_secrets,
    url_refusal,
    verify_inbound,
)
from tests.harness.ferretdb import FerretDB
from tests.payment_gateway.webhook_receiver import WebhookReceiver

REPO = Path(__file__).resolve().parents[2]
MASTER = "master-secret-new-0123456789abcdef"
OLD_MASTER = "master-secret-old-0123456789abcdef"
MERCHANT = "m_shop"
ALL = pb.WebhookDelivery.STATE_UNSPECIFIED
EVENT_TYPES = ("payment.created", "payment.confirming", "payment.paid", "payment.refunded")


# ---- rig --------------------------------------------------------------------------------------------------


def gateway_settings(ferretdb: FerretDB, db_name: str, **overrides: Any) -> PaymentGatewaySettings:
    """Settings for a local receiver (private targets allowed) with short retry delays."""
    values: dict[str, Any] = {
        "SERVICE_NAME": "payment_gateway",
        "MONGODB_URI": ferretdb.uri,
        "PAYMENT_DB_NAME": db_name,
        "PAYMENT_WEBHOOK_MASTER_SECRETS": MASTER,
        "PAYMENT_WEBHOOK_ALLOW_PRIVATE": True,
        "PAYMENT_WEBHOOK_POLL_SECONDS": 0.05,
        "PAYMENT_WEBHOOK_FIRST_RETRY_SECONDS": 0.05,
        "PAYMENT_WEBHOOK_MAX_RETRY_SECONDS": 0.2,
        "PAYMENT_WEBHOOK_TIMEOUT_SECONDS": 5,
    }
    return parse_settings(PaymentGatewaySettings, **{**values, **overrides})


@pytest.fixture
async def db(ferretdb: FerretDB, mongo_db_name: str) -> AsyncIterator[ServiceDatabase]:
    database = ServiceDatabase.connect(gateway_settings(ferretdb, mongo_db_name))
    await database.bootstrap(INDEXES)
    yield database
    await database.close()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    endpoint = WebhookReceiver([merchant_secret(MASTER, MERCHANT)])
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


@contextlib.asynccontextmanager
async def running(settings: PaymentGatewaySettings) -> AsyncIterator[Webhooks]:
    """A started Webhooks with its own database client, as one replica of the service."""
    database = ServiceDatabase.connect(settings)
    webhooks = Webhooks(database, settings)
    webhooks.start()
    try:
        yield webhooks
    finally:
        await webhooks.stop()
        await database.close()


def make_event(seq: int) -> Document:
    return {
        "seq": seq,
        "type": EVENT_TYPES[(seq - 1) % len(EVENT_TYPES)],
        "at": datetime.now(UTC),
        "data": {"state": "PAID", "amount": "1500000", "late": False, "metadata": {"order": "o-1"}},
    }


async def add_payment(db: ServiceDatabase, pid: str, events: int, url: str, merchant: str = MERCHANT) -> None:
    await db.collection(PAYMENTS).insert_one(
        {
            "_id": pid,
            "merchant_id": merchant,
            "tenant": merchant,
            "webhook_url": url,
            "seq": events,
            "events": [make_event(seq) for seq in range(1, events + 1)],
            "relay_pending": events > 0,
            "relayed_seq": 0,
        }
    )


async def append_event(db: ServiceDatabase, pid: str) -> int:
    """The next event of a payment, appended with relay_pending in one update guarded on seq."""
    payments = db.collection(PAYMENTS)
    for _ in range(100):
        doc = await payments.find_one({"_id": pid})
        assert doc is not None
        seq = doc["seq"] + 1
        moved = await payments.update_one(
            {"_id": pid, "seq": doc["seq"]},
            {"$set": {"seq": seq, "events": [*doc["events"], make_event(seq)], "relay_pending": True}},
        )
        if moved.modified_count == 1:
            return seq
    raise AssertionError("the guarded append never won")


async def deliveries(db: ServiceDatabase, **query: Any) -> list[Document]:
    return [d async for d in db.collection(DELIVERIES).find(query)]


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def all_in_state(db: ServiceDatabase, state: str, count: int) -> bool:
    docs = await deliveries(db)
    return len(docs) == count and all(d["state"] == state for d in docs)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---- delivery ---------------------------------------------------------------------------------------------


async def test_each_event_is_delivered_once_with_a_valid_signature(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase, receiver: WebhookReceiver
) -> None:
    for p in range(3):
        await add_payment(db, f"pay_{p}", 3, receiver.url)
    await add_payment(db, "pay_nohook", 2, "")
    delivered_before = metric("tronpay_payment_webhook_attempts_total", outcome="delivered")
    async with running(gateway_settings(ferretdb, mongo_db_name)) as webhooks:
        webhooks.wake()
        await eventually(lambda: all_in_state(db, "DELIVERED", 9), "9 deliveries DELIVERED")
        seq = await append_event(db, "pay_1")  # an event after start, relayed on the payments code's wake-up
        webhooks.wake("pay_1")
        await eventually(lambda: all_in_state(db, "DELIVERED", 10), "the appended event DELIVERED")

    expected = {(event_id(f"pay_{p}", s), s) for p in range(3) for s in (1, 2, 3)} | {
        (event_id("pay_1", 4), 4)
    }
    assert seq == 4
    assert receiver.counts() == dict.fromkeys(expected, 1)
    assert receiver.rejected == 0 and receiver.requests == 10
    assert metric("tronpay_payment_webhook_attempts_total", outcome="delivered") - delivered_before == 10

    stored = {d["event_id"]: d for d in await deliveries(db)}
    for got in receiver.received:
        payload = got.payload
        assert got.delivery_id == stored[got.event_id]["_id"]
        assert got.body == stored[got.event_id]["body"]  # the exact stored bytes
        assert list(payload) == ["id", "type", "created", "payment_id", "merchant_id", "sequence", "data"]
        assert payload["type"] == EVENT_TYPES[(got.sequence - 1) % len(EVENT_TYPES)]
        assert payload["payment_id"] == stored[got.event_id]["payment_id"]
        assert payload["merchant_id"] == MERCHANT
        assert payload["data"] == {
            "state": "PAID",
            "amount": "1500000",
            "late": False,
            "metadata": {"order": "o-1"},
        }
        assert datetime.fromisoformat(str(payload["created"]).replace("Z", "+00:00")).tzinfo is not None
        assert str(payload["created"]).endswith("Z") and b" " not in got.body  # RFC 3339 UTC, compact JSON
    for doc in stored.values():
        assert (doc["attempt_count"], doc["last_status_code"], doc["last_error"]) == (1, 200, "")
        assert "lease" not in doc and "owner" not in doc

    async for payment in db.collection(PAYMENTS).find({}):
        assert payment["relay_pending"] is False and payment["relayed_seq"] == payment["seq"]
    assert await deliveries(db, payment_id="pay_nohook") == []  # no URL: relayed, nothing to deliver


async def test_an_endpoint_failing_for_a_while_gets_retried_until_it_answers(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase, receiver: WebhookReceiver
) -> None:
    failures = 3
    receiver.fail_next = failures
    await add_payment(db, "pay_retry", 1, receiver.url)
    rejected_before = metric("tronpay_payment_webhook_attempts_total", outcome="rejected")
    async with running(gateway_settings(ferretdb, mongo_db_name)) as webhooks:
        webhooks.wake("pay_retry")
        await eventually(lambda: all_in_state(db, "DELIVERED", 1), "the delivery DELIVERED after retries")
    [doc] = await deliveries(db)
    assert doc["attempt_count"] == failures + 1
    assert (doc["last_status_code"], doc["last_error"]) == (200, "")
    assert receiver.requests == failures + 1
    assert receiver.counts() == {(event_id("pay_retry", 1), 1): 1}
    assert metric("tronpay_payment_webhook_attempts_total", outcome="rejected") - rejected_before == failures


async def test_a_delivery_is_dead_lettered_after_its_retry_window(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase, receiver: WebhookReceiver
) -> None:
    receiver.fail_next = 10**6
    receiver.fail_status = 503
    await add_payment(db, "pay_dead", 1, receiver.url)
    dead_before = metric("tronpay_payment_webhook_dead_letters_total")
    settings = gateway_settings(
        ferretdb,
        mongo_db_name,
        PAYMENT_WEBHOOK_FIRST_RETRY_SECONDS=0.05,
        PAYMENT_WEBHOOK_MAX_RETRY_SECONDS=0.1,
        PAYMENT_WEBHOOK_RETRY_WINDOW_SECONDS=0.5,
    )
    async with running(settings) as webhooks:
        webhooks.wake("pay_dead")
        await eventually(lambda: all_in_state(db, "FAILED", 1), "the delivery FAILED")
    [doc] = await deliveries(db)
    assert (doc["last_status_code"], doc["last_error"]) == (503, "HTTP 503")
    assert doc["attempt_count"] >= 2 and receiver.requests == doc["attempt_count"]
    assert (doc["update_time"] - doc["create_time"]).total_seconds() >= 0.5  # retried for the whole window
    assert metric("tronpay_payment_webhook_dead_letters_total") - dead_before == 1
    assert receiver.received == []


async def test_redelivery_sends_the_same_event_under_a_new_delivery_id(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase, receiver: WebhookReceiver
) -> None:
    await add_payment(db, "pay_again", 2, receiver.url)
    async with running(gateway_settings(ferretdb, mongo_db_name)) as webhooks:
        webhooks.wake("pay_again")
        await eventually(lambda: all_in_state(db, "DELIVERED", 2), "both events DELIVERED")
        [first] = await deliveries(db, event_id=event_id("pay_again", 2))
        again = await webhooks.redeliver(first["_id"], "redeliver-req-1")
        repeated = await webhooks.redeliver(first["_id"], "redeliver-req-1")  # the same request: the same one
        await eventually(lambda: all_in_state(db, "DELIVERED", 3), "the redelivery DELIVERED")
        with pytest.raises(errors.NotFound) as missing:
            await webhooks.redeliver("whd_missing", "redeliver-req-2")
        assert missing.value.reason == "WEBHOOK_DELIVERY_NOT_FOUND"

    assert repeated["_id"] == again["_id"] != first["_id"] and again["redelivery_of"] == first["_id"]
    assert (again["event_id"], again["sequence"], again["body"]) == (first["event_id"], 2, first["body"])
    copies = [r for r in receiver.received if r.event_id == first["event_id"]]
    assert [r.delivery_id for r in copies] == [first["_id"], again["_id"]]
    assert {r.body for r in copies} == {first["body"]} and {r.sequence for r in copies} == {2}
    assert receiver.counts()[(event_id("pay_again", 1), 1)] == 1


async def test_two_master_secrets_sign_twice_and_the_old_merchant_secret_verifies(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase
) -> None:
    old_only = WebhookReceiver([merchant_secret(OLD_MASTER, MERCHANT)])
    await old_only.start()
    try:
        await add_payment(db, "pay_rotate", 1, old_only.url)
        settings = gateway_settings(
            ferretdb, mongo_db_name, PAYMENT_WEBHOOK_MASTER_SECRETS=f"{MASTER},{OLD_MASTER}"
        )
        async with running(settings) as webhooks:
            webhooks.wake("pay_rotate")
            await eventually(lambda: all_in_state(db, "DELIVERED", 1), "the delivery DELIVERED")
    finally:
        await old_only.stop()
    [got] = old_only.received
    assert old_only.rejected == 0
    timestamp, signatures = parse_signature(got.signature)
    assert signatures == [
        sign(merchant_secret(MASTER, MERCHANT), timestamp, got.body),
        sign(merchant_secret(OLD_MASTER, MERCHANT), timestamp, got.body),
    ]
    now = time.time()
    verify_signature(
        got.signature, got.body, [merchant_secret(MASTER, MERCHANT)], now, 300
    )  # the new one too
    with pytest.raises(SignatureError) as other:
        verify_signature(got.signature, got.body, [merchant_secret(MASTER, "m_other")], now, 300)
    assert other.value.reason == "MISMATCH"


def test_the_merchant_secret_is_the_documented_hmac() -> None:
    expected = hmac.new(MASTER.encode(), b"webhook:" + MERCHANT.encode(), hashlib.sha256).hexdigest()
    assert merchant_secret(MASTER, MERCHANT) == expected
    assert (
        merchant_secret(MASTER, "m_other") != expected and merchant_secret(OLD_MASTER, MERCHANT) != expected
    )
    body = b'{"id":"evt_1"}'
    assert (
        sign(expected, 1700000000, body)
        == hmac.new(expected.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    )


async def test_without_a_master_secret_nothing_is_sent_and_the_backlog_shows_it(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase, receiver: WebhookReceiver
) -> None:
    await add_payment(db, "pay_signed_elsewhere", 1, receiver.url)
    # Recorded by a replica that has the secret (not delivering), then seen by one that has none.
    await Webhooks(db, gateway_settings(ferretdb, mongo_db_name)).relay_once()
    await add_payment(db, "pay_unsigned", 1, receiver.url)
    WEBHOOK_BACKLOG.set(-1)  # whatever an earlier test left: only this test's count may satisfy the wait
    async with running(
        gateway_settings(ferretdb, mongo_db_name, PAYMENT_WEBHOOK_MASTER_SECRETS="")
    ) as webhooks:
        webhooks.wake("pay_unsigned")

        async def waiting() -> bool:
            docs = await deliveries(db)
            marked = len(docs) == 2 and all(d["last_error"] == UNCONFIGURED for d in docs)
            return marked and metric("tronpay_payment_webhook_backlog") == 2

        await eventually(waiting, "both deliveries marked unsent and counted in the backlog")
    for doc in await deliveries(db):
        assert (doc["state"], doc["attempt_count"]) == ("PENDING", 0)
    assert receiver.requests == 0
    assert metric("tronpay_payment_webhook_oldest_pending_seconds") > 0


async def test_a_hanging_endpoint_does_not_hold_up_other_merchants(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase, receiver: WebhookReceiver
) -> None:
    hanging = WebhookReceiver([merchant_secret(MASTER, "m_slow")])
    hanging.gate = asyncio.Event()
    await hanging.start()
    try:
        for p in range(6):  # first in line
            await add_payment(db, f"pay_slow{p}", 1, hanging.url, merchant="m_slow")
        for p in range(6):
            await add_payment(db, f"pay_fast{p}", 1, receiver.url)
        # 4 slots: one endpoint may hold 1 of them
        settings = gateway_settings(
            ferretdb, mongo_db_name, PAYMENT_WEBHOOK_CONCURRENCY=4, PAYMENT_WEBHOOK_TIMEOUT_SECONDS=60
        )

        async def fast_delivered() -> bool:
            docs = await deliveries(db, merchant_id=MERCHANT)
            return len(docs) == 6 and all(d["state"] == "DELIVERED" for d in docs)

        async with running(settings) as webhooks:
            try:
                webhooks.wake()
                await eventually(fast_delivered, "the other merchant's deliveries DELIVERED")
                assert hanging.requests == 1 and hanging.received == []  # one slot, still hanging
            finally:
                hanging.gate.set()  # before stop(), which waits for attempts under way
            await eventually(lambda: all_in_state(db, "DELIVERED", 12), "the hanging endpoint's deliveries")
    finally:
        await hanging.stop()
    assert len(hanging.received) == 6 and len(receiver.received) == 6


# ---- replicas and crashes ---------------------------------------------------------------------------------


async def test_two_replicas_deliver_each_event_exactly_once_while_events_keep_coming(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase, receiver: WebhookReceiver
) -> None:
    payments, rounds = [f"pay_r{p}" for p in range(4)], 8
    for pid in payments:
        await add_payment(db, pid, 1, receiver.url)
    settings = gateway_settings(ferretdb, mongo_db_name)
    async with running(settings) as first, running(settings) as second:
        replicas = (first, second)
        for replica in replicas:
            replica.wake()
        for r in range(rounds):
            for pid in payments:
                await append_event(db, pid)
                replicas[r % 2].wake(pid)
        total = len(payments) * (rounds + 1)
        await eventually(lambda: all_in_state(db, "DELIVERED", total), f"{total} deliveries DELIVERED", 60)

    expected = {(event_id(pid, s), s) for pid in payments for s in range(1, rounds + 2)}
    assert receiver.counts() == dict.fromkeys(expected, 1)
    assert receiver.requests == total and receiver.rejected == 0
    assert len({r.delivery_id for r in receiver.received}) == total


async def test_a_relay_that_died_before_clearing_the_flag_creates_no_second_delivery(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase
) -> None:
    await add_payment(db, "pay_crash", 3, "https://merchant.example/hook")
    relay = Webhooks(db, gateway_settings(ferretdb, mongo_db_name))
    assert await relay.relay_once() == 1
    originals = {d["event_id"]: d["_id"] for d in await deliveries(db)}
    # The crash: two of three deliveries inserted, the flag never cleared.
    await db.collection(DELIVERIES).delete_one({"event_id": event_id("pay_crash", 3)})
    await db.collection(PAYMENTS).update_one(
        {"_id": "pay_crash"}, {"$set": {"relay_pending": True, "relayed_seq": 0}}
    )
    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 0
    docs = await deliveries(db)
    assert sorted(d["event_id"] for d in docs) == [event_id("pay_crash", s) for s in (1, 2, 3)]
    assert {d["event_id"]: d["_id"] for d in docs} == originals  # the same ids: the insert is the claim
    payment = await db.collection(PAYMENTS).find_one({"_id": "pay_crash"})
    assert payment is not None and (payment["relay_pending"], payment["relayed_seq"]) == (False, 3)


async def test_an_event_appended_during_a_relay_pass_keeps_the_payment_pending(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase
) -> None:
    await add_payment(db, "pay_race", 1, "https://merchant.example/hook")
    relay = Webhooks(db, gateway_settings(ferretdb, mongo_db_name))
    stale = await db.collection(PAYMENTS).find_one({"_id": "pay_race"})
    assert stale is not None
    await append_event(db, "pay_race")  # lands after the relay read the payment
    assert await relay._relay(stale) is False  # its flag update is refused: seq moved
    payment = await db.collection(PAYMENTS).find_one({"_id": "pay_race"})
    assert payment is not None and (payment["relay_pending"], payment["relayed_seq"]) == (True, 0)
    assert await relay.relay_once() == 1
    assert sorted(d["sequence"] for d in await deliveries(db)) == [1, 2]
    payment = await db.collection(PAYMENTS).find_one({"_id": "pay_race"})
    assert payment is not None and (payment["relay_pending"], payment["relayed_seq"]) == (False, 2)


async def test_a_payment_with_an_unusable_event_does_not_hold_up_the_others(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase
) -> None:
    await add_payment(db, "pay_bad", 1, "https://merchant.example/hook")
    await db.collection(PAYMENTS).update_one({"_id": "pay_bad"}, {"$unset": {"events.0.type": ""}})
    await add_payment(db, "pay_good", 1, "https://merchant.example/hook")
    relay = Webhooks(db, gateway_settings(ferretdb, mongo_db_name))
    assert await relay.relay_once() == 1
    assert [d["payment_id"] for d in await deliveries(db)] == ["pay_good"]
    bad = await db.collection(PAYMENTS).find_one({"_id": "pay_bad"})
    assert bad is not None and bad["relay_pending"] is True  # kept, and logged, for an operator


RELAYER = """
import asyncio, sys
from services.common.mongo import ServiceDatabase
from services.common.settings import parse_settings
from services.payment_gateway.metrics import WEBHOOK_BACKLOG
from services.payment_gateway.settings import PaymentGatewaySettings
from services.payment_gateway.webhooks import Webhooks

async def main(uri, name, master):
    settings = parse_settings(PaymentGatewaySettings, SERVICE_NAME="payment_gateway", MONGODB_URI=uri,
                              PAYMENT_DB_NAME=name, PAYMENT_WEBHOOK_MASTER_SECRETS=master)
    relay = Webhooks(ServiceDatabase.connect(settings), settings)
    print("ready", flush=True)
    while await relay.relay_once():
        pass
    print("done", flush=True)

asyncio.run(main(*sys.argv[1:4]))
"""


async def test_kill_9_during_relay_loses_no_event_and_duplicates_none(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase
) -> None:
    count, per_payment = 300, 3
    now = datetime.now(UTC)
    await db.collection(PAYMENTS).insert_many(
        [
            {
                "_id": f"pay_k{p:03d}", "merchant_id": MERCHANT, "tenant": MERCHANT,
                "webhook_url": "https://merchant.example/hook", "seq": per_payment,
                "events": [{**make_event(s), "at": now} for s in range(1, per_payment + 1)],
                "relay_pending": True, "relayed_seq": 0,
            }
            for p in range(count)
        ]
    )  # fmt: skip
    total = count * per_payment
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RELAYER, ferretdb.uri, mongo_db_name, MASTER, cwd=REPO, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        assert await proc.stdout.readline() == b"ready\n"
        col = db.collection(DELIVERIES)

        async def under_way() -> bool:
            return bool(await col.count_documents({}) >= total // 5)

        await eventually(under_way, "the relay under way")
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
        assert await proc.stdout.read() == b""  # killed before it finished
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert await col.count_documents({}) < total

    relay = Webhooks(db, gateway_settings(ferretdb, mongo_db_name))
    for _ in range(count):
        if not await relay.relay_once():
            break
    docs = await deliveries(db)
    assert len(docs) == total
    assert {d["event_id"] for d in docs} == {
        event_id(f"pay_k{p:03d}", s) for p in range(count) for s in range(1, per_payment + 1)
    }
    assert await db.collection(PAYMENTS).count_documents({"relay_pending": True}) == 0
    assert await db.collection(PAYMENTS).count_documents({"relayed_seq": per_payment}) == count


# ---- the delivery log -------------------------------------------------------------------------------------


async def test_deliveries_are_listed_newest_first_by_page(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase
) -> None:
    await add_payment(db, "pay_a", 3, "https://merchant.example/a")
    await add_payment(db, "pay_b", 1, "https://merchant.example/b", merchant="m_other")
    webhooks = Webhooks(db, gateway_settings(ferretdb, mongo_db_name))
    await webhooks.relay_once()
    everything = sorted(await deliveries(db), key=lambda d: (d["create_time"], d["_id"]), reverse=True)

    pages: list[list[str]] = []
    token = ""
    for _ in range(5):
        docs, token = await webhooks.list_deliveries("", ALL, 3, token)
        pages.append([d["_id"] for d in docs])
        if not token:
            break
    assert pages == [[d["_id"] for d in everything[:3]], [everything[3]["_id"]]]

    docs, token = await webhooks.list_deliveries("pay_a", pb.WebhookDelivery.STATE_PENDING, 0, "")
    assert [d["_id"] for d in docs] == [d["_id"] for d in everything if d["payment_id"] == "pay_a"]
    assert token == "" and all("body" not in d for d in docs)
    assert (await webhooks.list_deliveries("", pb.WebhookDelivery.STATE_DELIVERED, 0, ""))[0] == []
    _, first_token = await webhooks.list_deliveries("", ALL, 1, "")
    with pytest.raises(errors.InvalidArgument) as foreign:
        await webhooks.list_deliveries("pay_a", ALL, 1, first_token)  # a token of other filters
    assert foreign.value.reason == "INVALID_PAGE_TOKEN"

    view = delivery_pb(everything[0])
    assert view.delivery_id == everything[0]["_id"] and view.event_id == everything[0]["event_id"]
    assert view.state == pb.WebhookDelivery.STATE_PENDING and view.HasField("next_attempt_time")
    assert view.url == everything[0]["url"] and view.attempt_count == 0 and view.HasField("create_time")

    of_a = next(d["_id"] for d in everything if d["payment_id"] == "pay_a")
    scope = context.bind(context.CallContext(request_id="r", tenant="m_other"))
    try:  # a tenant sees its own deliveries only
        docs, _ = await webhooks.list_deliveries("", ALL, 0, "")
        assert [d["payment_id"] for d in docs] == ["pay_b"]
        with pytest.raises(errors.NotFound):
            await webhooks.redeliver(of_a, "req-tenant")
    finally:
        context.reset(scope)


# ---- URL safety -------------------------------------------------------------------------------------------

NOT_ALLOWED = [
    "http://127.0.0.1/hook",
    "http://127.8.9.10:8080/hook",
    "http://[::1]/hook",
    "http://[::]/hook",
    "http://0.0.0.0/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:10.1.2.3]/hook",
    "http://[64:ff9b::7f00:1]/hook",
    "http://[2002:a00:1::]/hook",
    "http://[fe80::1]/hook",
    "http://[fc00::1]/hook",
    "http://[fec0::1]/hook",
    "http://224.0.0.1/hook",
    "http://[ff02::1]/hook",
    "http://240.0.0.1/hook",
    "http://localhost/hook",
    "http://LOCALHOST.:8080/hook",
    "http://shop.localhost/hook",
    "http://printer.local/hook",
    "http://metadata.google.internal/computeMetadata",
]
INVALID = [
    "ftp://merchant.example/hook",
    "merchant.example/hook",
    "https:///hook",
    "https://user:pass@merchant.example/hook",
    "http://127.1/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://merchant.example:0/hook",
    "http://merchant.example:99999/hook",
]
ALLOWED = [
    "https://merchant.example/hook",
    "http://merchant.example:8080/hooks/tronpay?x=1",
    "https://8.8.8.8/hook",
    "https://[2001:4860:4860::8888]/hook",
    "https://[::ffff:8.8.8.8]/hook",
]


@pytest.mark.parametrize("url", NOT_ALLOWED)
def test_a_url_of_a_private_or_local_target_is_refused(url: str) -> None:
    with pytest.raises(errors.InvalidArgument) as refused:
        check_webhook_url(url, allow_private=False)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT and refused.value.reason == URL_NOT_ALLOWED
    assert [(v.field, v.reason) for v in refused.value.violations] == [("webhook_url", URL_NOT_ALLOWED)]
    check_webhook_url(url, allow_private=True)  # local development allows them


@pytest.mark.parametrize("url", INVALID)
def test_a_malformed_url_is_refused_even_where_private_targets_are_allowed(url: str) -> None:
    for allow_private in (False, True):
        violation = url_refusal(url, allow_private)
        assert violation is not None and (violation.field, violation.reason) == ("webhook_url", URL_INVALID)


@pytest.mark.parametrize("url", ALLOWED)
def test_a_public_url_is_accepted(url: str) -> None:
    check_webhook_url(url, allow_private=False)


def _loopback_name() -> str | None:
    """A host name (not one refused by name) that resolves only to non-public addresses here."""
    for name in (socket.gethostname(), "ip6-localhost"):
        try:
            answers = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except OSError:
            continue
        addresses = [ipaddress.ip_address(str(a[4][0]).split("%", 1)[0]) for a in answers]
        if (
            addresses
            and not any(map(address_allowed, addresses))
            and url_refusal(f"http://{name}/", False) is None
        ):
            return name
    return None


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase, receiver: WebhookReceiver
) -> None:
    name = _loopback_name()
    if name is None:
        pytest.skip("no host name here resolves to loopback or a private address only")
    url = f"http://{name}:{receiver.port}/hook"
    check_webhook_url(url, allow_private=False)  # a name passes when the payment is created...
    await add_payment(db, "pay_rebind", 1, url)
    await add_payment(db, "pay_literal", 1, receiver.url)  # ...and a literal loopback URL stored anyway
    refused_before = metric("tronpay_payment_webhook_attempts_total", outcome="refused")
    async with running(
        gateway_settings(ferretdb, mongo_db_name, PAYMENT_WEBHOOK_ALLOW_PRIVATE=False)
    ) as webhooks:
        webhooks.wake()

        async def both_refused() -> bool:
            docs = await deliveries(db)
            return len(docs) == 2 and all(d["attempt_count"] >= 2 for d in docs)

        await eventually(both_refused, "both deliveries attempted twice")
    by_payment = {d["payment_id"]: d for d in await deliveries(db)}
    assert by_payment["pay_rebind"]["last_error"].startswith(
        f"not sent: {name} resolves to a non-public address"
    )
    assert by_payment["pay_literal"]["last_error"].startswith("not sent: webhook_url points at a loopback")
    assert all(d["state"] == "PENDING" and d["last_status_code"] == 0 for d in by_payment.values())
    assert receiver.requests == 0  # nothing was sent
    assert metric("tronpay_payment_webhook_attempts_total", outcome="refused") - refused_before >= 4


# ---- incoming webhooks ------------------------------------------------------------------------------------

SOURCE_SECRET = "inbound-source-secret-0123456789"
SOURCE_OLD_SECRET = "inbound-source-old-secret-012345"
NOTIFICATION = b'{"id":"ntf_1","txid":"ab12","address":"TXyz"}'


def _refusal(
    header: str,
    body: bytes = NOTIFICATION,
    secrets: tuple[str, ...] = (SOURCE_SECRET,),
    now: float | None = None,
) -> errors.Unauthenticated:
    with pytest.raises(errors.Unauthenticated) as refused:
        verify_inbound(header, body, list(secrets), time.time() if now is None else now, 300)
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    return refused.value


def test_a_validly_signed_notification_is_accepted() -> None:
    now = time.time()
    header = signature_header([SOURCE_SECRET], int(now), NOTIFICATION)
    assert verify_inbound(header, NOTIFICATION, [SOURCE_SECRET], now, 300) == int(now)
    stamp, digest = header.split(",v1=")
    upper_hex = f"{stamp},v1={digest.upper()}"  # another sender's hex case
    assert verify_inbound(upper_hex, NOTIFICATION, [SOURCE_SECRET], now, 300) == int(now)
    # during the source's rotation: signed with the old secret only, both configured
    old = signature_header([SOURCE_OLD_SECRET], int(now), NOTIFICATION)
    assert verify_inbound(old, NOTIFICATION, [SOURCE_SECRET, SOURCE_OLD_SECRET], now, 300) == int(now)


def test_unsigned_forged_tampered_stale_and_future_notifications_are_refused() -> None:
    now = int(time.time())
    forged_before = metric("tronpay_payment_inbound_webhooks_total", outcome="forged")
    assert _refusal("").reason == "WEBHOOK_SIGNATURE_MISSING"
    assert _refusal("sha256=abc").reason == "WEBHOOK_SIGNATURE_MALFORMED"
    assert _refusal(f"t={now}").reason == "WEBHOOK_SIGNATURE_MALFORMED"
    assert _refusal(f"t=soon,v1={'0' * 64}").reason == "WEBHOOK_SIGNATURE_MALFORMED"
    forged = signature_header(["someone-elses-secret-0123456789"], now, NOTIFICATION)
    assert _refusal(forged).reason == "WEBHOOK_SIGNATURE_MISMATCH"
    valid = signature_header([SOURCE_SECRET], now, NOTIFICATION)
    assert _refusal(valid, body=NOTIFICATION.replace(b"ab12", b"ab13")).reason == "WEBHOOK_SIGNATURE_MISMATCH"
    assert _refusal(valid, secrets=(SOURCE_OLD_SECRET,)).reason == "WEBHOOK_SIGNATURE_MISMATCH"
    stale = signature_header([SOURCE_SECRET], now - 301, NOTIFICATION)
    assert _refusal(stale, now=now).reason == "WEBHOOK_SIGNATURE_EXPIRED"
    future = signature_header([SOURCE_SECRET], now + 301, NOTIFICATION)
    assert _refusal(future, now=now).reason == "WEBHOOK_SIGNATURE_EXPIRED"
    assert _refusal(valid, secrets=()).reason == "WEBHOOK_SOURCE_UNKNOWN"
    assert metric("tronpay_payment_inbound_webhooks_total", outcome="forged") - forged_before == 3


def test_inbound_secrets_are_read_per_source(ferretdb: FerretDB) -> None:
    settings = gateway_settings(
        ferretdb,
        "unused",
        PAYMENT_INBOUND_WEBHOOK_SECRETS=f'{{"notifier": "{SOURCE_SECRET}", '
        f'"peer": ["{SOURCE_SECRET}", "{SOURCE_OLD_SECRET}"]}}',
    )
    assert inbound_secrets(settings, "notifier") == [SOURCE_SECRET]
    assert inbound_secrets(settings, "peer") == [SOURCE_SECRET, SOURCE_OLD_SECRET]
    assert inbound_secrets(settings, "stranger") == []
    assert inbound_secrets(gateway_settings(ferretdb, "unused"), "notifier") == []


async def test_a_replayed_notification_is_seen_once(
    ferretdb: FerretDB, mongo_db_name: str, db: ServiceDatabase
) -> None:
    webhooks = Webhooks(db, gateway_settings(ferretdb, mongo_db_name))
    replayed_before = metric("tronpay_payment_inbound_webhooks_total", outcome="replayed")
    assert await webhooks.mark_seen("notifier", "ntf_1") is True
    assert await webhooks.mark_seen("notifier", "ntf_1") is False
    assert await webhooks.mark_seen("peer", "ntf_1") is True  # event ids are per source
    assert metric("tronpay_payment_inbound_webhooks_total", outcome="replayed") - replayed_before == 1
    await webhooks.forget_seen("notifier", "ntf_1")  # its processing failed: the sender's retry counts
    assert await webhooks.mark_seen("notifier", "ntf_1") is True
