"""The durable transfer stream and history: resume from a cursor, live tail, filters, ListTransfers pages.

One manual-mining devnet and one real tron-client (FerretDB) for the module; every test uses fresh
addresses, so tests only look at events touching their own addresses.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as pb
from tronpay.tron_client.v1 import tron_client_pb2_grpc as pb_grpc

from services.common import errors
from services.common.context import new_request_id
from tests.harness.devnet import Devnet, DevnetFactory
from tests.harness.ferretdb import FerretDB
from tests.harness.services import ServiceFactory

FINAL = common_pb2.TRANSFER_STATE_FINAL
INCLUDED = common_pb2.TRANSFER_STATE_INCLUDED
SOLIDITY_LAG = 3
WAIT = 30.0


@pytest.fixture(scope="module")
def chain(devnet_factory: DevnetFactory) -> Devnet:
    return devnet_factory(manual=True, solidity_lag=SOLIDITY_LAG)


@pytest.fixture(scope="module")
def stub(ferretdb: FerretDB, chain: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    factory = ServiceFactory(ferretdb, tmp_path_factory.mktemp("tron-client-stream"))
    env = {"TRON_SYNC_START_BLOCK": str(chain.status()["head"] + 1), "TRON_SYNC_POLL_SECONDS": "0.1",
           "USDT_CONTRACT_ADDRESS": chain.usdt}  # fmt: skip
    try:
        proc = factory.start("tron_client", node_url=chain.url, env=env)["tron_client"]
        with proc.channel("usdt-manager") as ch:
            yield pb_grpc.TronClientServiceStub(ch)
    finally:
        factory.close()


def touching(
    events: list[pb.StreamTransfersResponse], addresses: set[str]
) -> list[pb.StreamTransfersResponse]:
    return [e for e in events if {e.transfer.from_address, e.transfer.to_address} & addresses]


class Consumer:
    """A stream reader on a thread: events land in a queue; `close()` disconnects (cancels the call)."""

    def __init__(self, stub: Any, request: pb.StreamTransfersRequest) -> None:
        self.events: queue.Queue[pb.StreamTransfersResponse] = queue.Queue()
        self._call = stub.StreamTransfers(request, timeout=WAIT * 4)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for ev in self._call:
                self.events.put(ev)
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise

    def take(self, n: int, addresses: set[str]) -> list[pb.StreamTransfersResponse]:
        """The next n events touching `addresses` (others are skipped), failing after WAIT seconds."""
        out: list[pb.StreamTransfersResponse] = []
        deadline = time.monotonic() + WAIT
        while len(out) < n:
            try:
                ev = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"stream gave {len(out)} of {n} events")
            if touching([ev], addresses):
                out.append(ev)
        return out

    def close(self) -> None:
        self._call.cancel()
        self._thread.join(10)


def send(chain: Devnet, address: str, n: int) -> list[str]:
    """n TRX transfers to address, one block each, every block solidified afterwards."""
    txids = []
    for i in range(n):
        txids += chain.faucet(address, trx=10_000 + i)
        chain.mine(1)
    return txids


def wait_final(stub: Any, address: str, n: int) -> None:
    deadline = time.monotonic() + WAIT
    while True:
        got = stub.ListTransfers(pb.ListTransfersRequest(address=address)).transfers
        if len(got) == n and all(t.state == FINAL for t in got):
            return
        assert time.monotonic() < deadline, f"{n} FINAL transfers not recorded"
        time.sleep(0.1)


def replay(stub: Any, addresses: set[str], seconds: float = 2.0) -> list[pb.StreamTransfersResponse]:
    """Every event touching addresses that exists now (read the tailing stream for `seconds`)."""
    out = []
    try:
        for ev in stub.StreamTransfers(pb.StreamTransfersRequest(after_cursor=0), timeout=seconds):
            out.append(ev)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    return touching(out, addresses)


def test_consumer_resumes_from_its_cursor_missing_nothing(stub: Any, chain: Devnet) -> None:
    addr = chain.new_account()["address"]
    stub.WatchAddresses(
        pb.WatchAddressesRequest(request_id=new_request_id(), addresses=[addr], watcher="payment-gateway")
    )
    first_batch = send(chain, addr, 4)
    chain.mine(SOLIDITY_LAG)
    wait_final(stub, addr, 4)

    consumer = Consumer(stub, pb.StreamTransfersRequest(after_cursor=0))
    seen = consumer.take(3, {addr})
    consumer.close()  # disconnect mid-way; more happens while nobody listens
    last = seen[-1].cursor
    second_batch = send(chain, addr, 3)
    chain.mine(SOLIDITY_LAG)
    wait_final(stub, addr, 7)
    full = replay(stub, {addr})

    resumed = Consumer(stub, pb.StreamTransfersRequest(after_cursor=last))
    rest = resumed.take(len(full) - len(seen), {addr})
    resumed.close()

    got = seen + rest
    assert [(e.cursor, e.transfer) for e in got] == [(e.cursor, e.transfer) for e in full]
    cursors = [e.cursor for e in got]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    pairs = [(e.transfer.transfer_id, e.transfer.state) for e in got]
    assert len(pairs) == len(set(pairs)), "an event came twice"
    assert {tid for tid, state in pairs if state == FINAL} == {f"{t}:-1" for t in first_batch + second_batch}


def test_live_tail_and_filters(stub: Any, chain: Devnet) -> None:
    a, b = chain.new_account()["address"], chain.new_account()["address"]
    stub.WatchAddresses(
        pb.WatchAddressesRequest(request_id=new_request_id(), addresses=[a], watcher="wallet-manager")
    )
    stub.WatchAddresses(
        pb.WatchAddressesRequest(request_id=new_request_id(), addresses=[b], watcher="payment-gateway")
    )
    by_address = Consumer(stub, pb.StreamTransfersRequest(after_cursor=0, addresses=[a]))
    by_watcher = Consumer(stub, pb.StreamTransfersRequest(after_cursor=0, watcher="payment-gateway"))
    try:
        txa = chain.faucet(a, usdt=123)[0]
        txb = chain.faucet(b, trx=456)[0]
        chain.mine(1)
        got_a = by_address.take(1, {a, b})[0]
        got_b = by_watcher.take(1, {a, b})[0]
    finally:
        by_address.close()
        by_watcher.close()
    assert (got_a.transfer.transfer_id, got_a.transfer.state) == (f"{txa}:0", INCLUDED)
    assert got_a.transfer.asset == common_pb2.ASSET_USDT and got_a.transfer.amount == 123
    assert (got_b.transfer.transfer_id, got_b.transfer.state) == (f"{txb}:-1", INCLUDED)
    assert got_a.transfer.cursor == got_a.cursor


def test_list_transfers_pages_newest_first(stub: Any, chain: Devnet) -> None:
    addr = chain.new_account()["address"]
    stub.WatchAddresses(
        pb.WatchAddressesRequest(request_id=new_request_id(), addresses=[addr], watcher="wallet-manager")
    )
    sent = send(chain, addr, 5)
    deadline = time.monotonic() + WAIT
    while len(stub.ListTransfers(pb.ListTransfersRequest(address=addr)).transfers) < 5:
        assert time.monotonic() < deadline, "transfers not recorded"
        time.sleep(0.1)
    pages, token = [], ""
    while True:
        resp = stub.ListTransfers(pb.ListTransfersRequest(address=addr, page_size=2, page_token=token))
        pages.append([t.txid for t in resp.transfers])
        token = resp.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [t for p in pages for t in p] == list(reversed(sent))
    outgoing = stub.ListTransfers(
        pb.ListTransfersRequest(address=addr, direction=common_pb2.DIRECTION_OUTGOING)
    ).transfers
    assert list(outgoing) == []
    with pytest.raises(grpc.RpcError) as err:
        stub.ListTransfers(pb.ListTransfersRequest(address=addr, page_size=2, page_token="x" + token))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A token is bound to the filters it was issued for: with another direction it is refused.
    token = stub.ListTransfers(pb.ListTransfersRequest(address=addr, page_size=2)).next_page_token
    incoming = pb.ListTransfersRequest(
        address=addr, page_size=2, page_token=token, direction=common_pb2.DIRECTION_INCOMING
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.ListTransfers(incoming)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in str(err.value.details())
    status = errors.status_from_error(err.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details if d.Is(info.DESCRIPTOR))
    assert info.reason == "INVALID_PAGE_TOKEN"


@pytest.mark.parametrize("field", ["list", "stream"])
def test_bad_address_checksum_is_invalid_argument(stub: Any, chain: Devnet, field: str) -> None:
    good = chain.new_account()["address"]
    bad = good[:-1] + ("1" if good[-1] != "1" else "2")
    stream_request = pb.StreamTransfersRequest(addresses=[bad])
    calls = {
        "list": lambda: stub.ListTransfers(pb.ListTransfersRequest(address=bad)),
        "stream": lambda: next(iter(stub.StreamTransfers(stream_request, timeout=5))),
    }
    with pytest.raises(grpc.RpcError) as err:
        calls[field]()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
