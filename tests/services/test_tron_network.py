"""tron-client's network RPCs over gRPC, as a real process against the devnet fixture."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from tronpay.tron_client.v1 import tron_client_pb2 as pb
from tronpay.tron_client.v1 import tron_client_pb2_grpc as pb_grpc

from services.common import errors
from tests.harness.ferretdb import FerretDB
from tests.harness.services import UNREACHABLE_NODE, ServiceFactory, ServiceProcess


@pytest.fixture(scope="module")
def tron_client(
    devnet: Any, ferretdb: FerretDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    factory = ServiceFactory(ferretdb, tmp_path_factory.mktemp("tron"))
    try:
        cluster = factory.start(
            "tron_client", node_url=devnet.url, env={"USDT_CONTRACT_ADDRESS": devnet.usdt}
        )
        yield cluster["tron_client"]
    finally:
        factory.close()


@pytest.fixture(scope="module")
def stub(tron_client: ServiceProcess) -> Iterator[pb_grpc.TronClientServiceStub]:
    with tron_client.channel() as ch:
        yield pb_grpc.TronClientServiceStub(ch)


def test_network_info_matches_the_node(stub: pb_grpc.TronClientServiceStub, devnet: Any) -> None:
    got = stub.GetNetworkInfo(pb.GetNetworkInfoRequest(), timeout=10)
    genesis = devnet.post("/wallet/getblockbynum", {"num": 0})
    node = devnet.post("/wallet/getnodeinfo")
    witnesses = devnet.post("/wallet/listwitnesses")
    assert got.network == "devnet"
    assert got.chain_id == str(int(genesis["blockID"][-8:], 16))  # TIP-712 chain id of the genesis block
    assert got.node_version == node["configNodeInfo"]["codeVersion"] and got.node_version
    assert got.witness_count == len(witnesses["witnesses"]) > 0
    assert got.usdt_contract_address == devnet.usdt


def test_height_follows_the_head(stub: pb_grpc.TronClientServiceStub, devnet: Any) -> None:
    first = stub.GetNetworkHeight(pb.GetNetworkHeightRequest(), timeout=10)
    head = devnet.post("/wallet/getnowblock")["block_header"]["raw_data"]["number"]
    assert 0 <= first.solidified_block_number <= first.head_block_number
    assert abs(head - first.head_block_number) <= 4  # cached at most ~1 s; 0.5 s blocks
    assert first.head_block_time.seconds > 0
    devnet.wait_for_block(first.head_block_number + 3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the cache entry expires within a second
        later = stub.GetNetworkHeight(pb.GetNetworkHeightRequest(), timeout=10)
        if later.head_block_number > first.head_block_number:
            break
        time.sleep(0.2)
    assert later.head_block_number > first.head_block_number
    assert later.solidified_block_number > first.solidified_block_number


def test_status_reports_reachable_synced_node(stub: pb_grpc.TronClientServiceStub, tron_client: Any) -> None:
    st = stub.GetNetworkStatus(pb.GetNetworkStatusRequest(), timeout=10)
    assert st.reachable and st.synced
    assert len(st.head_block.block_id) == 64 and st.head_block.number >= st.solidified_block.number
    assert st.solidified_block.block_time.seconds > 0
    assert st.latency.seconds == 0 and st.latency.nanos >= 0
    assert len(st.nodes) == 1 and st.nodes[0].state == pb.NodeStatus.STATE_ACTIVE
    assert st.check_time.seconds > 0


def test_fees_are_the_chain_parameters(stub: pb_grpc.TronClientServiceStub, devnet: Any) -> None:
    got = stub.GetNetworkFees(pb.GetNetworkFeesRequest(), timeout=10)
    params = {
        p["key"]: int(p.get("value", 0)) for p in devnet.post("/wallet/getchainparameters")["chainParameter"]
    }
    assert got.energy_price_sun == params["getEnergyFee"] > 0
    assert got.bandwidth_price_sun == params["getTransactionFee"] > 0
    assert got.create_account_fee_sun == params["getCreateAccountFee"]
    assert got.create_account_system_contract_fee_sun == params["getCreateNewAccountFeeInSystemContract"]
    assert got.memo_fee_sun == params.get("getMemoFee", 0)
    assert got.multi_sign_fee_sun == params.get("getMultiSignFee", 0)
    assert got.max_fee_limit_sun == params.get("getMaxFeeLimit", 0)
    again = stub.GetNetworkFees(pb.GetNetworkFeesRequest(), timeout=10)
    assert again.update_time == got.update_time  # served from the short cache


def test_unreachable_node(service_factory: ServiceFactory) -> None:
    proc = service_factory.start("tron_client", node_url=UNREACHABLE_NODE)["tron_client"]
    with proc.channel() as ch:
        stub = pb_grpc.TronClientServiceStub(ch)
        st = stub.GetNetworkStatus(pb.GetNetworkStatusRequest(), timeout=10)
        assert not st.reachable and not st.synced
        with pytest.raises(grpc.RpcError) as err:
            stub.GetNetworkHeight(pb.GetNetworkHeightRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    status = errors.status_from_error(err.value)
    assert status is not None and "NODE_UNAVAILABLE" in str(status.details[0].value)
