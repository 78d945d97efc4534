"""Trezor flows through the real trezorlib (UdpTransport, protocol v1, tron.get_address / tron.sign_tx)
against the software Trezor, with trezor-firmware's own TRON fixtures (common/tests/fixtures/tron)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from trezorlib import messages as m

from devnet.pb import common_pb2, contract_pb2
from services.common.tron.address import from_base58
from services.common.tron.tx import txid_digest as txid
from services.wallet_manager.vault import hd
from services.wallet_manager.vault.ecdsa import recover_address
from services.wallet_manager.vault.errors import MalformedTransaction, SignatureMismatch
from services.wallet_manager.vault.trezor import TrezorError, TrezorTronClient, TrezorUserRejected
from tests.harness.net import free_port
from tests.harness.trezor_device import SoftTrezor

from .txs import ALL12, DEST, USDT, a, raw_tx, transfer, trc20_transfer

OWNER = "TY72iA3SBtrds3QLYsS7LwYfkzXwAXCRWT"
PATH0 = hd.path_indices(0, 0)
# trezor-firmware common/tests/fixtures/tron/sign_tx.json (mnemonic "all" 12 times, m/44'/195'/0'/0/0)
FIXTURES = {
    "TransferContract": (
        "0a02e94222086394747da9fee42140c08afee680335a68080112640a2d747970652e676f6f676c65617069732e636f6d2f"
        "70726f746f636f6c2e5472616e73666572436f6e747261637412330a1541f2cd810c48c401d392ead3c6e1e1cb9f5775"
        "0a5812154141f82674a30ae1328745d08afe2d1a0a2419528318c095d20870e0b5fae68033",
        "a7f8602b02413e9dded0170daa5b4ada9a2679198af276be456f4faea1bc326f5070789bec5e6471de3f726f4fe0c9dac"
        "ed8df183e4a62804db26d5650c59a521c",
    ),
    "TransferContract_amount_int64_max": (
        "0a020fc422089643b084bc8b5cde4080abffe980335a6d080112690a2d747970652e676f6f676c65617069732e636f6d2f"
        "70726f746f636f6c2e5472616e73666572436f6e747261637412380a1541f2cd810c48c401d392ead3c6e1e1cb9f5775"
        "0a5812154141f82674a30ae1328745d08afe2d1a0a2419528318ffffffffffffffff7f70adde8beb8033",
        "36db819a6c50b8c770ff1067a2753692fa8c8bfa7efde8ddfc2f891f7053d9955f6ffd0ee7d6217b448ac3515d97f6877"
        "159b721f2a78da78d1fcc10c1019dd51b",
    ),
    "Memo_hello_world": (
        "0a02ea2a2208d43320ee5a8b677f40f0f6a8e78033520c68656c6c6f20776f726c64215a68080112640a2d747970652e67"
        "6f6f676c65617069732e636f6d2f70726f746f636f6c2e5472616e73666572436f6e747261637412330a1541f2cd810c48"
        "c401d392ead3c6e1e1cb9f57750a5812154141f82674a30ae1328745d08afe2d1a0a2419528318c095d2087090a2a5e78033",
        "7b43c3e8977db4f5475656eec2e643bf1549d923f29c28c009c85b51556a78602aa0f3f2780cb19655dfa8d4eb2102a3c6"
        "b3440ce5b7448a814c860cdc925dd21c",
    ),
}


@pytest.fixture
def device() -> Iterator[SoftTrezor]:
    dev = SoftTrezor(ALL12).start()
    yield dev
    dev.stop()


@pytest.fixture
def trezor(device: SoftTrezor) -> Iterator[TrezorTronClient]:
    with TrezorTronClient(device.path) as client:
        yield client


def test_get_address_fixture_and_session_flow(device: SoftTrezor, trezor: TrezorTronClient) -> None:
    assert [trezor.get_address(hd.path_indices(0, i)) for i in range(3)] == [
        "TY72iA3SBtrds3QLYsS7LwYfkzXwAXCRWT",
        "TFz2CJn9CJb8C4i1Gke3jmZX2fRMJxniH2",
        "TQSw9qVAigRwfgPdf7aW4wxbG9tFitexg2",
    ]
    names = device.names()
    assert names[0] == "Cancel" and "Initialize" in names and names.count("TronGetAddress") == 3
    _, payload, msg = next(r for r in device.received if isinstance(r[2], m.TronGetAddress))
    assert list(msg.address_n) == PATH0 and not msg.show_display
    # Exact bytes: address_n as five uint32 varints (field 1), show_display=false (2), chunkify=false (3).
    want = "08ac80808008" + "08c381808008" + "088080808008" + "0800" + "0800" + "1000" + "1800"
    assert payload.hex() == want


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_sign_firmware_fixtures(device: SoftTrezor, trezor: TrezorTronClient, name: str) -> None:
    raw_hex, want = FIXTURES[name]
    raw = bytes.fromhex(raw_hex)
    sig = trezor.sign_transaction(PATH0, raw, OWNER)
    assert sig.hex() == want and sig[64] in (27, 28)
    assert recover_address(txid(raw), sig) == OWNER
    seq = device.names()
    i = seq.index("TronSignTx")
    assert seq[i : i + 3] == ["TronSignTx", "TronTransferContract", "ButtonAck"]
    # The bytes trezorlib put on the wire carry exactly our transaction's fields.
    sign_tx = device.received[i][2]
    contract = device.received[i + 1][2]
    assert list(sign_tx.address_n) == PATH0 and sign_tx.ref_block_bytes == raw[2:4]
    assert device.received[i + 1][1].hex() in raw_hex  # byte-identical to our parameter value
    assert contract.owner_address == from_base58(OWNER)
    assert contract.to_address == from_base58("TFz2CJn9CJb8C4i1Gke3jmZX2fRMJxniH2")


def test_trc20_and_stake_contracts(trezor: TrezorTronClient) -> None:
    for raw in (
        trc20_transfer(OWNER, USDT, DEST, 1_000_000),
        raw_tx(
            "FreezeBalanceV2Contract",
            contract_pb2.FreezeBalanceV2Contract(
                owner_address=a(OWNER), frozen_balance=10**7, resource=common_pb2.ENERGY
            ),
        ),
        raw_tx(
            "UnfreezeBalanceV2Contract",
            contract_pb2.UnfreezeBalanceV2Contract(owner_address=a(OWNER), unfreeze_balance=10**7),
        ),
    ):
        assert recover_address(txid(raw), trezor.sign_transaction(PATH0, raw, OWNER)) == OWNER


def test_user_rejection(device: SoftTrezor, trezor: TrezorTronClient) -> None:
    device.state.reject = True
    with pytest.raises(TrezorUserRejected) as err:
        trezor.sign_transaction(PATH0, transfer(OWNER, DEST, 1), OWNER)
    assert err.value.reason == "USER_REJECTED"
    with pytest.raises(TrezorUserRejected):
        trezor.get_address(PATH0, show_display=True)
    device.state.reject = False
    assert trezor.get_address(PATH0, show_display=True) == OWNER  # the session survives a rejection


def test_signature_verified_against_our_bytes(device: SoftTrezor, trezor: TrezorTronClient) -> None:
    # A device that signs other bytes than ours is caught, even though the key is right.
    device.state.tamper = True
    with pytest.raises(SignatureMismatch):
        trezor.sign_transaction(PATH0, transfer(OWNER, DEST, 5), OWNER)
    device.state.tamper = False
    # Fields the firmware drops (Permission_id) change the bytes: refused rather than broadcast broken.
    with pytest.raises(SignatureMismatch):
        trezor.sign_transaction(PATH0, transfer(OWNER, DEST, 5, permission_id=2), OWNER)
    # Signing with the key of another index than the owner (fixture "owner_address_not_equals...").
    with pytest.raises(SignatureMismatch):
        trezor.sign_transaction(hd.path_indices(0, 1), bytes.fromhex(FIXTURES["TransferContract"][0]), OWNER)


def test_unsupported_and_forbidden(trezor: TrezorTronClient) -> None:
    deleg = contract_pb2.DelegateResourceContract(owner_address=a(OWNER), balance=1, receiver_address=a(DEST))
    with pytest.raises(MalformedTransaction):
        trezor.sign_transaction(PATH0, raw_tx("DelegateResourceContract", deleg), OWNER)
    with pytest.raises(TrezorError) as err:
        trezor.get_address([44 | 0x80000000, 60 | 0x80000000, 0x80000000, 0, 0])
    assert err.value.reason == "INVALID_PATH"
    with pytest.raises(TrezorError) as err:
        trezor.sign_personal_message(PATH0, b"hi", OWNER)
    assert err.value.reason == "UNSUPPORTED"


def test_account_xpub_and_watch_only(trezor: TrezorTronClient) -> None:
    xpub = trezor.account_xpub(0)
    assert xpub == hd.account_xpub(hd.seed_from_mnemonic(ALL12), 0)
    assert hd.WatchOnlyAccount(xpub).address(2) == "TQSw9qVAigRwfgPdf7aW4wxbG9tFitexg2"


def test_no_device_old_firmware_locked() -> None:
    with pytest.raises(TrezorError) as err:
        TrezorTronClient(f"udp:127.0.0.1:{free_port()}")
    assert err.value.reason == "DEVICE_UNAVAILABLE"
    for attr, value, reason in (
        ("firmware", (2, 10, 0), "UNSUPPORTED_FIRMWARE"),
        ("locked", True, "DEVICE_LOCKED"),
    ):
        dev = SoftTrezor(ALL12)
        setattr(dev.state, attr, value)
        dev.start()
        try:
            with pytest.raises(TrezorError) as err:
                TrezorTronClient(dev.path)
            assert err.value.reason == reason
        finally:
            dev.stop()
