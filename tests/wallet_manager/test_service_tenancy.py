"""Tenancy through the real edge: a token's `tenant` claim confines it to its tenant's wallets (another
tenant's answer NOT_FOUND, never their data), admins see every tenant, and xpubs go only to the wallet's
owner and admins. Also checked where it matters most: a service signing for one tenant's request cannot use
another tenant's wallet."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from tests.edge.http import call
from tests.harness.devnet import Devnet
from tests.harness.envoy import Edge, start_edge
from tests.harness.ferretdb import FerretDB
from tests.wallet_manager import txs
from tests.wallet_manager.service_support import Client, error_reason, policy, rid, started


@pytest.fixture(scope="module")
def rig(
    ferretdb: FerretDB, devnet: Devnet, envoy_descriptor: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Edge, Client]]:
    tmp = tmp_path_factory.mktemp("tenancy")
    with started(ferretdb, tmp / "svc", "wallet_manager", "tron_client", node_url=devnet.url) as c:
        ports = {"wallet_manager": c["wallet_manager"].port}
        with start_edge(ports, tmp / "edge", descriptor=envoy_descriptor, wait_healthy=tuple(ports)) as edge:
            wm = Client(c["wallet_manager"].target)
            try:
                yield edge, wm
            finally:
                wm.close()


def _rest(
    edge: Edge, method: str, path: str, *roles: str, tenant: str | None, subject: str = "u1", **kw: Any
) -> Any:
    headers = edge.auth(*(roles or ("operator",)), tenant=tenant, subject=subject)
    return call(edge.rest_url, method, path, headers=headers, **kw)


def _create(edge: Edge, tenant: str | None, owner: str, subject: str = "u1") -> dict[str, Any]:
    body = {"request_id": rid(), "wallet": {"ownerId": owner, "kind": "KIND_HD", "displayName": owner}}
    reply = _rest(edge, "POST", "/api/v1/wallets", tenant=tenant, subject=subject, body=body)
    assert reply.status == 200, reply.body
    wallet: dict[str, Any] = reply.json()["wallet"]
    return wallet


def test_a_tenant_sees_only_its_own_wallets(rig: tuple[Edge, Client]) -> None:
    edge, _ = rig
    a = _create(edge, "m-a", "alice")
    b = _create(edge, "m-b", "bob")
    assert (a["tenant"], b["tenant"]) == ("m-a", "m-b")
    path_b = f"/api/v1/wallets/{b['walletId']}"
    # Read, balance, transactions, update and delete of B's wallet as tenant A: NOT_FOUND, no data.
    for method, path, body in [
        ("GET", path_b, None),
        ("GET", path_b + "/balance", None),
        ("GET", path_b + "/transactions", None),
        (
            "PATCH",
            path_b,
            {"request_id": rid(), "wallet": {"displayName": "x"}, "update_mask": "displayName"},
        ),
    ]:
        reply = _rest(edge, method, path, tenant="m-a", body=body)
        assert reply.status == 404, (method, path, reply.body)
        assert b["walletId"] in reply.body.decode() or "not found" in reply.json()["message"]
        assert "bob" not in reply.body.decode()
    deleted = _rest(edge, "DELETE", path_b + f"?request_id={rid()}", "admin", tenant="m-a")
    assert deleted.status == 200  # an admin sees every tenant, whatever its own claim...
    restore = _rest(edge, "GET", path_b, "admin", tenant=None)
    assert restore.status == 200 and restore.json()["wallet"]["state"] == "STATE_DELETED"
    # ...and listing as tenant A shows only A's wallets.
    listed = _rest(edge, "GET", "/api/v1/wallets?show_deleted=true", "viewer", tenant="m-a").json()["wallets"]
    assert {w["tenant"] for w in listed} == {"m-a"} and a["walletId"] in {w["walletId"] for w in listed}
    everything = _rest(edge, "GET", "/api/v1/wallets?show_deleted=true", "admin", tenant=None).json()[
        "wallets"
    ]
    assert {a["walletId"], b["walletId"]} <= {w["walletId"] for w in everything}


def test_owner_ids_are_per_tenant(rig: tuple[Edge, Client]) -> None:
    """Two merchants may both have a customer "carol": each gets its own HD account."""
    one, two = _create(rig[0], "m-c", "carol"), _create(rig[0], "m-d", "carol")
    assert one["walletId"] != two["walletId"] and one["address"] != two["address"]


def test_xpubs_go_to_the_owner_and_admins_only(rig: tuple[Edge, Client]) -> None:
    edge, _ = rig
    w = _create(edge, "m-e", "dave", subject="dave")
    assert w["xpub"].startswith("xpub")  # the creator is the owner here
    path = f"/api/v1/wallets/{w['walletId']}"

    def xpub(*roles: str, tenant: str | None, subject: str) -> str:
        reply = _rest(edge, "GET", path, *roles, tenant=tenant, subject=subject)
        return str(reply.json()["wallet"]["xpub"])

    assert xpub("viewer", tenant="m-e", subject="dave") == w["xpub"]
    assert xpub("viewer", tenant="m-e", subject="eve") == ""  # the edge prints empty fields
    assert xpub("admin", tenant=None, subject="root") == w["xpub"]
    listed = _rest(edge, "GET", "/api/v1/wallets?owner_id=dave", "operator", tenant="m-e", subject="eve")
    assert listed.json()["wallets"] and all(x["xpub"] == "" for x in listed.json()["wallets"])


def test_a_service_acting_for_one_tenant_cannot_sign_with_anothers_wallet(rig: tuple[Edge, Client]) -> None:
    _, wm = rig
    key = bytes.fromhex("c3" * 32)
    req = pb.CreateWalletRequest(
        request_id=rid(),
        wallet=pb.Wallet(owner_id="frank", kind=pb.Wallet.KIND_IMPORTED, policy=policy(trx_per_tx=10**9)),
        private_key=key.hex(),
    )
    w = wm.call("CreateWallet", req, tenant="m-f").wallet
    assert w.tenant == "m-f"
    sign = pb.SignTransactionRequest(
        request_id=rid(),
        wallet_id=w.wallet_id,
        transaction=common_pb2.Transaction(raw_data=txs.transfer(w.address, txs.DEST, 1)),
    )
    with pytest.raises(grpc.RpcError) as err:
        wm.call("SignTransaction", sign, caller="usdt-manager", tenant="m-g")
    assert (err.value.code(), error_reason(err.value)) == (grpc.StatusCode.NOT_FOUND, "WALLET_NOT_FOUND")
    assert wm.call("SignTransaction", sign, caller="usdt-manager", tenant="m-f").signature
