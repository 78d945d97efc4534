"""The hash-chained audit log (services.common.audit), its RPC and its command, against the session FerretDB.

Hashes are recomputed here with hashlib and json from the documented format (docs/audit.md), not with the
module's own helper, so a change of the encoding cannot go unnoticed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from pymongo.asynchronous.collection import AsyncCollection
from tronpay.audit.v1 import audit_pb2, audit_pb2_grpc

from services.common import context
from services.common.access import Role
from services.common.audit import (
    GENESIS_HASH,
    INDEXES,
    Anchor,
    AuditEvent,
    AuditLog,
    BreakReason,
    ChainBreak,
    ChainChecker,
    Outcome,
    UnsafeAuditDetails,
    json_form,
)
from services.common.audit_rpc import AuditServicer, add_to_server
from services.common.mongo import Document, ServiceDatabase
from services.common.settings import Settings, parse_settings
from tests.harness.ferretdb import FerretDB

REPO = Path(__file__).resolve().parents[2]
SERVICE = "wallet_manager"

Collection = AsyncCollection[Document]


def _connect(ferretdb: FerretDB, name: str, service: str = SERVICE) -> ServiceDatabase:
    settings = parse_settings(Settings, SERVICE_NAME=service, MONGODB_URI=ferretdb.uri, PAYMENT_DB_NAME=name)
    return ServiceDatabase.connect(settings)


@pytest.fixture
async def db(ferretdb: FerretDB, mongo_db_name: str) -> AsyncIterator[ServiceDatabase]:
    database = _connect(ferretdb, mongo_db_name)
    await database.bootstrap(INDEXES)
    yield database
    await database.close()


@pytest.fixture
def raw(db: ServiceDatabase) -> Collection:
    """The log's collection itself, for tampering."""
    return db.collection("audit_log")


def _expected_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()


def _assert_chain(records: list[dict[str, Any]]) -> None:
    """Records 1..n in order, each naming its predecessor's hash and carrying its own."""
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    prev = GENESIS_HASH
    for record in records:
        assert record["prev_hash"] == prev, record["seq"]
        assert record["hash"] == _expected_hash(record), record["seq"]
        prev = record["hash"]


async def _export(log: AuditLog, after_seq: int = 0) -> list[dict[str, Any]]:
    return [r async for r in log.export(after_seq)]


async def _append_flow(log: AuditLog) -> list[dict[str, Any]]:
    """What a wallet's life writes: created, signed, refused, rotated, deleted."""
    token = context.bind(
        context.CallContext(
            request_id="req-1",
            subject="alice",
            caller="edge",
            method="/tronpay.wallet_manager.v1.WalletManagerService/CreateWallet",
            roles=frozenset({Role.OPERATOR, Role.APPROVER}),
            tenant="m1",
        )
    )
    try:
        return [
            await log.append(
                AuditEvent.WALLET_CREATED, resource="wallets/w1", details={"kind": "HD", "owner_id": "o1"}
            ),
            await log.append(
                AuditEvent.SIGNATURE_MADE,
                resource="wallets/w1",
                details={
                    "tx_id": "ab" * 32,
                    "amount": 2**62,
                    "token_address": "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
                },
            ),
            await log.append(
                AuditEvent.SIGNATURE_REFUSED,
                resource="wallets/w1",
                outcome=Outcome.DENIED,
                details={"rule": "RECEIVER_NOT_ALLOWED", "receivers": ["TX1", "TX2"]},
            ),
            await log.append(
                AuditEvent.KEY_ROTATED, resource="wallets/w1", details={"public_key": "02" * 33}
            ),
            await log.append(AuditEvent.WALLET_DELETED, resource="wallets/w1"),
        ]
    finally:
        context.reset(token)


