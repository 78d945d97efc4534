"""Ledger and Trezor wallets through the running service, signing on the software devices over the real
transports (Speculos TCP framing for ledgerblue, the emulator's UDP for trezorlib): addresses read from the
device, signatures the devnet accepts, user rejection as a clear FAILED_PRECONDITION, device-less messages."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from services.wallet_manager.vault.ecdsa import recover_address
from services.wallet_manager.vault.messages import verify_message_v2
from tests.harness.devnet import Devnet
from tests.harness.ferretdb import FerretDB
from tests.harness.ledger_device import SoftLedger
from tests.harness.trezor_device import SoftTrezor
from tests.wallet_manager import txs
from tests.wallet_manager.service_support import KIND, Client, error_reason, policy, rid, started

LEDGER_ADDR0 = txs.ABANDON_ADDR0
TREZOR_ADDR0 = "TY72iA3SBtrds3QLYsS7LwYfkzXwAXCRWT"


@pytest.fixture(scope="module")
def rig(
    ferretdb: FerretDB, devnet: Devnet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    ledger = SoftLedger(txs.ABANDON).start()
    trezor = SoftTrezor(txs.ALL12).start()
    flags = {
        "HARDWARE_WALLET_ENABLED": "true",
        "LEDGER_ENABLED": "true",
        "TREZOR_ENABLED": "true",
        "LEDGER_ADDRESS": f"127.0.0.1:{ledger.port}",
        "TREZOR_PATH": trezor.path,
    }
    try:
        with started(
            ferretdb,
            tmp_path_factory.mktemp("dev"),
            "wallet_manager",
            "tron_client",
            node_url=devnet.url,
            **flags,
        ) as c:
            wm = Client(c["wallet_manager"].target)
            tron = c["tron_client"].channel("usdt-manager")
            wallets = {}
            p = policy(trx_per_tx=5_000_000, allow_sign_message=True)
            for kind, vendor in ((KIND.KIND_LEDGER, "ledger"), (KIND.KIND_TREZOR, "trezor")):
                req = pb.CreateWalletRequest(
                    request_id=rid(),
                    wallet=pb.Wallet(owner_id=vendor, kind=kind, policy=p),
                    account_index=0,
                )
                wallets[vendor] = wm.call("CreateWallet", req).wallet
            for txid in devnet.faucet(LEDGER_ADDR0, trx=20_000_000) + devnet.faucet(
                TREZOR_ADDR0, trx=20_000_000
            ):
                devnet.wait_for_tx(txid)
            try:
                yield {
                    "wm": wm,
                    "ledger": ledger,
                    "trezor": trezor,
                    "wallets": wallets,
                    "tron": tc_grpc.TronClientServiceStub(tron),
                    "devnet": devnet,
                }
            finally:
                wm.close()
                tron.close()
    finally:
        ledger.stop()
        trezor.stop()


def node_built_transfer(devnet: Devnet, owner: str, amount: int) -> bytes:
    dest = devnet.new_account()["address"]
    unsigned = devnet.post(
        "wallet/createtransaction",
        {"owner_address": owner, "to_address": dest, "amount": amount, "visible": True},
    )
    return bytes.fromhex(unsigned["raw_data_hex"])


def sign(rig: dict[str, Any], vendor: str, raw: bytes) -> pb.SignTransactionResponse:
    w = rig["wallets"][vendor]
    req = pb.SignTransactionRequest(
        request_id=rid(), wallet_id=w.wallet_id, transaction=common_pb2.Transaction(raw_data=raw)
    )
    return rig["wm"].call("SignTransaction", req, caller="payout-router")


def test_device_wallets_read_their_address_from_the_device(rig: dict[str, Any]) -> None:
    ledger, trezor = rig["wallets"]["ledger"], rig["wallets"]["trezor"]
    assert (ledger.kind, ledger.address, ledger.derivation_path) == (
        KIND.KIND_LEDGER,
        LEDGER_ADDR0,
        "m/44'/195'/0'/0/0",
    )
    assert (trezor.kind, trezor.address) == (KIND.KIND_TREZOR, TREZOR_ADDR0)
    assert trezor.xpub.startswith("xpub") and ledger.xpub.startswith("xpub")
    # GET_PUBLIC_KEY for m/44'/195'/0'/0/0 went over the wire byte for byte.
    assert bytes.fromhex("e002000015058000002c800000c3800000000000000000000000") in rig["ledger"].received


@pytest.mark.parametrize("vendor", ["ledger", "trezor"])
def test_device_signatures_are_accepted_by_the_devnet(rig: dict[str, Any], vendor: str) -> None:
    w = rig["wallets"][vendor]
    raw = node_built_transfer(rig["devnet"], w.address, 1_500_000)
    resp = sign(rig, vendor, raw)
    assert resp.txid == hashlib.sha256(raw).hexdigest()
    assert resp.signature[64] in (0, 1)  # normalised recovery id, whichever device signed
    assert recover_address(bytes.fromhex(resp.txid), resp.signature) == w.address
    if vendor == "ledger":
        assert any(a[:2] == b"\xe0\x04" for a in rig["ledger"].received)  # SIGN APDUs
    else:
        assert any(type(m).__name__ == "TronSignTx" for _, _, m in rig["trezor"].received)
    out = rig["tron"].BroadcastTransaction(
        tc.BroadcastTransactionRequest(request_id=rid(), transaction=resp.signed_transaction), timeout=20
    )
    assert out.txid == resp.txid
    info = rig["devnet"].wait_for_tx(resp.txid)
    assert info.get("receipt", {}).get("result", "SUCCESS") == "SUCCESS", info


@pytest.mark.parametrize("vendor", ["ledger", "trezor"])
def test_user_rejection_is_a_clear_refusal(rig: dict[str, Any], vendor: str) -> None:
    w = rig["wallets"][vendor]
    device = rig[vendor]
    device.state.reject = True
    try:
        with pytest.raises(grpc.RpcError) as err:
            sign(rig, vendor, txs.transfer(w.address, txs.DEST, 1_000))
    finally:
        device.state.reject = False
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(err.value) == "USER_REJECTED"
    assert "rejected on the" in (err.value.details() or "")
    # Nothing was recorded as signed, and the device works again afterwards.
    records = rig["wm"].call("ListSignatures", pb.ListSignaturesRequest(wallet_id=w.wallet_id)).records
    assert all(r.to_address != txs.DEST or r.amount != 1_000 for r in records)
    ok = sign(rig, vendor, txs.transfer(w.address, txs.DEST, 2_000))
    assert recover_address(bytes.fromhex(ok.txid), ok.signature) == w.address


def test_ledger_refusals_and_policy_before_the_device(rig: dict[str, Any]) -> None:
    w = rig["wallets"]["ledger"]
    before = len(rig["ledger"].received)
    # Over the wallet's limit: refused by policy, the device is never asked.
    with pytest.raises(grpc.RpcError) as err:
        sign(rig, "ledger", txs.transfer(w.address, txs.DEST, 6_000_000))
    assert (
        err.value.code() == grpc.StatusCode.PERMISSION_DENIED and error_reason(err.value) == "OVER_TX_LIMIT"
    )
    assert len(rig["ledger"].received) == before
    # A locked device: its status word becomes a reason.
    rig["ledger"].state.locked = True
    try:
        with pytest.raises(grpc.RpcError) as err:
            sign(rig, "ledger", txs.transfer(w.address, txs.DEST, 1_000))
    finally:
        rig["ledger"].state.locked = False
    assert (
        err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(err.value) == "DEVICE_LOCKED"
    )


def test_device_messages(rig: dict[str, Any]) -> None:
    wm = rig["wm"]
    ledger, trezor = rig["wallets"]["ledger"], rig["wallets"]["trezor"]
    msg = b"prove it"
    resp = wm.call(
        "SignMessage", pb.SignMessageRequest(request_id=rid(), wallet_id=ledger.wallet_id, message=msg)
    )
    assert resp.signature[64] in (27, 28) and verify_message_v2(msg, resp.signature, ledger.address)
    with pytest.raises(grpc.RpcError) as err:
        wm.call(
            "SignMessage", pb.SignMessageRequest(request_id=rid(), wallet_id=trezor.wallet_id, message=msg)
        )
    assert (
        err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(err.value) == "UNSUPPORTED"
    )
