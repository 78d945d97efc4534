"""Two wallet-manager replicas on one database: concurrent signatures through both never pass a daily
limit together, a request_id answered by one replica is replayed by the other, and one HD account per
owner holds across replicas."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from tests.harness.ferretdb import FerretDB
from tests.harness.services import ServiceFactory
from tests.wallet_manager import txs
from tests.wallet_manager.service_support import KIND, Client, env, error_reason, policy, rid, trx_cost

TRX = 1_000_000


@pytest.fixture(scope="module")
def replicas(ferretdb: FerretDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Client]]:
    tmp: Path = tmp_path_factory.mktemp("replicas")
    factory = ServiceFactory(ferretdb, tmp)
    db_name = ferretdb.db_name()
    try:
        a = factory.start("wallet_manager", env=env(), db_name=db_name)
        b = factory.start("wallet_manager", env=env(), db_name=db_name)
        clients = [Client(a["wallet_manager"].target), Client(b["wallet_manager"].target)]
        yield clients
        for c in clients:
            c.close()
    finally:
        factory.close()


def test_daily_limit_holds_across_replicas(replicas: list[Client]) -> None:
    one = replicas[0]
    # Each transfer counts 1 TRX + i sun and its worst-case fee: room for 6 (i sums to at most 75), never 7.
    daily = 6 * trx_cost(txs.transfer(txs.DEST, txs.DEST, TRX)) + 75
    w = one.call(
        "CreateWallet",
        pb.CreateWalletRequest(
            request_id=rid(),
            wallet=pb.Wallet(owner_id="replicas", kind=KIND.KIND_IMPORTED, policy=policy(trx_daily=daily)),
            private_key="f1" * 32,
        ),
    ).wallet
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def run(i: int) -> None:
        client = replicas[i % 2]
        req = pb.SignTransactionRequest(
            request_id=rid(),
            wallet_id=w.wallet_id,
            transaction=common_pb2.Transaction(raw_data=txs.transfer(w.address, txs.DEST, TRX + i)),
        )
        start.wait(10)
        try:
            client.call("SignTransaction", req)
            out = "ok"
        except grpc.RpcError as err:
            out = f"{err.code().name}:{error_reason(err)}"
        with lock:
            outcomes.append(out)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcomes.count("ok") == 6, outcomes
    assert set(outcomes) - {"ok"} == {"FAILED_PRECONDITION:OVER_DAILY_LIMIT"}, outcomes
    for client in replicas:
        records = client.call("ListSignatures", pb.ListSignaturesRequest(wallet_id=w.wallet_id)).records
        assert len(records) == 6


def test_request_id_answered_by_one_replica_is_replayed_by_the_other(replicas: list[Client]) -> None:
    one, two = replicas
    w = one.call(
        "CreateWallet",
        pb.CreateWalletRequest(
            request_id=rid(),
            wallet=pb.Wallet(owner_id="replicas", kind=KIND.KIND_IMPORTED, policy=policy(trx_daily=5 * TRX)),
            private_key="f2" * 32,
        ),
    ).wallet
    req = pb.SignTransactionRequest(
        request_id=rid(),
        wallet_id=w.wallet_id,
        transaction=common_pb2.Transaction(raw_data=txs.transfer(w.address, txs.DEST, 2 * TRX)),
    )
    first = one.call("SignTransaction", req)
    assert two.call("SignTransaction", req) == first
    records = two.call("ListSignatures", pb.ListSignaturesRequest(wallet_id=w.wallet_id)).records
    assert len(records) == 1


def test_one_hd_account_per_owner_across_replicas(replicas: list[Client]) -> None:
    results: list[Any] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def run(i: int) -> None:
        req = pb.CreateWalletRequest(
            request_id=rid(), wallet=pb.Wallet(owner_id="replica-hd", kind=KIND.KIND_HD)
        )
        start.wait(10)
        try:
            out: Any = replicas[i % 2].call("CreateWallet", req).wallet
        except grpc.RpcError as err:
            out = error_reason(err)
        with lock:
            results.append(out)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    made = [r for r in results if isinstance(r, pb.Wallet)]
    assert len(made) == 1 and sorted(r for r in results if isinstance(r, str)) == ["HD_WALLET_EXISTS"] * 5
