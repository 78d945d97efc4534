"""The servicer-facing facade: master seed, HD and imported wallets, signing (software and device),
TronLink proofs, rotation; and no plaintext in any stored record."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from services.common.tron.tx import txid_digest as txid
from services.wallet_manager.vault import hd
from services.wallet_manager.vault.core import MASTER_SEED_ID, Vault
from services.wallet_manager.vault.ecdsa import recover_address
from services.wallet_manager.vault.errors import (
    MalformedTransaction,
    SecretUnavailable,
    UnknownKek,
    VaultError,
)
from services.wallet_manager.vault.keystore import KdfParams
from services.wallet_manager.vault.ledger import LedgerTronClient, LedgerUserRejected, open_tcp
from services.wallet_manager.vault.messages import verify_message_v2
from services.wallet_manager.vault.policy import AssetLimit, WalletPolicy
from services.wallet_manager.vault.tronlink import new_challenge, verify_proof
from tests.harness.ledger_device import SoftLedger

from .txs import ABANDON, ABANDON_ADDR0, DEST, transfer

KDF = KdfParams.generate(n=2**12).to_doc()
POL = WalletPolicy(limits={"TRX": AssetLimit(per_tx=10_000_000, daily=15_000_000)})


@pytest.fixture(scope="module")
def vault() -> Vault:
    v, doc = Vault.from_secrets("operator key one", kdf_doc=KDF)
    assert doc == KDF
    return v


def _all_bytes(doc: dict) -> bytes:
    return b"".join(v if isinstance(v, bytes) else str(v).encode() for v in doc.values())


def test_master_seed_and_hd_wallets(vault: Vault) -> None:
    sealed_seed = vault.new_master_seed(ABANDON)
    assert sealed_seed["wallet_id"] == MASTER_SEED_ID
    seed = hd.seed_from_mnemonic(ABANDON)
    assert seed not in _all_bytes(sealed_seed) and b"abandon" not in _all_bytes(sealed_seed)
    w = vault.derive_hd_wallet(sealed_seed, "wallet-a", account=0, index=0)
    assert w.address == ABANDON_ADDR0 and (w.account, w.index) == (0, 0)
    assert hd.derive_key(seed, 0, 0).private_key not in _all_bytes(w.sealed)
    assert "b5a4" not in repr(w)
    assert vault.derive_address(sealed_seed, 0, 1) == "TSeJkUh4Qv67VNFwY8LaAxERygNdy6NQZK"
    assert vault.account_xpub(sealed_seed, 0) == hd.account_xpub(seed, 0)
    fresh = vault.new_master_seed()
    assert vault.derive_address(fresh, 0, 0) != ABANDON_ADDR0
    with pytest.raises(SecretUnavailable):  # the seed record cannot be opened as a wallet key
        vault.keyring.open("wallet-a", sealed_seed, "private_key")


def test_sign_allowed_refused_and_watch_only(vault: Vault) -> None:
    w = vault.derive_hd_wallet(vault.new_master_seed(ABANDON), "wallet-a", 0, 0)
    raw = transfer(w.address, DEST, 5_000_000)
    res = vault.sign_transaction(
        wallet_id="wallet-a", address=w.address, raw=raw, policy=POL, sealed_key=w.sealed
    )
    assert res.signature is not None and res.decision.allowed and res.txid_hex == txid(raw).hex()
    assert recover_address(txid(raw), res.signature) == w.address
    over = vault.sign_transaction(
        wallet_id="wallet-a",
        address=w.address,
        raw=raw,
        policy=POL,
        sealed_key=w.sealed,
        spent_today={"TRX": 12_000_000},
    )
    assert over.signature is None and over.decision.reason == "OVER_DAILY_LIMIT"
    watch = vault.sign_transaction(wallet_id="wallet-w", address=w.address, raw=raw, policy=POL)
    assert watch.signature is None and watch.decision.reason == "WATCH_ONLY"
    # The record of wallet-a used for another wallet id fails closed.
    with pytest.raises(SecretUnavailable):
        vault.sign_transaction(
            wallet_id="wallet-b", address=w.address, raw=raw, policy=POL, sealed_key=w.sealed
        )
    with pytest.raises(MalformedTransaction):
        vault.sign_transaction(
            wallet_id="wallet-a", address=w.address, raw=b"\x01", policy=POL, sealed_key=w.sealed
        )


def test_import_and_message_signing(vault: Vault) -> None:
    key_hex = "11" * 32
    m = vault.import_private_key("imp-1", "0x" + key_hex)
    assert bytes.fromhex(key_hex) not in _all_bytes(m.sealed)
    sig = vault.sign_message(wallet_id="imp-1", address=m.address, message="hello", sealed_key=m.sealed)
    assert sig[64] in (27, 28) and verify_message_v2("hello", sig, m.address)
    with pytest.raises(VaultError) as err:
        vault.import_private_key("imp-2", "zz" + key_hex)
    assert key_hex not in str(err.value)
    with pytest.raises(VaultError):
        vault.import_private_key("imp-2", "00" * 32)  # zero is not a valid secp256k1 key
    with pytest.raises(VaultError):
        vault.sign_message(wallet_id="imp-1", address=ABANDON_ADDR0, message="x", sealed_key=m.sealed)


@pytest.fixture
def ledger() -> Iterator[tuple[SoftLedger, LedgerTronClient]]:
    dev = SoftLedger(ABANDON).start()
    client = LedgerTronClient(open_tcp("127.0.0.1", dev.port))
    yield dev, client
    client.close()
    dev.stop()


def test_sign_on_device_goes_through_policy_first(
    vault: Vault, ledger: tuple[SoftLedger, LedgerTronClient]
) -> None:
    dev, client = ledger
    path = hd.path_indices(0, 0)
    raw = transfer(ABANDON_ADDR0, DEST, 1_000_000)
    res = vault.sign_transaction(
        wallet_id="ledger-1", address=ABANDON_ADDR0, raw=raw, policy=POL, device=client, device_path=path
    )
    assert res.signature is not None and recover_address(txid(raw), res.signature) == ABANDON_ADDR0
    n = len(dev.received)
    refused = vault.sign_transaction(
        wallet_id="ledger-1",
        address=ABANDON_ADDR0,
        raw=transfer(ABANDON_ADDR0, DEST, 50_000_000),
        policy=POL,
        device=client,
        device_path=path,
    )
    assert refused.decision.reason == "OVER_TX_LIMIT" and len(dev.received) == n  # device never asked
    dev.state.reject = True
    with pytest.raises(LedgerUserRejected):
        vault.sign_transaction(
            wallet_id="ledger-1", address=ABANDON_ADDR0, raw=raw, policy=POL, device=client, device_path=path
        )


def test_rotation_through_the_facade() -> None:
    old, _ = Vault.from_secrets("old key", kdf_doc=KDF)
    seed = old.new_master_seed(ABANDON)
    w = old.derive_hd_wallet(seed, "w1", 0, 0)
    both, _ = Vault.from_secrets("new key", previous=["old key"], kdf_doc=KDF)
    assert both.derive_address(seed, 0, 0) == ABANDON_ADDR0  # old records readable at once
    seed2, w2 = both.rewrap(MASTER_SEED_ID, seed), both.rewrap("w1", w.sealed)
    assert seed2 is not None and w2 is not None and both.rewrap("w1", w2) is None
    new_only, _ = Vault.from_secrets("new key", kdf_doc=KDF)
    raw = transfer(ABANDON_ADDR0, DEST, 1)
    ok = new_only.sign_transaction(wallet_id="w1", address=ABANDON_ADDR0, raw=raw, policy=POL, sealed_key=w2)
    assert (
        ok.signature is not None
        and new_only.derive_address(seed2, 0, 2) == "TYJPRrdB5APNeRs4R7fYZSwW3TcrTKw2gx"
    )
    with pytest.raises(UnknownKek):
        new_only.sign_transaction(
            wallet_id="w1", address=ABANDON_ADDR0, raw=raw, policy=POL, sealed_key=w.sealed
        )
    with pytest.raises(VaultError):
        Vault.from_secrets("", kdf_doc=KDF)


def test_tronlink_proof() -> None:
    key = hd.derive_key(hd.seed_from_mnemonic(ABANDON), 0, 4)
    now = time.time()
    ch = new_challenge(key.address, ttl_seconds=60, now=now)
    assert key.address in ch.message and ch.nonce in ch.message and len(ch.nonce) == 32
    from services.wallet_manager.vault.messages import sign_message_v2

    sig = sign_message_v2(key.private_key, ch.message)
    assert verify_proof(ch, "0x" + sig.hex(), now=now + 1).ok
    assert verify_proof(ch, sig, now=now + 61).reason == "CHALLENGE_EXPIRED"
    other = hd.derive_key(hd.seed_from_mnemonic(ABANDON), 0, 5)
    assert verify_proof(ch, sign_message_v2(other.private_key, ch.message), now=now).reason == "WRONG_SIGNER"
    assert verify_proof(ch, "0x1234", now=now).reason == "BAD_SIGNATURE"
    # A proof for one challenge does not verify against another (different nonce).
    ch2 = new_challenge(key.address, now=now)
    assert ch2.nonce != ch.nonce and verify_proof(ch2, sig, now=now).reason == "WRONG_SIGNER"
    with pytest.raises(VaultError):
        new_challenge("Tnot-an-address")
