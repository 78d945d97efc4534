"""Every wallet REST endpoint through the real Envoy edge in front of the real wallet-manager and tron-client
(devnet behind it), and service-made signatures the devnet accepts (TRX and USDT, broadcast through
tron-client's BroadcastTransaction)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from services.common.tron.address import private_key_to_address
from services.wallet_manager.chain import MAX_BALANCE_ADDRESSES
from services.wallet_manager.vault.ecdsa import recover_address
from tests.edge.http import Reply, call
from tests.harness.devnet import Devnet
from tests.harness.envoy import Edge, start_edge
from tests.harness.ferretdb import FerretDB
from tests.wallet_manager.service_support import OPERATOR, Client, error_reason, policy, rid, started

KEY = bytes.fromhex("d4" * 31 + "07")
ADDRESS = private_key_to_address(KEY)
FUNDED_TRX = 40_000_000
FUNDED_USDT = 9_000_000


@pytest.fixture(scope="module")
def rig(
    ferretdb: FerretDB, devnet: Devnet, envoy_descriptor: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("wm-edge")
    with started(ferretdb, tmp / "svc", "wallet_manager", "tron_client", node_url=devnet.url) as c:
        ports = {"wallet_manager": c["wallet_manager"].port, "tron_client": c["tron_client"].port}
        with start_edge(ports, tmp / "edge", descriptor=envoy_descriptor, wait_healthy=tuple(ports)) as edge:
            wm = Client(c["wallet_manager"].target)
            tron = c["tron_client"].channel("usdt-manager")
            try:
                yield {"edge": edge, "wm": wm, "tron": tc_grpc.TronClientServiceStub(tron), "devnet": devnet}
            finally:
                wm.close()
                tron.close()


def rest(edge: Edge, method: str, path: str, body: dict[str, Any] | None = None, **headers: str) -> Reply:
    """One REST call with an admin token (the edge's roles matrix allows an admin every wallet RPC)."""
    return call(edge.rest_url, method, path, body=body, headers={**edge.auth("admin"), **headers})


def ok(reply: Reply) -> dict[str, Any]:
    assert reply.status == 200, (reply.status, reply.body)
    data: dict[str, Any] = reply.json()
    return data


def reason(reply: Reply) -> str:
    data = reply.json()
    (info,) = [d for d in data["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    return str(info["reason"])


def policy_json() -> dict[str, Any]:
    return {
        "allowedContractTypes": ["CONTRACT_TYPE_TRANSFER", "CONTRACT_TYPE_TRIGGER_SMART_CONTRACT"],
        "limits": [
            {"asset": "ASSET_TRX", "perTransactionLimit": "10000000", "dailyLimit": "30000000"},
            {"asset": "ASSET_USDT", "perTransactionLimit": "5000000"},
        ],
    }


@pytest.fixture(scope="module")
def funded(rig: dict[str, Any]) -> dict[str, Any]:
    """An IMPORTED wallet created through the edge (so its address is on the watch list), then funded."""
    edge, devnet = rig["edge"], rig["devnet"]
    body = {
        "requestId": rid(),
        "wallet": {
            "ownerId": "edge-merchant",
            "kind": "KIND_IMPORTED",
            "displayName": "hot",
            "labels": ["hot"],
            "policy": policy_json(),
        },
        "privateKey": KEY.hex(),
    }
    first = ok(rest(edge, "POST", "/api/v1/wallets", body))["wallet"]
    again = ok(rest(edge, "POST", "/api/v1/wallets", body))["wallet"]
    assert again == first  # idempotent on requestId
    for txid in devnet.faucet(ADDRESS, trx=FUNDED_TRX, usdt=FUNDED_USDT):
        devnet.wait_for_tx(txid, solid=True)
    return first


def test_create_and_read_through_the_edge(rig: dict[str, Any], funded: dict[str, Any]) -> None:
    edge = rig["edge"]
    assert (
        funded["address"] == ADDRESS
        and funded["kind"] == "KIND_IMPORTED"
        and funded["state"] == "STATE_ACTIVE"
    )
    assert "privateKey" not in funded and KEY.hex() not in str(funded)
    got = ok(rest(edge, "GET", f"/api/v1/wallets/{funded['walletId']}"))["wallet"]
    assert got == funded
    missing = rest(edge, "GET", "/api/v1/wallets/wal_missing")
    assert missing.status == 404 and reason(missing) == "WALLET_NOT_FOUND"
    bad = rest(
        edge,
        "POST",
        "/api/v1/wallets",
        {"requestId": rid(), "wallet": {"ownerId": "x", "kind": "KIND_IMPORTED"}},
    )
    assert bad.status == 400 and any(
        v["field"] == "private_key" for d in bad.json()["details"] for v in d.get("fieldViolations", [])
    )


def test_list_with_filters_and_pages(rig: dict[str, Any], funded: dict[str, Any]) -> None:
    edge = rig["edge"]
    made = [
        ok(
            rest(
                edge,
                "POST",
                "/api/v1/wallets",
                {
                    "requestId": rid(),
                    "wallet": {"ownerId": "edge-merchant", "kind": "KIND_HD", "labels": ["cold"]},
                },
            )
        )["wallet"]
    ]
    made.append(
        ok(
            rest(
                edge,
                "POST",
                "/api/v1/wallets",
                {
                    "requestId": rid(),
                    "wallet": {
                        "ownerId": "edge-merchant",
                        "kind": "KIND_WATCH_ONLY",
                        "address": rig["devnet"].witness["address"],
                    },
                },
            )
        )["wallet"]
    )
    ids, token = [], ""
    for _ in range(5):
        page = ok(rest(edge, "GET", f"/api/v1/wallets?ownerId=edge-merchant&pageSize=1&pageToken={token}"))
        assert len(page["wallets"]) <= 1
        ids += [w["walletId"] for w in page["wallets"]]
        token = page["nextPageToken"]
        if not token:
            break
    assert ids == sorted([funded["walletId"], *(w["walletId"] for w in made)])
    hd_only = ok(rest(edge, "GET", "/api/v1/wallets?ownerId=edge-merchant&kind=KIND_HD"))["wallets"]
    assert [w["walletId"] for w in hd_only] == [made[0]["walletId"]]
    hot = ok(rest(edge, "GET", "/api/v1/wallets?label=hot&ownerId=edge-merchant"))["wallets"]
    assert [w["walletId"] for w in hot] == [funded["walletId"]]


def test_update_through_the_edge(rig: dict[str, Any]) -> None:
    edge = rig["edge"]
    w = ok(
        rest(
            edge,
            "POST",
            "/api/v1/wallets",
            {"requestId": rid(), "wallet": {"ownerId": "edge-upd", "kind": "KIND_HD"}},
        )
    )["wallet"]
    body = {
        "requestId": rid(),
        "wallet": {"displayName": "renamed", "labels": ["a", "b"], "policy": policy_json()},
    }
    out = ok(rest(edge, "PUT", f"/api/v1/wallets/{w['walletId']}", body))["wallet"]
    assert (out["displayName"], out["labels"]) == ("renamed", ["a", "b"])
    assert out["policy"]["allowedContractTypes"] == policy_json()["allowedContractTypes"]
    only_name = {"requestId": rid(), "wallet": {"displayName": "again"}, "updateMask": "displayName"}
    out = ok(rest(edge, "PUT", f"/api/v1/wallets/{w['walletId']}", only_name))["wallet"]
    assert out["displayName"] == "again" and out["labels"] == ["a", "b"]
    immutable = rest(
        edge, "PUT", f"/api/v1/wallets/{w['walletId']}", {"requestId": rid(), "wallet": {"ownerId": "thief"}}
    )
    assert immutable.status == 400


def test_balance_through_the_edge(rig: dict[str, Any], funded: dict[str, Any]) -> None:
    bal = ok(rest(rig["edge"], "GET", f"/api/v1/wallets/{funded['walletId']}/balance"))
    assert bal["walletId"] == funded["walletId"] and bal["address"] == ADDRESS
    assert int(bal["trxBalanceSun"]) > 0
    usdt = [b for b in bal["tokenBalances"] if b["asset"] == "ASSET_USDT"]
    assert len(usdt) == 1 and int(usdt[0]["amount"]) > 0 and usdt[0]["tokenAddress"] == rig["devnet"].usdt
    kinds = {r["resource"] for r in bal["resources"]}
    assert kinds == {"RESOURCE_TYPE_BANDWIDTH", "RESOURCE_TYPE_ENERGY"}


def test_transactions_through_the_edge(rig: dict[str, Any], funded: dict[str, Any]) -> None:
    path = f"/api/v1/wallets/{funded['walletId']}/transactions?pageSize=1"
    deadline = time.monotonic() + 30
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:  # tron-client's sync records the faucet transfers
        first = ok(rest(rig["edge"], "GET", path))
        items = list(first["transactions"])
        token = first["nextPageToken"]
        if token:
            items += ok(rest(rig["edge"], "GET", path + f"&pageToken={token}"))["transactions"]
        if {t["asset"] for t in items} >= {"ASSET_TRX", "ASSET_USDT"}:
            break
        time.sleep(0.5)
    assert {t["asset"] for t in items} >= {"ASSET_TRX", "ASSET_USDT"}, items
    for t in items:
        assert t["toAddress"] == ADDRESS and t["direction"] == "DIRECTION_INCOMING"
    incoming_trx = [t for t in items if t["asset"] == "ASSET_TRX"]
    assert int(incoming_trx[0]["amount"]) == FUNDED_TRX


def test_delete_through_the_edge(rig: dict[str, Any], funded: dict[str, Any]) -> None:
    edge, wm = rig["edge"], rig["wm"]
    refused = rest(edge, "DELETE", f"/api/v1/wallets/{funded['walletId']}?requestId={rid()}")
    assert refused.status == 400 and reason(refused) == "WALLET_HOLDS_FUNDS", refused.body
    forced = rest(edge, "DELETE", f"/api/v1/wallets/{funded['walletId']}?requestId={rid()}&force=true")
    assert forced.status == 403 and reason(forced) == "OPERATOR_REQUIRED"
    empty = ok(
        rest(
            edge,
            "POST",
            "/api/v1/wallets",
            {"requestId": rid(), "wallet": {"ownerId": "edge-del", "kind": "KIND_HD"}},
        )
    )["wallet"]
    gone = ok(rest(edge, "DELETE", f"/api/v1/wallets/{empty['walletId']}?requestId={rid()}"))["wallet"]
    assert gone["state"] == "STATE_DELETED" and gone["deleteTime"]
    assert ok(rest(edge, "GET", f"/api/v1/wallets/{empty['walletId']}"))["wallet"]["state"] == "STATE_DELETED"
    # An operator (the end-user subject from the edge's identity) may force it.
    w = wm.call(
        "CreateWallet",
        pb.CreateWalletRequest(
            request_id=rid(),
            wallet=pb.Wallet(owner_id="edge-del2", kind=pb.Wallet.KIND_IMPORTED),
            private_key=("e5" * 32),
        ),
    ).wallet
    for txid in rig["devnet"].faucet(w.address, trx=1_000_000):
        rig["devnet"].wait_for_tx(txid)
    req = pb.DeleteWalletRequest(request_id=rid(), wallet_id=w.wallet_id, force=True)
    assert wm.call("DeleteWallet", req, subject=OPERATOR).wallet.state == pb.Wallet.STATE_DELETED


def test_delete_checks_funds_on_every_deposit_address(rig: dict[str, Any]) -> None:
    wm, devnet = rig["wm"], rig["devnet"]
    for _ in range(MAX_BALANCE_ADDRESSES):
        last = wm.call(
            "DeriveAddress", pb.DeriveAddressRequest(request_id=rid(), owner_id="edge-del-many")
        ).derived_address
    assert last.index == MAX_BALANCE_ADDRESSES  # the 101st address: past what one balance read sums
    for txid in devnet.faucet(last.address, trx=1):
        devnet.wait_for_tx(txid)
    req = pb.DeleteWalletRequest(request_id=rid(), wallet_id=last.wallet_id)
    with pytest.raises(grpc.RpcError) as err:
        wm.call("DeleteWallet", req)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()
    assert error_reason(err.value) == "WALLET_HOLDS_FUNDS"


@pytest.mark.parametrize("asset", ["TRX", "USDT"])
def test_service_signatures_are_accepted_by_the_devnet(rig: dict[str, Any], asset: str) -> None:
    devnet, wm = rig["devnet"], rig["wm"]
    key = bytes.fromhex("f6" * 31 + ("01" if asset == "TRX" else "02"))
    w = wm.call(
        "CreateWallet",
        pb.CreateWalletRequest(
            request_id=rid(),
            wallet=pb.Wallet(
                owner_id="devnet-signer",
                kind=pb.Wallet.KIND_IMPORTED,
                policy=policy(trx_per_tx=10**7, usdt_per_tx=10**7),
            ),
            private_key=key.hex(),
        ),
    ).wallet
    for txid in devnet.faucet(w.address, trx=60_000_000, usdt=5_000_000):
        devnet.wait_for_tx(txid)
    dest = devnet.new_account()["address"]
    build = tc.BuildTransactionRequest(owner_address=w.address)
    if asset == "TRX":
        build.transfer.to_address, build.transfer.amount_sun = dest, 2_000_000
    else:
        from services.common.tron.address import from_base58

        build.trigger_smart_contract.contract_address = devnet.usdt
        build.trigger_smart_contract.function_selector = "transfer(address,uint256)"
        build.trigger_smart_contract.parameter = from_base58(dest)[1:].rjust(32, b"\0") + (
            1_250_000
        ).to_bytes(32, "big")
        build.trigger_smart_contract.fee_limit_sun = 50_000_000
    unsigned = rig["tron"].BuildTransaction(build, timeout=20).transaction
    resp = wm.call(
        "SignTransaction",
        pb.SignTransactionRequest(
            request_id=rid(), wallet_id=w.wallet_id, transaction=unsigned, purpose="devnet test"
        ),
        caller="usdt-manager",
    )
    assert resp.txid == hashlib.sha256(unsigned.raw_data).hexdigest() == (unsigned.txid or resp.txid)
    assert recover_address(bytes.fromhex(resp.txid), resp.signature) == w.address
    out = rig["tron"].BroadcastTransaction(
        tc.BroadcastTransactionRequest(request_id=rid(), transaction=resp.signed_transaction), timeout=20
    )
    assert out.txid == resp.txid
    info = devnet.wait_for_tx(resp.txid)
    assert info.get("receipt", {}).get("result", "SUCCESS") == "SUCCESS", info
    if asset == "TRX":
        assert devnet.post("wallet/getaccount", {"address": dest, "visible": True})["balance"] == 2_000_000
    else:
        bal = rig["tron"].GetTokenBalance(
            tc.GetTokenBalanceRequest(address=dest, token_address=devnet.usdt), timeout=20
        )
        assert bal.balance == 1_250_000
    rec = wm.call("ListSignatures", pb.ListSignaturesRequest(wallet_id=w.wallet_id)).records
    assert [(r.txid, r.asset) for r in rec] == [
        (resp.txid, common_pb2.ASSET_TRX if asset == "TRX" else common_pb2.ASSET_USDT)
    ]


def watched(rig: dict[str, Any], watcher: str) -> dict[str, str]:
    out: dict[str, str] = {}
    token = ""
    for _ in range(50):
        page = rig["tron"].ListWatchedAddresses(
            tc.ListWatchedAddressesRequest(watcher=watcher, page_size=1000, page_token=token), timeout=20
        )
        out.update({w.address: w.label for w in page.watched_addresses})
        token = page.next_page_token
        if not token:
            break
    return out


def test_derived_deposit_addresses_are_on_the_watch_list(rig: dict[str, Any]) -> None:
    wm = rig["wm"]
    first = wm.call(
        "DeriveAddress",
        pb.DeriveAddressRequest(
            request_id=rid(), owner_id="gw-merchant", label="pay_1", watcher="payment-gateway"
        ),
    ).derived_address
    key = rid()
    second = wm.call(
        "DeriveAddress", pb.DeriveAddressRequest(request_id=key, owner_id="gw-merchant", label="pay_2")
    ).derived_address
    assert (first.index, second.index) == (1, 2) and first.wallet_id == second.wallet_id
    replay = wm.call(
        "DeriveAddress", pb.DeriveAddressRequest(request_id=key, owner_id="gw-merchant", label="pay_2")
    ).derived_address
    assert replay == second  # same request_id: the same address, no new index
    hd_wallet = wm.call("GetWallet", pb.GetWalletRequest(wallet_id=first.wallet_id)).wallet
    assert (
        hd_wallet.kind == pb.Wallet.KIND_HD
        and hd_wallet.owner_id == "gw-merchant"
        and hd_wallet.address_count == 3
    )
    assert watched(rig, "payment-gateway").get(first.address) == "pay_1"
    assert watched(rig, "wallet-manager").get(second.address) == "pay_2"
    # An account xpub derives watch-only deposit addresses (public derivation, no key here).
    xpub = (
        "xpub6DCWphzD1URX6NLY4bzJQoNz3Ja14ueGphAz3c7XdzyfR3hbsv4XybKuXVPSGFiASvcugTyiJrQyw5u33izp6rB1W9fgZM4ugKQJQBcEFo8"
    )  # fmt: skip
    w = wm.call(
        "CreateWallet",
        pb.CreateWalletRequest(
            request_id=rid(),
            wallet=pb.Wallet(owner_id="xpub-owner", kind=pb.Wallet.KIND_WATCH_ONLY, xpub=xpub),
        ),
    ).wallet
    d = wm.call(
        "DeriveAddress", pb.DeriveAddressRequest(request_id=rid(), wallet_id=w.wallet_id)
    ).derived_address
    assert (d.index, d.address) == (
        1,
        "TFz2CJn9CJb8C4i1Gke3jmZX2fRMJxniH2",
    )  # Trezor fixture m/44'/195'/0'/0/1
    assert d.address in watched(rig, "wallet-manager")
    imported = wm.call(
        "CreateWallet",
        pb.CreateWalletRequest(
            request_id=rid(),
            wallet=pb.Wallet(owner_id="no-derive", kind=pb.Wallet.KIND_IMPORTED),
            private_key="a7" * 32,
        ),
    ).wallet
    with pytest.raises(grpc.RpcError) as err:
        wm.call("DeriveAddress", pb.DeriveAddressRequest(request_id=rid(), wallet_id=imported.wallet_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