# -- appending -----------------------------------------------------------------------------------------------
async def test_appends_form_one_ordered_chain_with_the_actor(db: ServiceDatabase) -> None:
    log = AuditLog(db)
    appended = await _append_flow(log)
    stored = await _export(log)
    assert stored == appended
    _assert_chain(stored)
    assert [r["event_type"] for r in stored] == [
        "WALLET_CREATED", "SIGNATURE_MADE", "SIGNATURE_REFUSED", "KEY_ROTATED", "WALLET_DELETED",
    ]  # fmt: skip
    first = stored[0]
    assert first["service"] == SERVICE and first["version"] == 1 and first["outcome"] == "SUCCEEDED"
    assert first["actor"] == {
        "subject": "alice",
        "caller": "edge",
        "method": "/tronpay.wallet_manager.v1.WalletManagerService/CreateWallet",
        "request_id": "req-1",
        "roles": ["approver", "operator"],
        "tenant": "m1",
    }
    assert stored[1]["details"]["amount"] == 2**62  # integers stay exact through BSON and the hash
    assert stored[2]["outcome"] == "DENIED"
    assert first["event_time"].endswith("Z") and len(first["event_time"]) == len("2025-01-02T03:04:05.678Z")

    result = await log.verify()
    assert result.intact and result.count == 5
    assert result.head == Anchor(5, stored[-1]["hash"])


async def test_an_append_outside_any_rpc_has_an_empty_actor(db: ServiceDatabase) -> None:
    log = AuditLog(db)
    record = await log.append(AuditEvent.PAYOUT_SUBMITTED, resource="payouts/p1", details={"attempt": 1})
    assert record["actor"] == {
        "subject": "", "caller": "", "method": "", "request_id": "", "roles": [], "tenant": "",
    }  # fmt: skip


async def test_a_cancelled_caller_does_not_lose_its_record(db: ServiceDatabase) -> None:
    log = AuditLog(db)
    caller = asyncio.create_task(log.append(AuditEvent.PAYOUT_APPROVED, resource="payouts/p1"))
    await asyncio.sleep(0)  # the append has started: its write is under way
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await log.drain(30)
    (record,) = await _export(log)
    assert record["resource"] == "payouts/p1"
    assert (await log.verify()).intact


