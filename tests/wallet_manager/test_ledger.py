"""Ledger flows through the real ledgerblue TCP transport against the software TRON-app device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.tron.tx import txid_digest as txid
from services.wallet_manager.vault import hd
from services.wallet_manager.vault.ecdsa import recover_address
from services.wallet_manager.vault.errors import SignatureMismatch
from services.wallet_manager.vault.ledger import (
    LedgerError,
    LedgerTronClient,
    LedgerUserRejected,
    open_tcp,
    sign_apdus,
)
from services.wallet_manager.vault.messages import hash_message_v2, verify_message_v2
from services.wallet_manager.vault.tron_tx import top_level_fields
from tests.harness.ledger_device import SoftLedger
from tests.harness.net import free_port

from .txs import (
    ABANDON,
    ABANDON_ADDR0,
    DEST,
    LEDGER_VECTOR_RAW,
    LEDGER_VECTOR_SIG,
    USDT,
    trc20_call,
    trc20_transfer,
)

REPO = Path(__file__).resolve().parents[2]
PATH0 = hd.path_indices(0, 0)
PATH_HEX = "058000002c800000c3800000000000000000000000"


@pytest.fixture
def device() -> Iterator[SoftLedger]:
    dev = SoftLedger(ABANDON).start()
    yield dev
    dev.stop()


@pytest.fixture
def ledger(device: SoftLedger) -> Iterator[LedgerTronClient]:
    with LedgerTronClient(open_tcp("127.0.0.1", device.port)) as client:
        yield client


def test_get_address_exact_apdu(device: SoftLedger, ledger: LedgerTronClient) -> None:
    got = ledger.get_address(PATH0)
    assert got.address == ABANDON_ADDR0 and len(got.public_key) == 65
    assert device.received == [bytes.fromhex("e002000015" + PATH_HEX)]
    with_cc = ledger.get_address(PATH0, confirm=True, chain_code=True)
    assert with_cc.chain_code is not None and len(with_cc.chain_code) == 32
    assert device.received[-1] == bytes.fromhex("e002010115" + PATH_HEX)


def test_sign_vector_single_apdu(device: SoftLedger, ledger: LedgerTronClient) -> None:
    sig = ledger.sign_transaction(PATH0, LEDGER_VECTOR_RAW, ABANDON_ADDR0)
    assert sig.hex() == LEDGER_VECTOR_SIG
    assert device.received == [bytes.fromhex("e00410009a" + PATH_HEX) + LEDGER_VECTOR_RAW]


def test_multi_chunk_split_at_field_boundaries(device: SoftLedger, ledger: LedgerTronClient) -> None:
    device.state.allow_data = True
    raw = trc20_transfer(ABANDON_ADDR0, USDT, DEST, 5_000_000, memo=b"m" * 200)
    sig = ledger.sign_transaction(PATH0, raw, ABANDON_ADDR0)
    assert recover_address(txid(raw), sig) == ABANDON_ADDR0 and sig[64] in (0, 1)
    apdus = device.received
    assert len(apdus) >= 2 and apdus == sign_apdus(PATH0, raw)
    assert [a[2] for a in apdus] == [0x00] + [0x80] * (len(apdus) - 2) + [0x90]
    assert all(a[:2] == b"\xe0\x04" and a[3] == 0 and a[4] == len(a) - 5 <= 250 for a in apdus)
    body = b"".join(a[5:] for a in apdus)
    assert body == bytes.fromhex(PATH_HEX) + raw
    # Every chunk is a whole number of top-level fields.
    ends, pos = set(), 0
    for f in top_level_fields(raw):
        pos += len(f)
        ends.add(pos)
    cut = -len(bytes.fromhex(PATH_HEX))
    for a in apdus[:-1]:
        cut += len(a) - 5
        assert cut in ends


def test_mid_field_split_is_refused_by_the_device(ledger: LedgerTronClient) -> None:
    raw = LEDGER_VECTOR_RAW
    first = bytes.fromhex("e004000015" + PATH_HEX)[:4] + bytes([21 + 20]) + bytes.fromhex(PATH_HEX) + raw[:20]
    with pytest.raises(LedgerError) as err:
        ledger.exchange(first)
    assert (err.value.sw, err.value.reason) == (0x6A80, "INVALID_DATA")


def test_settings_refusals(device: SoftLedger, ledger: LedgerTronClient) -> None:
    memo = trc20_transfer(ABANDON_ADDR0, USDT, DEST, 1, memo=b"note")
    with pytest.raises(LedgerError) as err:
        ledger.sign_transaction(PATH0, memo, ABANDON_ADDR0)
    assert (err.value.sw, err.value.reason) == (0x6A8B, "DATA_NOT_ALLOWED")
    assert "Allow data" in str(err.value)
    custom = trc20_call(ABANDON_ADDR0, USDT, bytes.fromhex("40c10f19") + bytes(64))
    with pytest.raises(LedgerError) as err:
        ledger.sign_transaction(PATH0, custom, ABANDON_ADDR0)
    assert (err.value.sw, err.value.reason) == (0x6A8D, "CUSTOM_CONTRACTS_NOT_ALLOWED")
    device.state.allow_custom = True
    device.state.allow_data = True
    for raw in (memo, custom):
        assert recover_address(txid(raw), ledger.sign_transaction(PATH0, raw, ABANDON_ADDR0)) == ABANDON_ADDR0
    cfg = ledger.get_app_configuration()
    assert (cfg.allow_data, cfg.allow_custom_contracts, cfg.sign_by_hash, cfg.version) == (
        True,
        True,
        False,
        "0.7.1",
    )


def test_user_rejection(device: SoftLedger, ledger: LedgerTronClient) -> None:
    device.state.reject = True
    with pytest.raises(LedgerUserRejected) as err:
        ledger.sign_transaction(PATH0, LEDGER_VECTOR_RAW, ABANDON_ADDR0)
    assert (err.value.sw, err.value.reason) == (0x6985, "USER_REJECTED")
    with pytest.raises(LedgerUserRejected):
        ledger.get_address(PATH0, confirm=True)
    with pytest.raises(LedgerUserRejected):
        ledger.sign_personal_message(PATH0, b"hi", ABANDON_ADDR0)
    assert ledger.get_address(PATH0).address == ABANDON_ADDR0  # no confirmation: no rejection


def test_wrong_app_locked_unknown_ins_bad_path(device: SoftLedger, ledger: LedgerTronClient) -> None:
    with pytest.raises(LedgerError) as err:
        ledger.exchange(bytes.fromhex("e0ff000000"))
    assert (err.value.sw, err.value.reason) == (0x6D00, "WRONG_APP")
    with pytest.raises(LedgerError) as err:
        ledger.get_address([44 | 0x80000000, 60 | 0x80000000, 0x80000000, 0, 0])
    assert err.value.sw == 0x6982
    device.state.wrong_app = True
    with pytest.raises(LedgerError) as err:
        ledger.get_address(PATH0)
    assert (err.value.sw, err.value.reason) == (0x6E00, "WRONG_APP")
    device.state.wrong_app, device.state.locked = False, True
    with pytest.raises(LedgerError) as err:
        ledger.get_address(PATH0)
    assert (err.value.sw, err.value.reason) == (0x5515, "DEVICE_LOCKED")


def test_signature_checked_against_expected_address(ledger: LedgerTronClient) -> None:
    other = hd.derive_key(hd.seed_from_mnemonic(ABANDON), 0, 1).address
    with pytest.raises(SignatureMismatch):
        ledger.sign_transaction(PATH0, LEDGER_VECTOR_RAW, other)


@pytest.mark.parametrize("size", [5, 230, 600])
def test_personal_message(device: SoftLedger, ledger: LedgerTronClient, size: int) -> None:
    msg = bytes(i % 251 for i in range(size))
    sig = ledger.sign_personal_message(PATH0, msg, ABANDON_ADDR0)
    assert sig[64] in (0, 1) and verify_message_v2(msg, sig, ABANDON_ADDR0)
    assert recover_address(hash_message_v2(msg), sig) == ABANDON_ADDR0
    first = device.received[0]
    assert first[:4] == bytes.fromhex("e0080000")
    assert first[5 : 5 + 21 + 4] == bytes.fromhex(PATH_HEX) + size.to_bytes(4, "big")
    assert all(a[:4] == bytes.fromhex("e0088000") for a in device.received[1:])
    assert b"".join(a[5:] for a in device.received)[25:] == msg


def test_account_xpub_matches_seed(ledger: LedgerTronClient) -> None:
    seed = hd.seed_from_mnemonic(ABANDON)
    assert ledger.account_xpub(0) == hd.account_xpub(seed, 0)
    assert hd.WatchOnlyAccount(ledger.account_xpub(0)).address(0) == ABANDON_ADDR0


def test_no_device() -> None:
    with pytest.raises(LedgerError) as err:
        open_tcp("127.0.0.1", free_port())
    assert err.value.reason == "DEVICE_UNAVAILABLE"


def test_ledgerblue_getdongle_with_proxy_env(device: SoftLedger) -> None:
    # ledgerblue.comm reads LEDGER_PROXY_* at import time, so this runs in a fresh interpreter.
    script = (
        "import json; from services.wallet_manager.vault.ledger import LedgerTronClient, open_usb\n"
        "c = LedgerTronClient(open_usb()); print(json.dumps(c.get_address([0x8000002c, 0x800000c3, "
        "0x80000000, 0, 0]).address)); c.close()\n"
    )
    env = {**os.environ, "LEDGER_PROXY_ADDRESS": "127.0.0.1", "LEDGER_PROXY_PORT": str(device.port)}
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ABANDON_ADDR0
