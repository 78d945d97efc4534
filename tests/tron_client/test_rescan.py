"""What history needs from tron-client: WatchAddresses with a start block rescans an address's past (once the
blocks are solidified; bounded by TRON_RESCAN_MAX_BLOCKS; progress in the tron_rescan_* metrics), the watch
list filtered by address, ListTransfers filtered by token, balances at the solidified block, and the
solidified block's time (what proves a transaction expired)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as pb
from tronpay.tron_client.v1 import tron_client_pb2_grpc as pb_grpc

from services.common import errors
from services.common.context import new_request_id
from tests.harness.devnet import Devnet, DevnetFactory
from tests.harness.ferretdb import FerretDB
from tests.harness.services import ServiceFactory, ServiceProcess

MAX_RESCAN = 40
WAIT = 30.0


@dataclass
class Rig:
    chain: Devnet
    proc: ServiceProcess
    stub: Any


@pytest.fixture(scope="module")
def rig(
    ferretdb: FerretDB, devnet_factory: DevnetFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    chain = devnet_factory(manual=True, solidity_lag=2)
    chain.mine(MAX_RESCAN + 20)  # history deeper than a rescan may go
    factory = ServiceFactory(ferretdb, tmp_path_factory.mktemp("tron-client-rescan"))
    env = {"TRON_SYNC_POLL_SECONDS": "0.1", "USDT_CONTRACT_ADDRESS": chain.usdt,
           "TRON_RESCAN_MAX_BLOCKS": str(MAX_RESCAN), "TRON_RESCAN_BATCH_BLOCKS": "3"}  # fmt: skip
    try:
        proc = factory.start("tron_client", node_url=chain.url, env=env)["tron_client"]
        with proc.channel("usdt-manager") as ch:
            yield Rig(chain, proc, pb_grpc.TronClientServiceStub(ch))
    finally:
        factory.close()


def reasons(err: grpc.RpcError) -> tuple[str, dict[str, str]]:
    """The ErrorInfo reason and field -> reason of the BadRequest violations."""
    status = errors.status_from_error(err)
    assert status is not None
    reason, fields = "", dict[str, str]()
    for d in status.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            reason = str(info.reason)
        elif d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            d.Unpack(bad)
            fields.update((v.field, v.reason) for v in bad.field_violations)
    return reason, fields


def metric(rig: Rig, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{rig.proc.env['METRICS_PORT']}/metrics", timeout=5).text
    return float(next(x for x in text.splitlines() if x.startswith(name + " ")).split()[1])


def synced_to(rig: Rig, block: int) -> None:
    """Mine until block sync's cursor is past `block` (bounded)."""
    deadline = time.monotonic() + WAIT
    while True:
        status = rig.stub.GetNetworkStatus(pb.GetNetworkStatusRequest(), timeout=10)
        if status.sync_block.number >= block:
            return
        assert time.monotonic() < deadline, f"sync did not reach {block}: {status.sync_block}"
        rig.chain.mine(1)
        time.sleep(0.1)


