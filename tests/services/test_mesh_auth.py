"""Service identity inside the mesh, on a real wallet-manager: mutual TLS with the cluster CA, internal RPCs
authorised by the peer's certificate (services.common.access.INTERNAL), never by metadata; denials are
PERMISSION_DENIED naming the rule and land in the service's audit log."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tronpay.audit.v1 import audit_pb2, audit_pb2_grpc
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as pb_grpc

from services.common import access
from tests.harness.ferretdb import FerretDB
from tests.harness.pki import channel, foreign_dir, pki_dir
from tests.harness.services import ServiceProcess
from tests.wallet_manager.service_support import error_reason, rid, started

SIGN = pb.SignTransactionRequest(
    request_id="r-1", wallet_id="w-none", transaction=common_pb2.Transaction(raw_data=b"\x0a\x02\x00\x01")
)


@pytest.fixture(scope="module")
def wm(ferretdb: FerretDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with started(ferretdb, tmp_path_factory.mktemp("mesh"), "wallet_manager") as c:
        yield c["wallet_manager"]


def _denied(call: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    return call.code(), error_reason(call)


def test_plaintext_clients_are_refused(wm: ServiceProcess) -> None:
    with grpc.insecure_channel(wm.target) as ch, pytest.raises(grpc.RpcError) as err:
        pb_grpc.WalletManagerServiceStub(ch).SignTransaction(SIGN, timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # no TLS handshake, no RPC


def test_a_certificate_from_another_ca_is_refused(wm: ServiceProcess) -> None:
    """Same names, another CA: the handshake fails both ways (the client does not trust the server either)."""
    with (
        channel(wm.target, wm.peer, identity="usdt-manager", directory=foreign_dir()) as ch,
        pytest.raises(grpc.RpcError) as err,
    ):
        pb_grpc.WalletManagerServiceStub(ch).SignTransaction(SIGN, timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_naming_no_peer_is_refused(wm: ServiceProcess) -> None:
    with channel(wm.target, wm.peer, identity="intruder") as ch, pytest.raises(grpc.RpcError) as err:
        pb_grpc.WalletManagerServiceStub(ch).SignTransaction(SIGN, timeout=5)
    assert _denied(err.value) == (grpc.StatusCode.PERMISSION_DENIED, access.Denial.NO_PEER_IDENTITY)


@pytest.mark.parametrize(
    ("identity", "method", "request_message", "rule"),
    [
        # tron-client has no business asking for signatures, nor the edge (SignTransaction is not public).
        ("tron-client", "SignTransaction", SIGN, access.Denial.PEER_NOT_ALLOWED),
        ("edge", "SignTransaction", SIGN, access.Denial.NOT_PUBLIC),
        ("operator", "SignMessage", pb.SignMessageRequest(request_id="r", wallet_id="w", message=b"m"),
         access.Denial.PEER_NOT_ALLOWED),
        # Only payout-router signs messages (KYC attestations); only payment-gateway derives addresses.
        ("usdt-manager", "SignMessage", pb.SignMessageRequest(request_id="r", wallet_id="w", message=b"m"),
         access.Denial.PEER_NOT_ALLOWED),
        ("payout-router", "DeriveAddress", pb.DeriveAddressRequest(request_id="r", owner_id="o"),
         access.Denial.PEER_NOT_ALLOWED),
    ],
)  # fmt: skip
def test_a_peer_outside_its_grants_is_refused(
    wm: ServiceProcess, identity: str, method: str, request_message: object, rule: str
) -> None:
    with channel(wm.target, wm.peer, identity=identity) as ch, pytest.raises(grpc.RpcError) as err:
        getattr(pb_grpc.WalletManagerServiceStub(ch), method)(request_message, timeout=5)
    assert _denied(err.value) == (grpc.StatusCode.PERMISSION_DENIED, rule)
    assert rule in (err.value.details() or "")


def test_metadata_claiming_another_identity_changes_nothing(wm: ServiceProcess) -> None:
    """tron-client's certificate with every identity key saying "usdt-manager, admin" is still tron-client."""
    forged = (
        ("x-tronpay-caller", "usdt-manager"),
        ("x-tronpay-roles", "admin,service"),
        ("x-tronpay-subject", "root"),
    )
    with (
        channel(wm.target, wm.peer, identity="tron-client", roles=()) as ch,
        pytest.raises(grpc.RpcError) as err,
    ):
        pb_grpc.WalletManagerServiceStub(ch).SignTransaction(SIGN, metadata=forged, timeout=5)
    assert _denied(err.value) == (grpc.StatusCode.PERMISSION_DENIED, access.Denial.PEER_NOT_ALLOWED)
    assert "tron-client may not call" in (err.value.details() or "")


