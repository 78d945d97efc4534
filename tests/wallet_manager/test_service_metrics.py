"""wallet-manager's own metrics (docs/metrics.md), read from the running process's /metrics: wallet operations
once per request_id, signing refusals by reason, balance queries by outcome."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from tests.harness.ferretdb import FerretDB
from tests.harness.services import ServiceProcess
from tests.wallet_manager.service_support import KIND, Client, rid, started


@pytest.fixture(scope="module")
def proc(ferretdb: FerretDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    # No tron-client runs: balance reads fail, which is what the error outcome needs.
    with started(ferretdb, tmp_path_factory.mktemp("wm-metrics")) as cluster:
        yield cluster["wallet_manager"]


def samples(proc: ServiceProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, labels) -> value, as Prometheus would scrape them."""
    url = f"http://127.0.0.1:{proc.env['METRICS_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_operations_refusals_and_balance_queries_are_counted(proc: ServiceProcess) -> None:
    wm = Client(proc.target)
    try:
        key = bytes.fromhex("7c" * 32)
        create = pb.CreateWalletRequest(
            request_id=rid(),
            wallet=pb.Wallet(owner_id="metrics", kind=KIND.KIND_IMPORTED),
            private_key=key.hex(),
        )
        wallet = wm.call("CreateWallet", create).wallet
        wm.call("CreateWallet", create)  # a retry answers from the stored result: not a second operation
        signed = pb.SignMessageRequest(request_id=rid(), wallet_id=wallet.wallet_id, message=b"hello")
        with pytest.raises(grpc.RpcError) as err:  # the default policy allows no messages
            wm.call("SignMessage", signed)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as err:
            wm.call("GetWalletBalance", pb.GetWalletBalanceRequest(wallet_id=wallet.wallet_id))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        wm.close()
    got = samples(proc)
    assert got[("tronpay_wallet_operations_total", (("operation", "create"),))] == 1
    assert ("tronpay_wallet_operations_total", (("operation", "sign_message"),)) not in got
    assert got[("tronpay_wallet_signing_refusals_total", (("reason", "MESSAGE_NOT_ALLOWED"),))] == 1
    assert got[("tronpay_wallet_balance_query_seconds_count", (("outcome", "error"),))] == 1
    assert ("tronpay_wallet_balance_query_seconds_count", (("outcome", "ok"),)) not in got
