"""Block sync against a real devnet, FerretDB and a real tron-client process.

The devnet here produces blocks only when the test mines (solid = head - 3), so what is INCLUDED and what
is FINAL is decided by the test, never by timing. Waits are bounded polls of ListTransfers / the stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as pb
from tronpay.tron_client.v1 import tron_client_pb2_grpc as pb_grpc

from services.common.context import new_request_id
from services.common.errors import status_from_error
from services.common.mongo import ServiceDatabase
from services.common.pagination import DEFAULT_PAGE_SIZE
from services.common.settings import parse_settings
from services.common.tron.address import to_base58
from services.tron_client.settings import TronClientSettings
from services.tron_client.transfers import TransferStore
from tests.harness.devnet import Devnet, DevnetFactory
from tests.harness.ferretdb import FerretDB
from tests.harness.services import ServiceFactory, ServiceProcess

INCLUDED = common_pb2.TRANSFER_STATE_INCLUDED
FINAL = common_pb2.TRANSFER_STATE_FINAL
REVERTED = common_pb2.TRANSFER_STATE_REVERTED
SOLIDITY_LAG = 3
WAIT = 30.0


@pytest.fixture(scope="module")
def chain(devnet_factory: DevnetFactory) -> Devnet:
    """A devnet of this module's own that mines only on request."""
    return devnet_factory(manual=True, solidity_lag=SOLIDITY_LAG)


def start_tron_client(factory: ServiceFactory, chain: Devnet, **env: str) -> ServiceProcess:
    """tron-client syncing from the block after the current head, polling fast."""
    base = {"TRON_SYNC_START_BLOCK": str(chain.status()["head"] + 1), "TRON_SYNC_POLL_SECONDS": "0.1",
            "USDT_CONTRACT_ADDRESS": chain.usdt}  # fmt: skip
    cluster = factory.start("tron_client", node_url=chain.url, env={**base, **env})
    return cluster["tron_client"]


@pytest.fixture
def client(service_factory: ServiceFactory, chain: Devnet) -> Iterator[tuple[ServiceProcess, Any]]:
    proc = start_tron_client(service_factory, chain)
    with proc.channel("usdt-manager") as ch:
        yield proc, pb_grpc.TronClientServiceStub(ch)


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll check() until it returns something truthy; fail naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def transfers_of(stub: Any, address: str) -> list[pb.Transfer]:
    return list(stub.ListTransfers(pb.ListTransfersRequest(address=address, page_size=1000)).transfers)


def states(stub: Any, address: str) -> dict[str, int]:
    return {t.transfer_id: t.state for t in transfers_of(stub, address)}


def stream_all(stub: Any, after: int = 0, seconds: float = 2.0) -> list[pb.StreamTransfersResponse]:
    """Every event after `after` that exists now: the stream tails forever, so read it for `seconds`."""
    out: list[pb.StreamTransfersResponse] = []
    try:
        for ev in stub.StreamTransfers(pb.StreamTransfersRequest(after_cursor=after), timeout=seconds):
            out.append(ev)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    return out


def synced_to(stub: Any, chain: Devnet, proc: ServiceProcess) -> None:
    """Wait until sync applied the devnet's head (read from the process's metrics)."""
    head = chain.status()["head"]
    port = proc.env["METRICS_PORT"]

    def done() -> bool:
        import httpx

        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return False
        line = next((ln for ln in text.splitlines() if ln.startswith("tron_sync_block_number ")), "")
        return bool(line) and float(line.split()[1]) >= head

    wait_until(done, f"sync to reach block {head}")


def watch(stub: Any, *addresses: str, watcher: str = "payment-gateway") -> None:
    req = pb.WatchAddressesRequest(request_id=new_request_id(), addresses=list(addresses), watcher=watcher)
    stub.WatchAddresses(req)