async def test_unknown_events_and_outcomes_are_refused(db: ServiceDatabase) -> None:
    log = AuditLog(db)
    with pytest.raises(ValueError, match="WALLET_EXPLODED"):
        await log.append("WALLET_EXPLODED", resource="wallets/w1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="MAYBE"):
        await log.append(AuditEvent.WALLET_CREATED, resource="wallets/w1", outcome="MAYBE")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resource"):
        await log.append(AuditEvent.WALLET_CREATED, resource="")
    with pytest.raises(ValueError, match="resource"):
        await log.append(AuditEvent.WALLET_CREATED, resource="w" * 257)
    assert await _export(log) == []


# -- secrets -------------------------------------------------------------------------------------------------
MNEMONIC = "abandon " * 11 + "about"  # the BIP-39 test vector: a valid mnemonic
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
SECRET_DETAILS = {
    "private key": {"private_key": "00" * 32},
    "camelCase private key": {"wallet": {"privateKey": "x"}},
    "seed in a list": {"steps": [{"ok": True}, {"seed": "x"}]},
    "mnemonic": {"mnemonic_words": "x"},
    "password": {"Password": "x"},
    "access token": {"access_token": "x"},
    "bare token": {"token": "x"},
    "webhook secret": {"webhook_secret": "x"},
    "passphrase": {"passphrase": "x"},
    "xprv key": {"xprv": "x"},
    "api key": {"apiKey": "x"},
    "extended private key value": {"note": "xprv9s21ZrQH143K" + "3" * 95},
    "jwt value": {"note": JWT},
    "pem value": {"note": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----"},
    "mnemonic value": {"note": MNEMONIC},
}
UNSAFE_DETAILS = {
    "float": {"amount": 1.5},
    "bytes": {"raw": b"\x01"},
    "huge int": {"amount": 2**63},
    "long string": {"note": "x" * 1025},
    "too deep": {"a": {"b": {"c": {"d": {"e": 1}}}}},
    "too many keys": {f"k{i}": i for i in range(65)},
    "too long a list": {"items": list(range(65))},
    "too big": {f"k{i}": "x" * 1000 for i in range(5)},
    "mongo operator key": {"$set": 1},
    "dotted key": {"a.b": 1},
}


@pytest.mark.parametrize("details", list(SECRET_DETAILS.values()), ids=list(SECRET_DETAILS))
async def test_secrets_never_enter_the_log(db: ServiceDatabase, details: dict[str, Any]) -> None:
    log = AuditLog(db)
    with pytest.raises(UnsafeAuditDetails) as refused:
        await log.append(AuditEvent.KEY_IMPORTED, resource="wallets/w1", details=details)
    message = str(refused.value)
    assert "secret" in message
    for value in ("00" * 32, "xprv9s21", "eyJhbGci", "MHcCAQEE", "abandon"):
        assert value not in message  # the refusal names the field, never the value
    assert await _export(log) == []


async def test_a_resource_shaped_like_a_secret_is_refused(db: ServiceDatabase) -> None:
    log = AuditLog(db)
    with pytest.raises(UnsafeAuditDetails, match="resource"):
        await log.append(AuditEvent.KEY_IMPORTED, resource=JWT)
    assert await _export(log) == []


@pytest.mark.parametrize("details", list(UNSAFE_DETAILS.values()), ids=list(UNSAFE_DETAILS))
async def test_details_must_be_small_plain_json(db: ServiceDatabase, details: dict[str, Any]) -> None:
    log = AuditLog(db)
    with pytest.raises(UnsafeAuditDetails):
        await log.append(AuditEvent.POLICY_CHANGED, resource="policies/p1", details=details)
    assert await _export(log) == []


async def test_facts_that_merely_resemble_secrets_are_kept(db: ServiceDatabase) -> None:
    log = AuditLog(db)
    details = {
        "token_address": "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
        "tokenSymbol": "USDT",
        "public_key": "02" * 33,
        "key_id": "k1",
        "secret_version_count": 0,  # names a secret: refused even though the value is harmless
    }
    with pytest.raises(UnsafeAuditDetails, match="secret_version_count"):
        await log.append(AuditEvent.WEBHOOK_SECRET_ROTATED, resource="webhooks/h1", details=details)
    del details["secret_version_count"]
    record = await log.append(AuditEvent.WEBHOOK_SECRET_ROTATED, resource="webhooks/h1", details=details)
    assert record["details"] == details


# -- tampering -----------------------------------------------------------------------------------------------
async def _edit_field(raw: Collection) -> None:
    await raw.update_one({"seq": 3}, {"$set": {"outcome": "SUCCEEDED"}})


async def _edit_nested_detail(raw: Collection) -> None:
    await raw.update_one({"seq": 3}, {"$set": {"details.rule": "NONE"}})


async def _rewrite_with_a_fresh_hash(raw: Collection) -> None:
    """A careful forger recomputes the altered record's hash: the next record still names the old one."""
    doc = await raw.find_one({"seq": 3}, {"_id": 0})
    assert doc is not None
    record = {**json_form(doc), "resource": "wallets/w2"}
    await raw.update_one({"seq": 3}, {"$set": {"resource": "wallets/w2", "hash": _expected_hash(record)}})


async def _delete_middle(raw: Collection) -> None:
    await raw.delete_one({"seq": 3})


async def _delete_first(raw: Collection) -> None:
    await raw.delete_one({"seq": 1})


async def _swap_seqs(raw: Collection) -> None:
    await raw.update_one({"seq": 2}, {"$set": {"seq": -2}})  # through a free number: seq is unique
    await raw.update_one({"seq": 4}, {"$set": {"seq": 2}})
    await raw.update_one({"seq": -2}, {"$set": {"seq": 4}})


async def _swap_neighbours(raw: Collection) -> None:
    await raw.update_one({"seq": 3}, {"$set": {"seq": -3}})
    await raw.update_one({"seq": 4}, {"$set": {"seq": 3}})
    await raw.update_one({"seq": -3}, {"$set": {"seq": 4}})


async def _stray_document(raw: Collection) -> None:
    await raw.insert_one({"seq": "6", "event_type": "WALLET_CREATED"})


TAMPERING: dict[str, tuple[Callable[[Collection], Awaitable[None]], int, BreakReason]] = {
    "edited field": (_edit_field, 3, BreakReason.HASH_MISMATCH),
    "edited detail": (_edit_nested_detail, 3, BreakReason.HASH_MISMATCH),
    "rewritten with a fresh hash": (_rewrite_with_a_fresh_hash, 4, BreakReason.PREV_HASH_MISMATCH),
    "deleted record": (_delete_middle, 3, BreakReason.MISSING),
    "deleted first record": (_delete_first, 1, BreakReason.MISSING),
    "swapped seqs": (_swap_seqs, 2, BreakReason.OUT_OF_ORDER),
    "swapped neighbours": (_swap_neighbours, 3, BreakReason.OUT_OF_ORDER),
    "stray document": (_stray_document, 0, BreakReason.MALFORMED),
}


@pytest.mark.parametrize("case", list(TAMPERING.values()), ids=list(TAMPERING))
async def test_tampering_breaks_the_chain_at_the_record(
    db: ServiceDatabase,
    raw: Collection,
    case: tuple[Callable[[Collection], Awaitable[None]], int, BreakReason],
) -> None:
    tamper, seq, reason = case
    log = AuditLog(db)
    await _append_flow(log)
    assert (await log.verify()).intact
    await tamper(raw)
    result = await log.verify()
    assert result.broken is not None, "verify missed the tampering"
    assert (result.broken.seq, result.broken.reason) == (seq, reason), result.broken
    assert result.count == (seq - 1 if seq else 5)  # the records before the break still hold


async def test_a_cut_off_tail_shows_only_against_an_anchor(db: ServiceDatabase, raw: Collection) -> None:
    log = AuditLog(db)
    await _append_flow(log)
    head = (await log.verify()).head
    assert head is not None and head.seq == 5
    await raw.delete_one({"seq": 5})
    assert (await log.verify()).intact  # a shorter chain is still a valid chain: the documented limit
    result = await log.verify(head)
    assert result.broken is not None
    assert (result.broken.seq, result.broken.reason) == (5, BreakReason.TRUNCATED)
    assert (await log.verify(Anchor(3, "0" * 64))).broken == (
        ChainBreak(3, BreakReason.ANCHOR_MISMATCH, "the record's hash differs from the anchor")
    )


# -- concurrency ---------------------------------------------------------------------------------------------
APPENDER = """
import asyncio, sys
from pymongo import AsyncMongoClient
from services.common.audit import AuditEvent, AuditLog
from services.common.mongo import ServiceDatabase

async def main(uri, name, label, count):
    client = AsyncMongoClient(uri, tz_aware=True)
    log = AuditLog(ServiceDatabase(client, name, "wallet_manager"))
    await client.admin.command("ping")
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # wait for "go"
    appends = [log.append(AuditEvent.SIGNATURE_MADE, resource=f"{label}/{i}") for i in range(count)]
    await asyncio.gather(*appends)
    await client.close()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


async def test_concurrent_appenders_keep_one_gap_free_chain(
    ferretdb: FerretDB, db: ServiceDatabase, mongo_db_name: str
) -> None:
    clients, tasks_per_client, per_process = 4, 6, 12
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", APPENDER, ferretdb.uri, mongo_db_name, f"proc{p}", str(per_process),
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        for p in range(2)
    ]  # fmt: skip
    replicas = [_connect(ferretdb, mongo_db_name) for _ in range(clients)]
    try:
        for proc in processes:
            assert proc.stdout is not None and await proc.stdout.readline() == b"ready\n"
        for proc in processes:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        appends = [
            AuditLog(replica).append(AuditEvent.SIGNATURE_MADE, resource=f"client{c}/{t}")
            for c, replica in enumerate(replicas)
            for t in range(tasks_per_client)
        ]
        await asyncio.gather(*appends)
        assert [await proc.wait() for proc in processes] == [0, 0]
    finally:
        for replica in replicas:
            await replica.close()

    log = AuditLog(db)
    records = await _export(log)
    _assert_chain(records)
    expected = {f"client{c}/{t}" for c in range(clients) for t in range(tasks_per_client)}
    expected |= {f"proc{p}/{i}" for p in range(2) for i in range(per_process)}
    assert sorted(r["resource"] for r in records) == sorted(expected)  # each once, none lost
    result = await log.verify()
    assert result.intact and result.count == len(expected)


# -- export --------------------------------------------------------------------------------------------------
async def test_export_round_trips_through_json_lines(db: ServiceDatabase) -> None:
    log = AuditLog(db)
    await _append_flow(log)
    lines = [json.dumps(r, sort_keys=True, separators=(",", ":")) for r in await _export(log)]
    parsed = [json.loads(line) for line in lines]
    _assert_chain(parsed)
    checker = ChainChecker()
    assert all(checker.feed(r) is None for r in parsed) and checker.finish() is None
    assert checker.head == (await log.verify()).head
    assert [r["seq"] for r in await _export(log, after_seq=3)] == [4, 5]
    assert await _export(log, after_seq=5) == []


def test_the_enums_match_the_wire_contract() -> None:
    record = audit_pb2.AuditRecord
    assert [f"EVENT_TYPE_{e}" for e in AuditEvent] == list(record.EventType.keys())[1:]
    assert [f"OUTCOME_{o}" for o in Outcome] == list(record.Outcome.keys())[1:]
    assert [f"REASON_{r}" for r in BreakReason] == list(audit_pb2.ChainBreak.Reason.keys())[1:]


# -- the RPC -------------------------------------------------------------------------------------------------
@pytest.fixture
async def stub(db: ServiceDatabase) -> AsyncIterator[audit_pb2_grpc.AuditServiceStub]:
    server = grpc.aio.server()
    add_to_server(AuditServicer(AuditLog(db)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield audit_pb2_grpc.AuditServiceStub(channel)
    await channel.close()
    await server.stop(None)


async def test_rpc_verifies_and_exports(
    db: ServiceDatabase, raw: Collection, stub: audit_pb2_grpc.AuditServiceStub
) -> None:
    log = AuditLog(db)
    stored = await _append_flow(log)

    verified = await stub.VerifyAuditLog(audit_pb2.VerifyAuditLogRequest())
    assert verified.intact and verified.record_count == 5 and not verified.HasField("first_break")
    assert (verified.head.seq, verified.head.hash) == (5, stored[-1]["hash"])

    exported = [r.record async for r in stub.ExportAuditLog(audit_pb2.ExportAuditLogRequest(after_seq=1))]
    assert [r.seq for r in exported] == [2, 3, 4, 5]
    third = exported[1]
    assert audit_pb2.AuditRecord.EventType.Name(third.event_type) == "EVENT_TYPE_SIGNATURE_REFUSED"
    assert third.outcome == audit_pb2.AuditRecord.OUTCOME_DENIED
    assert (third.actor.subject, third.actor.tenant, list(third.actor.roles)) == (
        "alice", "m1", ["approver", "operator"],
    )  # fmt: skip
    assert json.loads(third.details_json) == stored[2]["details"]
    assert (third.prev_hash, third.hash) == (stored[1]["hash"], stored[2]["hash"])
    assert third.event_time.ToDatetime().isoformat(timespec="milliseconds") + "Z" == stored[2]["event_time"]

    await raw.delete_one({"seq": 5})
    anchored = audit_pb2.VerifyAuditLogRequest(anchor=audit_pb2.ChainAnchor(seq=5, hash=stored[-1]["hash"]))
    truncated = await stub.VerifyAuditLog(anchored)
    assert not truncated.intact and truncated.record_count == 4
    assert truncated.first_break.seq == 5
    assert truncated.first_break.reason == audit_pb2.ChainBreak.REASON_TRUNCATED

    await raw.update_one({"seq": 2}, {"$set": {"resource": "wallets/other"}})
    broken = await stub.VerifyAuditLog(audit_pb2.VerifyAuditLogRequest())
    assert not broken.intact and broken.record_count == 1 and broken.head.seq == 1
    assert (broken.first_break.seq, broken.first_break.reason) == (
        2,
        audit_pb2.ChainBreak.REASON_HASH_MISMATCH,
    )


# -- the command ---------------------------------------------------------------------------------------------
def _tool(ferretdb: FerretDB, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MONGODB_URI": ferretdb.uri, "PAYMENT_DB_NAME": name}
    return subprocess.run(
        [sys.executable, "-m", "tools.audit", *args], cwd=REPO, env=env, capture_output=True, text=True
    )


async def test_command_verifies_exports_and_names_the_break(
    ferretdb: FerretDB, db: ServiceDatabase, raw: Collection, mongo_db_name: str
) -> None:
    log = AuditLog(db)
    stored = await _append_flow(log)
    other = _connect(ferretdb, mongo_db_name, "payout_router")
    try:
        await other.bootstrap(INDEXES)
        await AuditLog(other).append(AuditEvent.PAYOUT_APPROVED, resource="payouts/p1")
    finally:
        await other.close()

    ok = await asyncio.to_thread(_tool, ferretdb, mongo_db_name, "verify")
    assert ok.returncode == 0, ok.stderr
    assert f"wallet_manager: intact, 5 records, head seq 5 hash {stored[-1]['hash']}" in ok.stdout
    assert "payout_router: intact, 1 records" in ok.stdout

    exported = await asyncio.to_thread(_tool, ferretdb, mongo_db_name, "export", "--service", SERVICE)
    assert exported.returncode == 0, exported.stderr
    assert [json.loads(line) for line in exported.stdout.splitlines()] == stored
    later = await asyncio.to_thread(
        _tool, ferretdb, mongo_db_name, "export", "--service", SERVICE, "--after-seq", "4"
    )
    assert [json.loads(line)["seq"] for line in later.stdout.splitlines()] == [5]

    made = await asyncio.to_thread(
        subprocess.run,
        ["make", "--no-print-directory", "-s", "audit-verify", "AUDIT_SERVICE=wallet_manager"],
        cwd=REPO, env={**os.environ, "MONGODB_URI": ferretdb.uri, "PAYMENT_DB_NAME": mongo_db_name},
        capture_output=True, text=True,
    )  # fmt: skip
    assert made.returncode == 0 and "wallet_manager: intact, 5 records" in made.stdout, made.stderr

    await raw.delete_one({"seq": 3})
    broken = await asyncio.to_thread(_tool, ferretdb, mongo_db_name, "verify")
    assert broken.returncode == 1
    assert "wallet_manager: BROKEN at seq 3 (MISSING): record(s) 3 missing" in broken.stdout
    assert "payout_router: intact" in broken.stdout

    anchor = f"5:{stored[-1]['hash']}"
    await raw.delete_many({"seq": {"$gte": 3}})
    cut = await asyncio.to_thread(_tool, ferretdb, mongo_db_name, "verify", "--service", SERVICE)
    assert cut.returncode == 0  # without an anchor a cut-off tail looks like a shorter log
    cut = await asyncio.to_thread(
        _tool, ferretdb, mongo_db_name, "verify", "--service", SERVICE, "--anchor", anchor
    )
    assert cut.returncode == 1 and "BROKEN at seq 3 (TRUNCATED)" in cut.stdout

    missing = await asyncio.to_thread(_tool, ferretdb, mongo_db_name, "verify", "--service", "trx_staking")
    assert missing.returncode == 2 and "no audit log for trx_staking" in missing.stderr
