"""Two usdt-manager replicas on one database, and kill -9: a burst of transfers from several wallets through
both replicas, one of them killed at random points and restarted, ends with every transfer CONFIRMED exactly
once on chain (tronpy: every recipient holds exactly its amount, every sender lost exactly what it sent);
without kills, no transfer is ever driven by more than one replica."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from pymongo import MongoClient
from tronpay.usdt_manager.v1 import usdt_manager_pb2 as pb

from tests.harness.devnet import Devnet
from tests.harness.ferretdb import FerretDB
from tests.harness.services import Cluster, ServiceFactory, ServiceProcess
from tests.usdt_manager.support import (
    STATE,
    TRX,
    USDT,
    Chain,
    Stubs,
    Wallet,
    fresh_address,
    new_wallets,
    rid,
    start,
    wait_transfers,
)
from tests.usdt_manager.support import env as service_env

BURST = 200
WALLETS = 8
RETRY_SECONDS = 60.0  # a request cut by a kill is retried: its key is free once the dead attempt's lease ends
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass
class Replicas:
    devnet: Devnet
    cluster: Cluster  # tron-client, wallet-manager and replica a
    b: ServiceProcess
    stubs: Stubs
    chain: Chain
    mongo: MongoClient[Any]

    @property
    def a(self) -> ServiceProcess:
        return self.cluster["usdt_manager"]

    def transfers(self) -> dict[str, dict[str, Any]]:
        col = self.mongo[self.cluster.env["PAYMENT_DB_NAME"]]["usdt_manager_transfers_done"]
        return {d["_id"]: d for d in col.find({}, {"drivers": 1, "attempts": 1, "state": 1})}


@pytest.fixture(scope="module")
def replicas(
    ferretdb: FerretDB, devnet: Devnet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    factory = ServiceFactory(ferretdb, tmp_path_factory.mktemp("usdt-replicas"))
    chain = Chain(devnet)
    mongo: MongoClient[Any] = MongoClient(ferretdb.uri, tz_aware=True)
    try:
        cluster = start(factory, devnet)
        env = cluster.env
        peers = {k: env[k] for k in ("TRON_CLIENT_PORT", "WALLET_MANAGER_PORT")}
        # The second replica: its own port, the same database and peers.
        second = factory.start(
            "usdt_manager",
            node_url=devnet.url,
            db_name=env["PAYMENT_DB_NAME"],
            env={**service_env(devnet), **peers},
        )
        stubs = Stubs(cluster)
        try:
            yield Replicas(devnet, cluster, second["usdt_manager"], stubs, chain, mongo)
        finally:
            stubs.close()
    finally:
        mongo.close()
        chain.close()
        factory.close()


@dataclass(frozen=True)
class Sent:
    transfer_id: str
    to: str
    amount: int


def burst(r: Replicas, wallets: list[Wallet], count: int) -> list[Sent]:
    """`count` transfers to fresh recipients, round-robin over wallets and both replicas, from 16 threads; a
    call that fails (a killed replica) is retried with the same request_id, alternating replicas."""
    stubs = [r.stubs.usdt(r.a), r.stubs.usdt(r.b)]

    def send(i: int) -> Sent:
        wallet, to, amount = wallets[i % len(wallets)], fresh_address(), USDT + i
        req = pb.CreateTransferRequest(
            request_id=rid(), wallet_id=wallet.wallet_id, to_address=to, amount=amount
        )
        deadline = time.monotonic() + RETRY_SECONDS
        attempt = i
        while True:
            try:
                return Sent(
                    stubs[attempt % 2].CreateTransfer(req, timeout=15).transfer.transfer_id, to, amount
                )
            except grpc.RpcError as err:
                if err.code() not in RETRYABLE or time.monotonic() > deadline:
                    raise
                attempt += 1
                time.sleep(0.3)

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(send, range(count)))


def funded_wallets(r: Replicas, n: int) -> list[Wallet]:
    return new_wallets(r.devnet, r.stubs.wallets(), n, trx=2_000 * TRX, usdt=50_000 * USDT)


def test_two_replicas_never_drive_one_transfer_both(replicas: Replicas) -> None:
    wallets = funded_wallets(replicas, 2)
    sent = burst(replicas, wallets, 30)
    ids = [s.transfer_id for s in sent]
    done = wait_transfers(replicas.stubs.usdt_internal(), ids, timeout=60)
    assert all(t.state == STATE.OPERATION_STATE_CONFIRMED for t in done.values())
    docs = replicas.transfers()
    owners = {f"{d['drivers'][0]}" for d in (docs[i] for i in ids)}
    assert len(owners) == 2  # both replicas drove some
    assert all(len(docs[i]["drivers"]) == 1 and len(docs[i]["attempts"]) == 1 for i in ids)
    for s in sent:
        assert replicas.chain.balance(replicas.devnet.usdt, s.to) == s.amount


def test_kill_9_during_a_burst_pays_every_transfer_exactly_once(replicas: Replicas) -> None:
    wallets = funded_wallets(replicas, WALLETS)
    usdt = replicas.devnet.usdt
    before = {w.address: replicas.chain.balance(usdt, w.address) for w in wallets}
    stop = threading.Event()
    rng = random.Random(11)
    kills = 0

    def killer() -> None:
        nonlocal kills
        while not stop.wait(rng.uniform(0.5, 2.0)) and kills < 3:  # a kill, then a restart at once
            proc = replicas.a.process
            assert proc is not None
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            replicas.a.process = None
            replicas.a.start()

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        sent = burst(replicas, wallets, BURST)
    finally:
        stop.set()
        thread.join(60)
    assert kills >= 1 and len({s.transfer_id for s in sent}) == BURST
    done = wait_transfers(replicas.stubs.usdt_internal(), [s.transfer_id for s in sent], timeout=90)
    assert all(t.state == STATE.OPERATION_STATE_CONFIRMED for t in done.values())
    # The chain, read by tronpy: each recipient got exactly its amount, each sender lost exactly its sum.
    for s in sent:
        assert replicas.chain.balance(usdt, s.to) == s.amount
    paid = {w.address: 0 for w in wallets}
    for t in done.values():
        paid[t.from_address] += t.amount
    assert {a: before[a] - replicas.chain.balance(usdt, a) for a in paid} == paid
