"""A database-only attacker against the running service (MongoDB edited directly, no WALLET_ENCRYPTION_KEY):
a loosened, copied or untagged policy and lowered or forged daily-spend totals make signing fail closed
with FAILED_PRECONDITION INTEGRITY_CHECK_FAILED; changes made through the service, `seal-integrity` and
undoing the edit make it sign again."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from pymongo.database import Database
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from services.common.tron.address import private_key_to_address
from services.wallet_manager.store import WALLET_CACHE_SECONDS
from tests.harness.ferretdb import FerretDB
from tests.harness.services import Cluster
from tests.wallet_manager import txs
from tests.wallet_manager.service_support import (
    KIND,
    Client,
    admin,
    db_of,
    error_reason,
    policy,
    rid,
    started,
    trx_cost,
)

TRX = 1_000_000


@pytest.fixture(scope="module")
def svc(
    ferretdb: FerretDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, Database[Any]]]:
    with started(ferretdb, tmp_path_factory.mktemp("wm-integrity")) as cluster:
        yield cluster, db_of(ferretdb, cluster)


@pytest.fixture
def wm(svc: tuple[Cluster, Database[Any]]) -> Iterator[Client]:
    client = Client(svc[0]["wallet_manager"].target)
    try:
        yield client
    finally:
        client.close()


def imported(wm: Client, key: bytes, p: pb.SigningPolicy) -> pb.Wallet:
    req = pb.CreateWalletRequest(
        request_id=rid(),
        wallet=pb.Wallet(owner_id="integrity", kind=KIND.KIND_IMPORTED, policy=p),
        private_key=key.hex(),
    )
    return wm.call("CreateWallet", req).wallet


def sign(wm: Client, w: pb.Wallet, amount: int) -> pb.SignTransactionResponse:
    raw = txs.transfer(w.address, txs.DEST, amount)
    req = pb.SignTransactionRequest(
        request_id=rid(), wallet_id=w.wallet_id, transaction=common_pb2.Transaction(raw_data=raw)
    )
    return wm.call("SignTransaction", req, caller="usdt-manager")


def outcome(fn: Callable[[], Any]) -> str:
    try:
        fn()
    except grpc.RpcError as err:
        return f"{err.code().name}:{error_reason(err)}"
    return "ok"


def eventually(fn: Callable[[], Any], want: str) -> str:
    """The outcome of fn once it is `want`, retried while the service may still use the wallet document it
    read before the edit (store.WALLET_CACHE_SECONDS); bounded."""
    got = outcome(fn)
    for _ in range(int(WALLET_CACHE_SECONDS * 20) + 20):
        if got == want:
            break
        time.sleep(0.1)
        got = outcome(fn)
    return got


INTEGRITY = "FAILED_PRECONDITION:INTEGRITY_CHECK_FAILED"


def test_a_policy_edited_in_the_database_refuses_signing(
    svc: tuple[Cluster, Database[Any]], wm: Client
) -> None:
    cluster, db = svc
    wallets = db["wallet_manager_wallets"]
    w = imported(wm, bytes.fromhex("a1" * 32), policy(trx_per_tx=2 * TRX))
    assert sign(wm, w, TRX).signer_address == w.address
    assert outcome(lambda: sign(wm, w, 5 * TRX)) == "PERMISSION_DENIED:OVER_TX_LIMIT"
    original = wallets.find_one({"_id": w.wallet_id})
    assert original is not None

    # The attacker lifts the limit in place: nothing signs any more, not even what both policies allow.
    looser = policy(trx_per_tx=100 * TRX).SerializeToString(deterministic=True)
    wallets.update_one({"_id": w.wallet_id}, {"$set": {"policy": looser}})
    assert eventually(lambda: sign(wm, w, 5 * TRX), INTEGRITY) == INTEGRITY
    assert outcome(lambda: sign(wm, w, TRX)) == INTEGRITY
    with pytest.raises(grpc.RpcError) as err:
        sign(wm, w, TRX)
    assert "policy failed its integrity check" in str(err.value.details())
    message = pb.SignMessageRequest(request_id=rid(), wallet_id=w.wallet_id, message=b"hi")
    assert outcome(lambda: wm.call("SignMessage", message, caller="payout-router")) == INTEGRITY

    # Undone: signs again, under the original limit.
    wallets.replace_one({"_id": w.wallet_id}, original)
    assert eventually(lambda: sign(wm, w, TRX), "ok") == "ok"
    assert outcome(lambda: sign(wm, w, 5 * TRX)) == "PERMISSION_DENIED:OVER_TX_LIMIT"

    # A permissive policy copied with its tag from another wallet does not verify here.
    lax = imported(wm, bytes.fromhex("a2" * 32), policy(trx_per_tx=100 * TRX))
    donor = wallets.find_one({"_id": lax.wallet_id})
    assert donor is not None
    wallets.update_one(
        {"_id": w.wallet_id}, {"$set": {"policy": donor["policy"], "policy_tag": donor["policy_tag"]}}
    )
    assert eventually(lambda: sign(wm, w, 5 * TRX), INTEGRITY) == INTEGRITY

    # A change made through the service is tagged, and signs.
    update = pb.UpdateWalletRequest(
        request_id=rid(),
        wallet_id=w.wallet_id,
        wallet=pb.Wallet(policy=policy(trx_per_tx=10 * TRX)),
        update_mask=field_mask_pb2.FieldMask(paths=["policy"]),
    )
    wm.call("UpdateWallet", update)
    assert sign(wm, w, 5 * TRX).signer_address == w.address

    # A policy without a tag (as written before tags existed, or stripped) is refused until an operator
    # adopts the database as it is.
    wallets.update_one({"_id": w.wallet_id}, {"$unset": {"policy_tag": ""}})
    assert eventually(lambda: sign(wm, w, TRX), INTEGRITY) == INTEGRITY
    out = admin(cluster, "seal-integrity")
    assert out.returncode == 0, out.stderr
    assert "tagged 1 wallets and 0 daily_spend documents" in out.stdout
    assert eventually(lambda: sign(wm, w, TRX), "ok") == "ok"


def test_daily_spend_totals_lowered_in_the_database_refuse_signing(
    svc: tuple[Cluster, Database[Any]], wm: Client
) -> None:
    cluster, db = svc
    links = db["wallet_manager_daily_spend"]
    key = bytes.fromhex("a3" * 32)
    cost = trx_cost(txs.transfer(private_key_to_address(key), txs.DEST, TRX))
    w = imported(wm, key, policy(trx_daily=3 * cost))
    for _ in range(3):
        sign(wm, w, TRX)
    assert outcome(lambda: sign(wm, w, TRX)) == "FAILED_PRECONDITION:OVER_DAILY_LIMIT"
    chain = f"{w.wallet_id}:{datetime.now(UTC).strftime('%Y-%m-%d')}"
    head = links.find_one({"key": chain, "seq": 3})
    assert head is not None and head["totals"] == {"TRX": 3 * cost}

    def restart_and_sign() -> str:
        # A replica started after the edit reads the chain from the database (a running one keeps the
        # totals it holds in memory).
        cluster["wallet_manager"].restart()
        fresh = Client(cluster["wallet_manager"].target)
        try:
            return outcome(lambda: sign(fresh, w, TRX))
        finally:
            fresh.close()

    # The day's totals reset in place.
    links.update_one({"_id": head["_id"]}, {"$set": {"totals": {"TRX": 0}}})
    assert restart_and_sign() == INTEGRITY
    # A forged next link that starts the day over.
    links.replace_one({"_id": head["_id"]}, head)
    forged = {**head, "_id": "spend:forged", "seq": 4, "amounts": {"TRX": 0}, "totals": {"TRX": 0}}
    links.insert_one(forged)
    assert restart_and_sign() == INTEGRITY
    # Undone: the limit holds again, it is not lifted.
    links.delete_one({"_id": "spend:forged"})
    assert restart_and_sign() == "FAILED_PRECONDITION:OVER_DAILY_LIMIT"