def reason(err: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """The status code and ErrorInfo reason of a failed call."""
    status = status_from_error(err)
    info = error_details_pb2.ErrorInfo()
    for d in status.details if status else ():
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            d.Unpack(info)
    return err.code(), info.reason


def test_watched_trx_and_usdt_included_then_final_unwatched_ignored(client: Any, chain: Devnet) -> None:
    _, stub = client
    watched, other = chain.new_account(), chain.new_account()
    watch(stub, watched["address"])
    chain.faucet(watched["address"], trx=1_500_000, usdt=2_500_000)
    chain.faucet(other["address"], trx=1_000_000, usdt=1_000_000)
    chain.mine(1)
    got = wait_until(
        lambda: len(states(stub, watched["address"])) == 2 and transfers_of(stub, watched["address"]),
        "two INCLUDED transfers",
    )
    assert {t.state for t in got} == {INCLUDED}
    by_asset = {t.asset: t for t in got}
    assert by_asset[common_pb2.ASSET_TRX].amount == 1_500_000
    assert by_asset[common_pb2.ASSET_TRX].event_index == -1
    assert by_asset[common_pb2.ASSET_USDT].amount == 2_500_000
    assert by_asset[common_pb2.ASSET_USDT].token_address == chain.usdt
    assert by_asset[common_pb2.ASSET_USDT].event_index == 0
    assert {t.to_address for t in got} == {watched["address"]}
    block = got[0].block.number

    chain.mine(SOLIDITY_LAG)
    wait_until(
        lambda: set(states(stub, watched["address"]).values()) == {FINAL}, "FINAL after solidification"
    )
    final = transfers_of(stub, watched["address"])
    assert {t.block.number for t in final} == {block}
    assert transfers_of(stub, other["address"]) == []

    events = [e for e in stream_all(stub) if e.transfer.to_address == watched["address"]]
    seq: dict[str, list[int]] = {}
    for e in events:
        seq.setdefault(e.transfer.transfer_id, []).append(e.transfer.state)
    assert seq == {t.transfer_id: [INCLUDED, FINAL] for t in final}
    assert not [
        e for e in stream_all(stub) if other["address"] in (e.transfer.to_address, e.transfer.from_address)
    ]


def test_fork_reverts_included_and_moves_reincluded_final_never_changes(client: Any, chain: Devnet) -> None:
    _, stub = client
    acct = chain.new_account()
    addr = acct["address"]
    watch(stub, addr)
    chain.faucet(addr, trx=3_000_000)
    chain.mine(1 + SOLIDITY_LAG)
    final = wait_until(lambda: [t for t in transfers_of(stub, addr) if t.state == FINAL], "a FINAL transfer")[
        0
    ]

    # Dropped by a fork (not re-included): INCLUDED -> REVERTED.
    dropped = chain.faucet(addr, usdt=4_000_000)[0]
    chain.mine(1)
    wait_until(lambda: states(stub, addr).get(f"{dropped}:0") == INCLUDED, "the USDT transfer INCLUDED")
    chain.fork(1)
    wait_until(lambda: states(stub, addr).get(f"{dropped}:0") == REVERTED, "the dropped transfer REVERTED")

    # Re-included one block later: REVERTED, then INCLUDED in its new block, then FINAL there.
    moved = chain.faucet(addr, trx=5_000_000)[0]
    chain.mine(1)
    first = wait_until(
        lambda: [t for t in transfers_of(stub, addr) if t.txid == moved and t.state == INCLUDED],
        "moved INCLUDED",
    )[0]
    chain.fork(1, reinclude=True)
    new_block = chain.post("wallet/gettransactioninfobyid", {"value": moved})["blockNumber"]
    assert new_block == first.block.number + 1  # the devnet re-includes one block later

    def moved_included() -> list[pb.Transfer]:
        return [
            t
            for t in transfers_of(stub, addr)
            if t.txid == moved and t.state == INCLUDED and t.block.block_id != first.block.block_id
        ]

    wait_until(moved_included, "the re-included transfer INCLUDED in the new branch")
    chain.mine(SOLIDITY_LAG + 1)
    wait_until(
        lambda: set(states(stub, addr).values()) <= {FINAL, REVERTED} and len(states(stub, addr)) == 3,
        "everything settled",
    )
    now = {t.transfer_id: t for t in transfers_of(stub, addr)}
    assert now[f"{dropped}:0"].state == REVERTED
    assert now[f"{moved}:-1"].state == FINAL
    assert now[f"{moved}:-1"].block.number == new_block
    # The FINAL transfer kept its state, block and last event.
    assert now[final.transfer_id] == final

    seq: dict[str, list[int]] = {}
    for e in stream_all(stub):
        if addr in (e.transfer.to_address, e.transfer.from_address):
            seq.setdefault(e.transfer.transfer_id, []).append(e.transfer.state)
    assert seq[final.transfer_id] in ([FINAL], [INCLUDED, FINAL])  # FINAL at once if synced after solid
    assert seq[f"{dropped}:0"] == [INCLUDED, REVERTED]
    assert seq[f"{moved}:-1"] == [INCLUDED, REVERTED, INCLUDED, FINAL]


def test_restart_mid_burst_no_gap_no_duplicate(service_factory: ServiceFactory, chain: Devnet) -> None:
    proc = start_tron_client(service_factory, chain)
    addr = chain.new_account()["address"]
    with proc.channel("usdt-manager") as ch:
        watch(pb_grpc.TronClientServiceStub(ch), addr)
    sent: list[str] = []
    for round_ in range(6):
        for i in range(8):
            sent += chain.faucet(addr, trx=1_000 + round_ * 100 + i)
        chain.mine(1)
        if round_ == 1 and proc.process is not None:
            proc.process.kill()  # crash: no drain, possibly mid-write
            proc.process.wait(10)
            proc.process = None
        elif round_ == 3:
            proc.start()  # backfills rounds 2-3 while rounds 4-5 arrive
        elif round_ == 4:
            proc.stop()  # graceful stop in the middle
            proc.start()
    chain.mine(SOLIDITY_LAG)
    with proc.channel("usdt-manager") as ch:
        stub = pb_grpc.TronClientServiceStub(ch)
        synced_to(stub, chain, proc)
        wait_until(
            lambda: len(states(stub, addr)) == len(sent) and set(states(stub, addr).values()) == {FINAL},
            "every burst transfer FINAL",
        )
        assert set(states(stub, addr)) == {f"{t}:-1" for t in sent}
        events = [e for e in stream_all(stub) if e.transfer.to_address == addr]
    cursors = [e.cursor for e in events]
    assert cursors == sorted(set(cursors))
    pairs = [(e.transfer.transfer_id, e.transfer.state) for e in events]
    assert len(pairs) == len(set(pairs)), "an event was emitted twice"
    assert {tid for tid, st in pairs if st == FINAL} == {f"{t}:-1" for t in sent}
    for tid, st in pairs:
        assert st in (INCLUDED, FINAL)
        if st == INCLUDED:
            assert (tid, FINAL) in pairs


def test_failed_usdt_transfer_is_recorded_reverted(client: Any, chain: Devnet) -> None:
    """A transfer call reverting on chain (no USDT balance) is recorded REVERTED at once, never INCLUDED."""
    proc, stub = client
    payer, payee = chain.new_account(), chain.new_account()
    watch(stub, payee["address"])
    chain.faucet(payer["address"], trx=200_000_000)
    chain.mine(1)
    tx = chain.trc20_transfer_tx(payer, chain.usdt_hex, payee["hex"], 1_000_000)
    assert chain.broadcast(tx).get("result") is True
    chain.mine(1)
    info = chain.post("wallet/gettransactioninfobyid", {"value": tx["txID"]})
    assert info["receipt"]["result"] == "REVERT"
    got = wait_until(lambda: transfers_of(stub, payee["address"]), "the failed transfer recorded")
    assert [(t.transfer_id, t.state, t.amount, t.from_address) for t in got] == [
        (f"{tx['txID']}:0", REVERTED, 1_000_000, payer["address"])
    ]
    chain.mine(SOLIDITY_LAG)
    synced_to(stub, chain, proc)
    states_seen = [e.transfer.state for e in stream_all(stub) if e.transfer.txid == tx["txID"]]
    assert states_seen == [REVERTED]


def test_two_replicas_one_writer(service_factory: ServiceFactory, chain: Devnet, mongo_db_name: str) -> None:
    """Two tron-clients on one database: one holds the writer lease, the stream stays single-writer."""
    env = {"TRON_SYNC_START_BLOCK": str(chain.status()["head"] + 1), "TRON_SYNC_POLL_SECONDS": "0.1",
           "USDT_CONTRACT_ADDRESS": chain.usdt}  # fmt: skip
    first = service_factory.start("tron_client", node_url=chain.url, env=env, db_name=mongo_db_name)
    second = service_factory.start("tron_client", node_url=chain.url, env=env, db_name=mongo_db_name)
    addr = chain.new_account()["address"]
    sent: list[str] = []
    with (
        first["tron_client"].channel("usdt-manager") as ch1,
        second["tron_client"].channel("usdt-manager") as ch2,
    ):
        one, two = pb_grpc.TronClientServiceStub(ch1), pb_grpc.TronClientServiceStub(ch2)
        watch(one, addr)
        for _ in range(4):
            sent += chain.faucet(addr, trx=2_000) + chain.faucet(addr, usdt=3_000)
            chain.mine(1)
        chain.mine(SOLIDITY_LAG)
        wanted = {f"{t}:-1" for t in sent[::2]} | {f"{t}:0" for t in sent[1::2]}
        wait_until(lambda: states(two, addr) == dict.fromkeys(wanted, FINAL), "every transfer FINAL")
        events = [e for e in stream_all(one) if e.transfer.to_address == addr]
    pairs = [(e.transfer.transfer_id, e.transfer.state) for e in events]
    assert len(pairs) == len(set(pairs)), "an event was emitted twice"
    assert {tid for tid, st in pairs if st == FINAL} == wanted
    leaders = [
        p for p in (first["tron_client"], second["tron_client"]) if "holding the writer lease" in p.log()
    ]
    assert len(leaders) == 1


async def test_lease_release_leaves_another_holder_alone(ferretdb: FerretDB, mongo_db_name: str) -> None:
    """Stopping hands the writer lease over at once, but only the holder's own: releasing a lease another
    replica took must not cut that replica's term short (two writers)."""
    db = ServiceDatabase.connect(
        parse_settings(
            TronClientSettings,
            SERVICE_NAME="tron_client",
            MONGODB_URI=ferretdb.uri,
            PAYMENT_DB_NAME=mongo_db_name,
        )
    )
    store = TransferStore(db)
    try:
        assert await store.hold_lease("a") and not await store.hold_lease("b")
        await store.release_lease("b")  # not b's lease: no effect
        assert not await store.hold_lease("b")
        await store.release_lease("a")
        assert await store.hold_lease("b") and not await store.hold_lease("a")
    finally:
        await db.close()


def test_sync_through_a_faulty_endpoint(service_factory: ServiceFactory, chain: Devnet) -> None:
    """Two endpoints of the chain, one answering half of its requests with 5xx and 429: nothing is missed."""
    from tests.tron_client.fault_proxy import FaultProxy

    faulty = FaultProxy(chain.url)
    try:
        faulty.set_faults(error_rate=0.3, rate_limit_rate=0.2, retry_after=1, seed=5)
        proc = start_tron_client(
            service_factory, chain, TRON_NODE_URL=f"{faulty.url},{chain.url}", TRON_NODE_PROBE_SECONDS="0.3"
        )
        addr = chain.new_account()["address"]
        sent: list[str] = []
        with proc.channel("usdt-manager") as ch:
            stub = pb_grpc.TronClientServiceStub(ch)
            watch(stub, addr)
            for i in range(6):
                sent += chain.faucet(addr, trx=5_000 + i, usdt=6_000 + i)
                chain.mine(1)
            chain.mine(SOLIDITY_LAG)
            wanted = {f"{t}:-1" for t in sent[::2]} | {f"{t}:0" for t in sent[1::2]}
            wait_until(lambda: states(stub, addr) == dict.fromkeys(wanted, FINAL), "every transfer FINAL")
            pairs = [
                (e.transfer.transfer_id, e.transfer.state)
                for e in stream_all(stub)
                if e.transfer.to_address == addr
            ]
        assert len(pairs) == len(set(pairs))
        counts = faulty.counts()
        assert counts["error"] + counts["rate_limit"] > 0, counts  # the faulty endpoint was really used
    finally:
        faulty.stop()


def test_watch_validation_idempotency_and_listing(client: Any, chain: Devnet) -> None:
    proc, stub = client
    a, b = chain.new_account()["address"], chain.new_account()["address"]
    bad = a[:-1] + ("1" if a[-1] != "1" else "2")  # right shape, wrong checksum
    with pytest.raises(grpc.RpcError) as err:
        stub.WatchAddresses(
            pb.WatchAddressesRequest(
                request_id=new_request_id(), addresses=[a, bad], watcher="wallet-manager"
            )
        )
    assert reason(err.value) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ADDRESS")
    # request_id is required on both mutations.
    for call, request in [
        (stub.WatchAddresses, pb.WatchAddressesRequest(addresses=[a], watcher="wallet-manager")),
        (stub.UnwatchAddresses, pb.UnwatchAddressesRequest(addresses=[a], watcher="wallet-manager")),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            call(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "request_id" in str(
            err.value.details()
        )
    req = pb.WatchAddressesRequest(request_id="w-1", addresses=[a, b], watcher="wallet-manager", label="L")
    first = stub.WatchAddresses(req)
    assert [w.address for w in first.watched_addresses] == [a, b]
    assert stub.WatchAddresses(req) == first
    watch(stub, a, watcher="payment-gateway")
    pages, token = [], ""
    while True:
        resp = stub.ListWatchedAddresses(pb.ListWatchedAddressesRequest(page_size=1, page_token=token))
        pages += [(w.watcher, w.address) for w in resp.watched_addresses]
        token = resp.next_page_token
        if not token:
            break
    assert sorted(pages) == sorted([("wallet-manager", a), ("wallet-manager", b), ("payment-gateway", a)])
    with pytest.raises(grpc.RpcError) as err:
        stub.ListWatchedAddresses(pb.ListWatchedAddressesRequest(page_token="nonsense"))
    assert reason(err.value) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")
    # A token is bound to the filters it was issued for: reused with another watcher it is refused.
    token = stub.ListWatchedAddresses(
        pb.ListWatchedAddressesRequest(watcher="wallet-manager", page_size=1)
    ).next_page_token
    assert token
    with pytest.raises(grpc.RpcError) as err:
        stub.ListWatchedAddresses(pb.ListWatchedAddressesRequest(watcher="payment-gateway", page_token=token))
    assert reason(err.value) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")
    # a stays watched by payment-gateway after wallet-manager lets it go.
    removed = stub.UnwatchAddresses(
        pb.UnwatchAddressesRequest(request_id=new_request_id(), addresses=[a, b], watcher="wallet-manager")
    )
    assert removed.removed_count == 2
    chain.faucet(a, trx=7_000)
    chain.faucet(b, trx=8_000)
    chain.mine(1)
    wait_until(lambda: transfers_of(stub, a), "a transfer to the still-watched address")
    synced_to(stub, chain, proc)
    assert transfers_of(stub, b) == []


def test_watched_addresses_default_page_size(client: Any) -> None:
    _, stub = client
    many = [to_base58(b"\x41" + i.to_bytes(20, "big")) for i in range(1, DEFAULT_PAGE_SIZE + 11)]
    stub.WatchAddresses(
        pb.WatchAddressesRequest(request_id=new_request_id(), addresses=many, watcher="pager")
    )
    first = stub.ListWatchedAddresses(pb.ListWatchedAddressesRequest(watcher="pager"))
    assert len(first.watched_addresses) == DEFAULT_PAGE_SIZE == 50 and first.next_page_token
    rest = stub.ListWatchedAddresses(
        pb.ListWatchedAddressesRequest(watcher="pager", page_token=first.next_page_token)
    )
    assert len(rest.watched_addresses) == 10 and not rest.next_page_token
    got = [w.address for w in [*first.watched_addresses, *rest.watched_addresses]]
    assert sorted(got) == sorted(many) and got == sorted(got)  # entry-id order, each once


def test_network_status_reports_the_sync_cursor(client: Any, chain: Devnet) -> None:
    _, stub = client
    chain.mine(2)
    head = chain.status()["head"]
    status = wait_until(
        lambda: (s := stub.GetNetworkStatus(pb.GetNetworkStatusRequest())).sync_block.number == head and s,
        "sync to reach the head",
    )
    assert status.sync_lag_blocks == 0 and status.synced
    assert status.sync_block.block_id == chain.post("wallet/getblockbynum", {"num": head})["blockID"]
