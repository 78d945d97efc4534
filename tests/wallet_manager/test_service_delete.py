"""Deleting a wallet keeps its addresses watched and its keys sealed, so its funds can always be recovered:
a funded wallet force-deleted by an operator signs nothing and frees its address, tron-client still
watches the address, `restore-wallet` (refused while a newer wallet holds the address) makes it active
again, and the restored wallet's sweep executes on the devnet (checked with tronpy)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb
from tronpy import Tron
from tronpy.providers import HTTPProvider

from services.common.tron.address import private_key_to_address
from services.common.tron.tx import encode_transaction
from tests.harness.devnet import Devnet
from tests.harness.ferretdb import FerretDB
from tests.harness.services import Cluster
from tests.wallet_manager.service_support import (
    KIND,
    OPERATOR,
    Client,
    admin,
    error_reason,
    policy,
    rid,
    started,
)

TRX = 1_000_000


@pytest.fixture(scope="module")
def svc(
    ferretdb: FerretDB, devnet: Devnet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, Client]]:
    tmp = tmp_path_factory.mktemp("wm-delete")
    with started(ferretdb, tmp, "tron_client", "wallet_manager", node_url=devnet.url) as cluster:
        wm = Client(cluster["wallet_manager"].target)
        try:
            yield cluster, wm
        finally:
            wm.close()


def create_imported(wm: Client, key: bytes) -> pb.Wallet:
    req = pb.CreateWalletRequest(
        request_id=rid(),
        wallet=pb.Wallet(owner_id="recovery", kind=KIND.KIND_IMPORTED, policy=policy()),
        private_key=key.hex(),
    )
    return wm.call("CreateWallet", req).wallet


def delete(wm: Client, wallet_id: str, force: bool = False, subject: str = OPERATOR) -> pb.Wallet:
    req = pb.DeleteWalletRequest(request_id=rid(), wallet_id=wallet_id, force=force)
    return wm.call("DeleteWallet", req, subject=subject).wallet


def watchers(cluster: Cluster, address: str) -> set[str]:
    with cluster["tron_client"].channel(identity="wallet-manager") as ch:
        resp = tc_grpc.TronClientServiceStub(ch).ListWatchedAddresses(
            tc.ListWatchedAddressesRequest(address=address), timeout=20
        )
    return {w.watcher for w in resp.watched_addresses}


def test_a_deleted_wallet_stays_watched_and_an_admin_recovers_its_funds(
    svc: tuple[Cluster, Client], devnet: Devnet
) -> None:
    cluster, wm = svc
    key = os.urandom(32)
    address = private_key_to_address(key)
    for txid in devnet.faucet(address, trx=20 * TRX):
        devnet.wait_for_tx(txid)
    w = create_imported(wm, key)
    assert "wallet-manager" in watchers(cluster, address)

    with pytest.raises(grpc.RpcError) as err:
        delete(wm, w.wallet_id)
    assert error_reason(err.value) == "WALLET_HOLDS_FUNDS"
    deleted = delete(wm, w.wallet_id, force=True)
    assert deleted.state == pb.Wallet.STATE_DELETED

    # Deleted: no signatures, but the address is still watched (later deposits are recorded).
    dest = devnet.new_account()
    unsigned = devnet.post(
        "wallet/createtransaction",
        {"owner_address": address, "to_address": dest["address"], "amount": 15 * TRX, "visible": True},
    )
    raw = bytes.fromhex(unsigned["raw_data_hex"])
    sign = pb.SignTransactionRequest(
        request_id=rid(), wallet_id=w.wallet_id, transaction=common_pb2.Transaction(raw_data=raw)
    )
    with pytest.raises(grpc.RpcError) as err:
        wm.call("SignTransaction", sign, caller="usdt-manager")
    assert error_reason(err.value) == "WALLET_NOT_FOUND"
    assert "wallet-manager" in watchers(cluster, address)

    # The address was freed: a newer wallet took it, and restoring the old one is refused meanwhile.
    newer = create_imported(wm, key)
    out = admin(cluster, "restore-wallet", w.wallet_id)
    assert out.returncode == 1 and "a newer wallet holds" in out.stderr, out.stdout + out.stderr
    delete(wm, newer.wallet_id, force=True)

    # The admin restores it; it signs the sweep under its policy, and the sweep executes on chain.
    out = admin(cluster, "restore-wallet", w.wallet_id)
    assert out.returncode == 0 and f"restored {w.wallet_id}" in out.stdout, out.stdout + out.stderr
    restored = wm.call("GetWallet", pb.GetWalletRequest(wallet_id=w.wallet_id)).wallet
    assert restored.state == pb.Wallet.STATE_ACTIVE and not restored.HasField("delete_time")
    signed = wm.call("SignTransaction", sign, caller="usdt-manager")
    res = devnet.post(
        "wallet/broadcasthex", {"transaction": encode_transaction(raw, [signed.signature]).hex()}
    )
    assert res.get("result") is True, res
    devnet.wait_for_tx(signed.txid)
    tronpy = Tron(HTTPProvider(devnet.url, timeout=30))  # an independent client reads the result
    try:
        assert tronpy.get_account(dest["address"])["balance"] == 15 * TRX
    finally:
        tronpy.provider.sess.close()
    # Restoring an active wallet is refused.
    again = admin(cluster, "restore-wallet", w.wallet_id)
    assert again.returncode == 1 and "is not a deleted wallet" in again.stderr