def test_a_granted_peer_gets_through_to_the_service(wm: ServiceProcess) -> None:
    """usdt-manager may ask for signatures: the call reaches the servicer (which knows no such wallet)."""
    req = pb.SignTransactionRequest(request_id=rid(), wallet_id="w-none", transaction=SIGN.transaction)
    with channel(wm.target, wm.peer, identity="usdt-manager") as ch, pytest.raises(grpc.RpcError) as err:
        pb_grpc.WalletManagerServiceStub(ch).SignTransaction(req, timeout=5)
    assert err.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)


def test_the_edge_is_held_to_the_roles_matrix(wm: ServiceProcess) -> None:
    """Defence in depth: a viewer's request that slipped past the edge still cannot delete a wallet."""
    req = pb.DeleteWalletRequest(request_id=rid(), wallet_id="w-any")
    with channel(wm.target, wm.peer, roles=("viewer",)) as ch, pytest.raises(grpc.RpcError) as err:
        pb_grpc.WalletManagerServiceStub(ch).DeleteWallet(req, timeout=5)
    assert _denied(err.value) == (grpc.StatusCode.PERMISSION_DENIED, access.Denial.ROLE_NOT_ALLOWED)


def test_denials_are_audit_events(wm: ServiceProcess) -> None:
    with channel(wm.target, wm.peer, identity="tron-client", roles=()) as ch, pytest.raises(grpc.RpcError):
        pb_grpc.WalletManagerServiceStub(ch).SignTransaction(SIGN, timeout=5)
    with channel(wm.target, wm.peer, identity="intruder", roles=()) as ch, pytest.raises(grpc.RpcError):
        pb_grpc.WalletManagerServiceStub(ch).SignTransaction(SIGN, timeout=5)
    with channel(wm.target, wm.peer, identity="operator", roles=()) as ch:
        stub = audit_pb2_grpc.AuditServiceStub(ch)
        records = [r.record for r in stub.ExportAuditLog(audit_pb2.ExportAuditLogRequest(), timeout=10)]
        verdict = stub.VerifyAuditLog(audit_pb2.VerifyAuditLogRequest(), timeout=10)
    denied = [
        r
        for r in records
        if r.event_type == audit_pb2.AuditRecord.EVENT_TYPE_AUTHORIZATION_FAILED
        and r.actor.caller == "tron-client"
    ]
    assert denied and denied[-1].resource == "tronpay.wallet_manager.v1.WalletManagerService/SignTransaction"
    unknown = [r for r in records if r.event_type == audit_pb2.AuditRecord.EVENT_TYPE_AUTHENTICATION_FAILED]
    assert unknown and unknown[-1].actor.caller == ""  # no peer identity to name
    assert verdict.intact


def test_only_the_operator_reads_the_audit_log(wm: ServiceProcess) -> None:
    with (
        channel(wm.target, wm.peer, identity="payment-gateway", roles=()) as ch,
        pytest.raises(grpc.RpcError) as err,
    ):
        audit_pb2_grpc.AuditServiceStub(ch).VerifyAuditLog(audit_pb2.VerifyAuditLogRequest(), timeout=5)
    assert _denied(err.value) == (grpc.StatusCode.PERMISSION_DENIED, access.Denial.PEER_NOT_ALLOWED)


def test_probes_use_the_plaintext_health_port_which_serves_nothing_else(wm: ServiceProcess) -> None:
    with grpc.insecure_channel(wm.health_target) as ch:
        status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.WalletManagerServiceStub(ch).SignTransaction(SIGN, timeout=5)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_private_keys_are_owner_only_files() -> None:
    for key in pki_dir().glob("*/tls.key"):
        assert key.stat().st_mode & 0o077 == 0, key
