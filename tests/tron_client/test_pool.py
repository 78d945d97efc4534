"""The node pool: scoring and state rules, then real failover against a devnet, a faulty endpoint of the
same chain (tests/tron_client/fault_proxy.py: the devnet's fault middleware in front of it) and a dead
port."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import coincurve
import grpc
import httpx
import pytest
from tronpay.tron_client.v1 import tron_client_pb2 as pb
from tronpay.tron_client.v1 import tron_client_pb2_grpc as pb_grpc

from services.common.context import new_request_id
from services.common.errors import Unavailable
from services.common.settings import SettingsError, parse_settings
from services.tron_client.node import (
    HTTP_5XX,
    RATE_LIMITED,
    TRANSPORT,
    NodeError,
    display_url,
    parse_retry_after,
)
from services.tron_client.pool import SET_ASIDE_AFTER, NodePool, NodeState
from services.tron_client.settings import TronClientSettings
from tests.harness.devnet import Devnet
from tests.harness.ferretdb import FerretDB
from tests.harness.net import free_port
from tests.harness.services import ServiceFactory
from tests.tron_client.fault_proxy import FaultProxy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings(urls: str, **extra: Any) -> TronClientSettings:
    return parse_settings(TronClientSettings, SERVICE_NAME="tron_client", TRON_NODE_URL=urls, **extra)


def err(kind: str, retry_after: float = 0.0) -> NodeError:
    return NodeError("x", kind=kind, node="n", path="p", retry_after=retry_after)


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


# ---- rules ---------------------------------------------------------------------------------------


def test_scoring_prefers_fast_current_error_free_nodes() -> None:
    clock = Clock()
    pool = NodePool(settings("http://a.example, http://b.example, http://c.example"), clock=clock)
    a, b, c = pool.nodes
    assert [n.index for n in pool.ranked()] == [0, 1, 2]  # unknown health: configuration order
    pool._success(a, 0.200)
    pool._success(b, 0.020)
    pool._success(c, 0.050)
    assert [n.index for n in pool.ranked()] == [1, 2, 0]
    pool._failure(b, err(HTTP_5XX))  # one recent error costs more than the latency gap
    assert [n.index for n in pool.ranked()] == [2, 0, 1]
    pool.note_head(a, 100)
    pool.note_head(c, 95)  # 5 blocks behind
    pool.note_head(b, 100)
    assert pool.head_lag(c) == 5 and pool.ranked()[0] is a
    clock.now += 61  # errors leave the scoring window
    assert pool.ranked()[0] is b


def test_failures_set_a_node_aside_and_429_cools_it_down() -> None:
    clock = Clock()
    pool = NodePool(settings("http://a.example,http://b.example"), clock=clock)
    a, b = pool.nodes
    for _ in range(SET_ASIDE_AFTER - 1):
        pool._failure(a, err(TRANSPORT))
    assert a.state == NodeState.ACTIVE
    pool._success(a, 0.01)  # a success resets the run
    for _ in range(SET_ASIDE_AFTER):
        pool._failure(a, err(TRANSPORT))
    assert a.state == NodeState.SET_ASIDE and pool.ranked() == [b, a]  # still a last resort
    pool._failure(b, err(RATE_LIMITED, retry_after=7))
    assert b.state == NodeState.ACTIVE and b.cooldown_until == clock.now + 7
    assert pool.ranked() == [b, a]  # cooling beats set aside
    pool._success(a, 0.01)
    a.state = NodeState.ACTIVE
    assert pool.ranked() == [a, b]
    clock.now += 8
    health = {h.url: h for h in pool.health()}
    assert health["http://b.example"].rate_limited_count == 1 and health["http://a.example"].error_count == 5


def test_urls_and_keys_configuration() -> None:
    assert display_url("https://user:pw@api.trongrid.io/?apikey=s3cret#k") == "https://api.trongrid.io"
    assert display_url("http://127.0.0.1:8091/") == "http://127.0.0.1:8091"
    assert (
        parse_retry_after("3") == 3.0 and parse_retry_after(None) == 1.0 and parse_retry_after("soon") == 1.0
    )
    assert parse_retry_after("100000") == 120.0
    s = settings("http://a.example,http://b.example", TRON_NODE_API_KEYS="ka,", TRON_NODE_API_KEY="default")
    assert [(u, k.get_secret_value()) for u, k in s.tron_nodes] == [
        ("http://a.example", "ka"),
        ("http://b.example", "default"),
    ]
    assert "ka" not in repr(s) and "default" not in repr(s)
    with pytest.raises(SettingsError) as exc:
        settings("http://a.example", TRON_NODE_API_KEYS="secret-1,secret-2")
    assert "TRON_NODE_API_KEYS" in str(exc.value) and "secret" not in str(exc.value)


# ---- real nodes, in process -----------------------------------------------------------------------


async def test_dead_node_never_breaks_calls(devnet: Devnet) -> None:
    pool = NodePool(settings(f"{dead_url()},{devnet.url}", TRON_NODE_TIMEOUT=2))
    dead, live = pool.nodes
    try:
        for _ in range(5):
            block = await pool.call("wallet/getnowblock")
            assert len(block["blockID"]) == 64
        assert len(dead.errors) == 1 and pool.ranked()[0] is live  # one failure, then avoided
        for _ in range(SET_ASIDE_AFTER):  # the health probe keeps trying it...
            await pool.probe_once()
        assert dead.state == NodeState.SET_ASIDE and live.state == NodeState.ACTIVE  # ...and sets it aside
        assert pool.head_lag(live) == 0
        await pool.probe_once()  # still dead: stays aside
        assert dead.state == NodeState.SET_ASIDE
        # Block APIs may answer with an array: call_any takes it, call insists on an object.
        assert isinstance(await pool.call_any("wallet/gettransactioninfobyblocknum", {"num": 1}), list)
        with pytest.raises(NodeError):
            await pool.call("wallet/gettransactioninfobyblocknum", {"num": 1})
        assert live.last_error.startswith("bad_response")
    finally:
        await pool.close()


async def test_only_dead_nodes_fail_with_unavailable() -> None:
    pool = NodePool(settings(f"{dead_url()},{dead_url()}", TRON_NODE_TIMEOUT=1))
    try:
        with pytest.raises(Unavailable) as exc:
            await pool.call("wallet/getnowblock")
        assert exc.value.reason == "NODE_UNAVAILABLE" and exc.value.metadata["kind"] == TRANSPORT
        attempts = sum(len(n.errors) for n in pool.nodes)
        assert attempts == pool.max_attempts  # bounded retries, spread over both nodes
        assert all(len(n.errors) >= 2 for n in pool.nodes)
        with pytest.raises(Unavailable):
            await pool.call("wallet/broadcasthex", {"transaction": "00"}, retry_safe=False)
        assert sum(len(n.errors) for n in pool.nodes) == attempts + 1  # not retry-safe: one attempt
    finally:
        await pool.close()


async def test_rate_limited_node_is_cooled_and_probed_back(devnet: Devnet) -> None:
    proxy = FaultProxy(devnet.url)
    pool = NodePool(settings(f"{proxy.url},{devnet.url}"))
    faulty, live = pool.nodes
    try:
        proxy.set_faults(rate_limit_rate=1.0, retry_after=30)
        await pool.call("wallet/getnowblock")
        assert faulty.rate_limited and faulty.cooldown_until > time.monotonic() + 25
        assert pool.ranked()[0] is live  # cooling for its Retry-After
        proxy.set_faults(error_rate=1.0)
        faulty.cooldown_until = 0.0
        for _ in range(SET_ASIDE_AFTER):
            with pytest.raises(NodeError):
                await pool.call_node(faulty, "wallet/getnowblock")
        assert faulty.state == NodeState.SET_ASIDE
        await pool.probe_once()
        assert faulty.state == NodeState.SET_ASIDE  # the probe failed
        proxy.clear_faults()
        await pool.probe_once()
        assert faulty.state == NodeState.ACTIVE and not faulty.errors and faulty.head > 0
    finally:
        await pool.close()
        proxy.stop()


# ---- the service: two endpoints of one chain (one faulty) and a dead one ---------------------------


@pytest.fixture
def faulty(devnet: Devnet) -> Iterator[FaultProxy]:
    proxy = FaultProxy(devnet.url)
    yield proxy
    proxy.stop()


def _sign(tx: Any, key: str) -> Any:
    tx.signatures.append(
        coincurve.PrivateKey(bytes.fromhex(key)).sign_recoverable(bytes.fromhex(tx.txid), hasher=None)
    )
    return tx


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
            total += float(m.group(2))
    return total


def test_service_survives_a_faulty_and_a_dead_node(
    devnet: Devnet, faulty: FaultProxy, ferretdb: FerretDB, service_factory: ServiceFactory
) -> None:
    dead = dead_url()
    env = {
        "TRON_NODE_API_KEYS": "key-for-proxy,,",
        "TRON_NODE_API_KEY": "default-key",
        "TRON_NODE_PROBE_SECONDS": "0.3",
        "USDT_CONTRACT_ADDRESS": devnet.usdt,
        "TRON_SYNC_ENABLED": "false",  # only the pool's own traffic reaches the proxy here
    }
    # The faulty endpoint comes first: the pool must learn to avoid it.
    proc = service_factory.start("tron_client", node_url=f"{faulty.url},{dead},{devnet.url}", env=env)[
        "tron_client"
    ]
    faulty.set_faults(error_rate=0.3, rate_limit_rate=0.2, retry_after=1, seed=11)  # 50 % errors and 429s
    owner = devnet.new_account()
    for txid in devnet.faucet(owner["address"], trx=100_000_000):
        devnet.wait_for_tx(txid)
    to = devnet.new_account()

    with proc.channel("usdt-manager") as ch:
        stub = pb_grpc.TronClientServiceStub(ch)
        for _ in range(30):
            acc = stub.GetAccount(pb.GetAccountRequest(address=owner["address"]), timeout=15).account
            assert acc.exists and acc.balance_sun > 0
        txids = []
        for i in range(3):
            tx = stub.BuildTransaction(
                pb.BuildTransactionRequest(
                    owner_address=owner["address"],
                    transfer=pb.TransferParams(to_address=to["address"], amount_sun=1 + i),
                ),
                timeout=15,
            ).transaction
            signed = _sign(tx, owner["private_key"])
            for _ in range(2):  # broadcasting twice (new request_id: both reach a node) is success both times
                sent = stub.BroadcastTransaction(
                    pb.BroadcastTransactionRequest(request_id=new_request_id(), transaction=signed),
                    timeout=15,
                )
                assert sent.txid == tx.txid
            txids.append(tx.txid)
        for txid in txids:
            devnet.wait_for_tx(txid)
        # The pool soon prefers the healthy node; the probe keeps meeting the faulty one's 5xx and 429s.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            counts = faulty.counts()
            if counts["error"] and counts["rate_limit"]:
                break
            stub.GetAccount(pb.GetAccountRequest(address=owner["address"]), timeout=15)
            time.sleep(0.1)
        assert counts["error"] and counts["rate_limit"], counts
        assert faulty.seen_api_keys() == ["key-for-proxy"]  # per-node key, sent as TRON-PRO-API-KEY

        # A node that keeps failing is set aside (calls keep succeeding), then probed back.
        faulty.set_faults(error_rate=1.0)
        deadline = time.monotonic() + 30
        states = {}
        while time.monotonic() < deadline:
            stub.GetAccount(pb.GetAccountRequest(address=owner["address"]), timeout=15)
            st = stub.GetNetworkStatus(pb.GetNetworkStatusRequest(), timeout=15)
            states = {n.url: n for n in st.nodes}
            if states[faulty.url].state in (pb.NodeStatus.STATE_SET_ASIDE, pb.NodeStatus.STATE_PROBING):
                break
            time.sleep(0.1)
        assert states[faulty.url].state in (pb.NodeStatus.STATE_SET_ASIDE, pb.NodeStatus.STATE_PROBING)
        assert st.reachable and states[dead].state != pb.NodeStatus.STATE_ACTIVE
        live = states[devnet.url]
        assert live.state == pb.NodeStatus.STATE_ACTIVE and live.head_block_number > 0 and live.score > 0
        assert states[faulty.url].error_count > 0 and states[faulty.url].last_error_time.seconds > 0
        assert set(states) == {faulty.url, dead, devnet.url}  # URLs only, never keys

        faulty.clear_faults()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st = stub.GetNetworkStatus(pb.GetNetworkStatusRequest(), timeout=15)
            back = {n.url: n for n in st.nodes}[faulty.url]
            if back.state == pb.NodeStatus.STATE_ACTIVE:
                break
            time.sleep(0.2)
        assert back.state == pb.NodeStatus.STATE_ACTIVE and back.head_block_number > 0
        assert back.last_success_time.seconds > 0

    metrics = httpx.get(f"http://127.0.0.1:{proc.env['METRICS_PORT']}/metrics", timeout=5).text
    assert _metric(metrics, "tron_node_errors_total", node=faulty.url, kind="http_5xx") > 0
    assert _metric(metrics, "tron_node_errors_total", node=faulty.url, kind="rate_limited") > 0
    assert _metric(metrics, "tron_node_errors_total", node=dead, kind="transport") > 0
    assert _metric(metrics, "tron_node_request_seconds_count", node=devnet.url) > 0
    assert _metric(metrics, "tron_node_state", node=dead, state="active") == 0
    assert _metric(metrics, "tron_node_head_lag_blocks", node=devnet.url) >= 0
    assert "key-for-proxy" not in metrics and "default-key" not in metrics and "default-key" not in proc.log()


def test_unavailable_when_every_node_is_down(service_factory: ServiceFactory) -> None:
    proc = service_factory.start("tron_client", node_url=f"{dead_url()},{dead_url()}")["tron_client"]
    with proc.channel("usdt-manager") as ch:
        stub = pb_grpc.TronClientServiceStub(ch)
        st = stub.GetNetworkStatus(pb.GetNetworkStatusRequest(), timeout=15)
        assert not st.reachable and len(st.nodes) == 2
        with pytest.raises(grpc.RpcError) as exc:
            stub.GetAccount(pb.GetAccountRequest(address="TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"), timeout=15)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_broadcast_whose_answer_was_lost_is_looked_up(devnet: Devnet) -> None:
    """Every broadcast attempt fails in transport, yet the transaction is on chain: success, not an error."""
    from services.common.tron import tx as ttx
    from services.tron_client.builder import BroadcastOutcome, ContractSpec, TransactionService
    from services.tron_client.network import Network

    proxy = FaultProxy(devnet.url)
    s = settings(proxy.url, TRON_NODE_TIMEOUT=2)
    pool = NodePool(s)
    txs = TransactionService(s, pool, Network(s, pool))
    owner, to = devnet.new_account(), devnet.new_account()
    for txid in devnet.faucet(owner["address"], trx=10_000_000):
        devnet.wait_for_tx(txid)
    try:

        async def signed_transfer(amount: int) -> tuple[bytes, list[bytes]]:
            value = {
                "owner_address": bytes.fromhex(owner["hex"]),
                "to_address": bytes.fromhex(to["hex"]),
                "amount": amount,
            }
            built = await txs.build(ContractSpec("TransferContract", value))
            key = coincurve.PrivateKey(bytes.fromhex(owner["private_key"]))
            return built.raw_data, [key.sign_recoverable(bytes.fromhex(built.txid), hasher=None)]

        raw, sigs = await signed_transfer(1)
        devnet.post(
            "wallet/broadcasthex", {"transaction": ttx.encode_transaction(raw, sigs).hex()}
        )  # reached
        devnet.wait_for_tx(ttx.txid(raw))
        proxy.set_faults(error_rate=1.0, paths=["/wallet/broadcasthex"])  # ...but our answers get lost
        assert await txs.broadcast(raw, sigs) == (ttx.txid(raw), BroadcastOutcome.ACCEPTED)
        assert proxy.counts()["error"] == pool.max_attempts

        raw2, sigs2 = await signed_transfer(2)  # never reached any node: the failure is reported
        with pytest.raises(Unavailable):
            await txs.broadcast(raw2, sigs2)
    finally:
        await pool.close()
        proxy.stop()


def test_hanging_node_is_a_status_not_a_hang(
    devnet: Devnet, faulty: FaultProxy, service_factory: ServiceFactory
) -> None:
    env = {"TRON_NODE_TIMEOUT": "1", "TRON_SYNC_ENABLED": "false"}
    proc = service_factory.start("tron_client", node_url=faulty.url, env=env)["tron_client"]
    faulty.set_faults(hang_rate=1.0, hang_seconds=20)
    with proc.channel("usdt-manager") as ch:
        stub = pb_grpc.TronClientServiceStub(ch)
        st = stub.GetNetworkStatus(pb.GetNetworkStatusRequest(), timeout=5)  # per-call budget, not 20 s
        assert not st.reachable and st.nodes[0].url == faulty.url
        with pytest.raises(grpc.RpcError) as exc:
            stub.GetNetworkHeight(pb.GetNetworkHeightRequest(), timeout=5)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert faulty.counts()["hang"] >= 2
