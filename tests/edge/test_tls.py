"""TLS at the edge: clients' TLS on the listener when a certificate is configured, and mutual TLS from the
edge to the services (a service behind the edge that is not the one named, or not from the cluster CA,
is never used)."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator

import grpc
import pytest

from tests.edge.http import call
from tests.edge.recorder import Recorder, recording_upstream
from tests.harness.envoy import SERVICE_KEYS, EdgeFactory, mint
from tests.harness.pki import pki_dir


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with recording_upstream() as rec:
        yield rec


def test_clients_reach_the_edge_over_tls_when_it_has_a_certificate(
    envoy_edge_factory: EdgeFactory, recorder: Recorder
) -> None:
    files = pki_dir() / "edge"  # any certificate will do; this one names "edge"
    env = {"EDGE_TLS_CERT_FILE": str(files / "tls.crt"), "EDGE_TLS_KEY_FILE": str(files / "tls.key")}
    edge = envoy_edge_factory({key: recorder.port for key in SERVICE_KEYS}, extra_env=env)
    context = ssl.create_default_context(cafile=str(files / "ca.crt"))
    context.check_hostname = False  # the certificate names "edge", the test dials 127.0.0.1
    conn = http.client.HTTPSConnection("127.0.0.1", edge.port, context=context, timeout=10)
    try:
        conn.request("GET", "/api/v1/wallets", headers={"authorization": f"Bearer {mint('viewer')}"})
        reply = conn.getresponse()
        body = reply.read()
    finally:
        conn.close()
    assert reply.status == 200, body
    assert json.loads(body) == {"wallets": [], "nextPageToken": ""}  # the recorder's empty answer
    # Plaintext on the same port is refused: no HTTP answer at all.
    plain = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=10)
    plain.request("GET", "/api/v1/tron/network/status")
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        plain.getresponse()
    plain.close()
    # Native gRPC over TLS on the same listener.
    creds = grpc.ssl_channel_credentials((files / "ca.crt").read_bytes())
    options = [("grpc.ssl_target_name_override", "edge")]
    with grpc.secure_channel(f"127.0.0.1:{edge.port}", creds, options=options) as channel:
        status = channel.unary_unary("/tronpay.tron_client.v1.TronClientService/GetNetworkStatus")
        token = (("authorization", f"Bearer {mint('viewer')}"),)
        assert status(b"", metadata=token, timeout=10) == b""


def test_the_edge_refuses_an_upstream_without_the_services_certificate(
    envoy_edge_factory: EdgeFactory,
) -> None:
    """An upstream presenting a certificate of the cluster CA that does not name the service (here the
    operator's) fails the edge's check: the edge answers 503 and the request never reaches it."""
    with recording_upstream(identity="operator") as impostor:
        edge = envoy_edge_factory({"wallet_manager": impostor.port}, wait_healthy=False)
        reply = call(edge.rest_url, "GET", "/api/v1/wallets", headers=edge.auth("viewer"))
        assert reply.status == 503, reply.body
        assert not impostor.calls