def test_a_late_watch_with_a_start_block_records_the_past(rig: Rig) -> None:
    late = rig.chain.new_account()
    txids = rig.chain.faucet(late["address"], trx=3_000_000, usdt=4_000_000, mine=True)
    info = rig.chain.wait_for_tx(txids[-1])
    synced_to(rig, info["blockNumber"] + 3)  # sync applied those blocks without matching the address
    listed = rig.stub.ListTransfers(pb.ListTransfersRequest(address=late["address"]), timeout=10)
    assert not listed.transfers
    scanned = metric(rig, "tron_rescan_blocks_total")
    rig.stub.WatchAddresses(
        pb.WatchAddressesRequest(request_id=new_request_id(), addresses=[late["address"]], watcher="late",
                                 start_block=info["blockNumber"] - 2),
        timeout=10,
    )  # fmt: skip
    deadline = time.monotonic() + WAIT
    while True:
        got = rig.stub.ListTransfers(pb.ListTransfersRequest(address=late["address"]), timeout=10).transfers
        if len(got) == 2 and all(t.state == common_pb2.TRANSFER_STATE_FINAL for t in got):
            break
        assert time.monotonic() < deadline, got
        rig.chain.mine(1)
        time.sleep(0.1)
    assert {t.asset for t in got} == {common_pb2.ASSET_TRX, common_pb2.ASSET_USDT}
    assert {t.txid for t in got} == set(txids) and all(t.to_address == late["address"] for t in got)
    assert metric(rig, "tron_rescan_blocks_total") >= scanned + 3
    deadline = time.monotonic() + WAIT
    while metric(rig, "tron_rescan_jobs_open") or metric(rig, "tron_rescan_pending_blocks"):
        assert time.monotonic() < deadline  # the job ends once its last block is solidified
        rig.chain.mine(1)
        time.sleep(0.1)
    # Only this token's transfers, when asked.
    usdt_only = rig.stub.ListTransfers(
        pb.ListTransfersRequest(address=late["address"], token_address=rig.chain.usdt), timeout=10
    ).transfers
    assert [t.asset for t in usdt_only] == [common_pb2.ASSET_USDT]
    # The watch list by address.
    entries = rig.stub.ListWatchedAddresses(
        pb.ListWatchedAddressesRequest(address=late["address"]), timeout=10
    )
    assert [(w.address, w.watcher) for w in entries.watched_addresses] == [(late["address"], "late")]
    other = rig.stub.ListWatchedAddresses(
        pb.ListWatchedAddressesRequest(address=rig.chain.new_account()["address"])
    )
    assert not other.watched_addresses


def test_a_start_block_too_far_behind_is_refused(rig: Rig) -> None:
    head = rig.chain.status()["head"]
    synced_to(rig, head)
    address = rig.chain.new_account()["address"]
    too_deep = pb.WatchAddressesRequest(
        request_id=new_request_id(),
        addresses=[address],
        watcher="late",
        start_block=max(1, head - MAX_RESCAN - 5),
    )
    with pytest.raises(grpc.RpcError) as err:
        rig.stub.WatchAddresses(too_deep, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reasons(err.value)[1] == {"start_block": "RESCAN_TOO_DEEP"}


def test_solidified_balance_and_block_time(rig: Rig) -> None:
    holder = rig.chain.new_account()
    rig.chain.faucet(holder["address"], usdt=5_000_000, mine=True)
    req = pb.GetTokenBalanceRequest(address=holder["address"], token_address=rig.chain.usdt)
    head = rig.stub.GetTokenBalance(req, timeout=10)
    solid = rig.stub.GetTokenBalance(
        pb.GetTokenBalanceRequest(address=holder["address"], token_address=rig.chain.usdt, solidified=True),
        timeout=10,
    )
    assert head.balance == 5_000_000 and solid.balance == 0  # mined, not solidified yet (lag 2)
    assert solid.block.number == head.block.number - 2
    rig.chain.mine(2)
    time.sleep(1.1)  # GetNetworkHeight is cached for a second
    height = rig.stub.GetNetworkHeight(pb.GetNetworkHeightRequest(), timeout=10)
    assert (
        height.solidified_block_time.ToMilliseconds()
        == rig.chain.post("wallet/getblockbynum", {"num": height.solidified_block_number})["block_header"][
            "raw_data"
        ]["timestamp"]
    )
    assert (
        rig.stub.GetTokenBalance(
            pb.GetTokenBalanceRequest(
                address=holder["address"], token_address=rig.chain.usdt, solidified=True
            ),
            timeout=10,
        ).balance
        == 5_000_000
    )


def test_no_rescan_without_block_sync(ferretdb: FerretDB, tmp_path_factory: pytest.TempPathFactory) -> None:
    factory = ServiceFactory(ferretdb, tmp_path_factory.mktemp("tron-client-nosync"))
    try:
        proc = factory.start("tron_client", env={"TRON_SYNC_ENABLED": "false"})["tron_client"]
        with proc.channel("usdt-manager") as ch:
            stub = pb_grpc.TronClientServiceStub(ch)
            address = Devnet.new_account()["address"]
            req = pb.WatchAddressesRequest(
                request_id=new_request_id(), addresses=[address], watcher="late", start_block=5
            )
            with pytest.raises(grpc.RpcError) as err:
                stub.WatchAddresses(req, timeout=10)
    finally:
        factory.close()
    assert (
        err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reasons(err.value)[0] == "SYNC_DISABLED"
    )
