"""All six services as real processes against FerretDB: SERVING on grpc.health.v1, full contract served,
graceful stop, and restart against the same data."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pymongo import MongoClient
from tronpay.payment_gateway.v1 import payment_gateway_pb2, payment_gateway_pb2_grpc

from tests.harness.ferretdb import FerretDB, restart_ferretdb, start_ferretdb, stop_ferretdb
from tests.harness.services import SERVICES, Cluster, ServiceFactory, ServiceProcess

#: Every service also serves its own tamper-evident audit trail.
AUDIT_SERVICE = "tronpay.audit.v1.AuditService"


@pytest.fixture(scope="module")
def six(ferretdb: FerretDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    factory = ServiceFactory(ferretdb, tmp_path_factory.mktemp("six"))
    try:
        yield factory.start()
    finally:
        factory.close()


def _public_services(proc: ServiceProcess) -> list[str]:
    with proc.channel(identity="operator") as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        replies = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = [s.name for r in replies for s in r.list_services_response.service]
    return [n for n in names if n.startswith("tronpay.")]


def _contract(proc: ServiceProcess) -> list[str]:
    """The service's own contract: what it serves apart from the audit service every service shares."""
    return [n for n in _public_services(proc) if n != AUDIT_SERVICE]


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_is_serving_its_contract(six: Cluster, name: str) -> None:
    proc = six[name]
    services = _public_services(proc)
    assert AUDIT_SERVICE in services
    contract = [s for s in services if s != AUDIT_SERVICE]
    assert contract and all(s.startswith(f"tronpay.{name}.v1.") for s in contract)
    with proc.channel() as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for svc in ["", *services]:
            resp = stub.Check(health_pb2.HealthCheckRequest(service=svc), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING, svc


def test_restart_keeps_data_and_stops_gracefully(service_factory: ServiceFactory, ferretdb: FerretDB) -> None:
    cluster = service_factory.start("usdt_manager")
    proc = cluster["usdt_manager"]
    db_name = cluster.env["PAYMENT_DB_NAME"]
    client: MongoClient[dict[str, Any]] = MongoClient(ferretdb.uri)
    with client:
        col = client[db_name]["usdt_manager_requests"]  # created by the service's index bootstrap
        index_names = {ix["name"] for ix in col.list_indexes()}
        assert "expire_time" in index_names  # the server registers the idempotency store's own indexes
        col.insert_one(
            {"_id": "Transfer/keep-me", "request_id": "keep-me", "state": "DONE", "fingerprint": "x"}
        )

        assert proc.stop() == 0  # SIGTERM -> drain -> clean exit
        assert '"msg": "stopped"' in proc.log()
        proc.start()

        assert col.count_documents({"request_id": "keep-me"}) == 1
        assert {ix["name"] for ix in col.list_indexes()} == index_names
        with pytest.raises(Exception, match="duplicate key"):  # the key is the record's _id
            col.insert_one({"_id": "Transfer/keep-me", "request_id": "keep-me"})


def test_metrics_count_rpcs_per_method_and_code(six: Cluster) -> None:
    proc = six["payment_gateway"]
    with proc.channel() as ch:
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        with pytest.raises(grpc.RpcError) as err:  # one NOT_FOUND answer
            payment_gateway_pb2_grpc.PaymentGatewayServiceStub(ch).GetPayment(
                payment_gateway_pb2.GetPaymentRequest(payment_id="p1"), timeout=5
            )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with urllib.request.urlopen(f"http://127.0.0.1:{proc.env['METRICS_PORT']}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert (
        'grpc_server_handled_total{grpc_code="OK",grpc_method="Check",grpc_service="grpc.health.v1.Health"}'
        in text
    )
    assert 'grpc_code="NOT_FOUND",grpc_method="GetPayment"' in text
    assert "grpc_server_handling_seconds_bucket" in text


def test_health_follows_the_database(service_factory: ServiceFactory, tmp_path: Path) -> None:
    db = start_ferretdb(tmp_path / "own-db")
    try:
        proc = service_factory.start(
            "trx_staking",
            env={"MONGODB_URI": db.uri, "MONGODB_TIMEOUT_SECONDS": "1", "HEALTH_POLL_SECONDS": "0.5"},
        )["trx_staking"]
        stop_ferretdb(db)  # the database goes away: the service says so instead of crashing
        _wait_status(proc.health_target, health_pb2.HealthCheckResponse.NOT_SERVING, 30)
        db = restart_ferretdb(db)
        _wait_status(proc.health_target, health_pb2.HealthCheckResponse.SERVING, 30)
        assert proc.process is not None and proc.process.poll() is None
    finally:
        stop_ferretdb(db)


def _wait_status(target: str, want: int, timeout: float) -> None:
    """Polls the plaintext health-only port, the one kubelet probes use."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        with grpc.insecure_channel(target) as ch:
            status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5).status
        if status == want:
            return
        time.sleep(0.2)
    raise AssertionError(f"health stayed {status}, want {want}")
