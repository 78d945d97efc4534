"""BIP39/BIP44 TRON derivation against published vectors (app-tron README, Trezor fixtures, public code)."""

from __future__ import annotations

import pytest

from services.common.tron.address import private_key_to_address
from services.wallet_manager.vault import hd
from services.wallet_manager.vault.errors import InvalidMnemonic, VaultError

from .txs import ABANDON, ALL12

# "abandon" 11 times then "about": app-tron README/examples (index 0, key b5a4cea2…9a28); indices 1, 2 match
# independent public implementations (Ian Coleman tool, Node.js/Swift ports).
ABANDON_VECTORS = [
    (0, "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"),
    (1, "TSeJkUh4Qv67VNFwY8LaAxERygNdy6NQZK"),
    (2, "TYJPRrdB5APNeRs4R7fYZSwW3TcrTKw2gx"),
]
# "all" 12 times: trezor-firmware common/tests/fixtures/tron (hardware-wallets.md §3.1).
ALL_VECTORS = [
    (0, "TY72iA3SBtrds3QLYsS7LwYfkzXwAXCRWT"),
    (1, "TFz2CJn9CJb8C4i1Gke3jmZX2fRMJxniH2"),
    (2, "TQSw9qVAigRwfgPdf7aW4wxbG9tFitexg2"),
]
ALL_XPUB = (
    "xpub6DCWphzD1URX6NLY4bzJQoNz3Ja14ueGphAz3c7XdzyfR3hbsv4XybKuXVPSGF"
    "iASvcugTyiJrQyw5u33izp6rB1W9fgZM4ugKQJQBcEFo8"
)


@pytest.mark.parametrize(("mnemonic", "vectors"), [(ABANDON, ABANDON_VECTORS), (ALL12, ALL_VECTORS)])
def test_derivation_vectors(mnemonic: str, vectors: list[tuple[int, str]]) -> None:
    seed = hd.seed_from_mnemonic(mnemonic)
    watch = hd.WatchOnlyAccount(hd.account_xpub(seed, 0))
    for index, address in vectors:
        key = hd.derive_key(seed, 0, index)
        assert key.address == address
        assert private_key_to_address(key.private_key) == address
        assert watch.address(index) == address
        assert key.path == f"m/44'/195'/0'/0/{index}"


def test_abandon_private_key_matches_app_tron_readme() -> None:
    key = hd.derive_key(hd.seed_from_mnemonic(ABANDON), 0, 0)
    assert key.private_key.hex().startswith("b5a4cea2") and key.private_key.hex().endswith("9a28")
    assert "b5a4" not in repr(key)


def test_account_xpub_matches_trezor_public_node() -> None:
    assert hd.account_xpub(hd.seed_from_mnemonic(ALL12), 0) == ALL_XPUB


def test_accounts_are_distinct_and_path_indices() -> None:
    seed = hd.seed_from_mnemonic(ABANDON)
    assert hd.derive_key(seed, 1, 0).address != hd.derive_key(seed, 0, 0).address
    assert hd.path_indices(0, 0) == [0x8000002C, 0x800000C3, 0x80000000, 0, 0]
    with pytest.raises(VaultError):
        hd.tron_path(0, 2**31)


def test_generated_mnemonic_validates_and_bad_ones_do_not() -> None:
    m = hd.generate_mnemonic()
    assert len(m.split()) == 24 and hd.validate_mnemonic(m.upper()) == m
    assert len(hd.generate_mnemonic(12).split()) == 12
    bad = ABANDON.replace("about", "abandon")  # checksum wrong
    with pytest.raises(InvalidMnemonic) as err:
        hd.seed_from_mnemonic(bad)
    assert "abandon" not in str(err.value)
    with pytest.raises(InvalidMnemonic):
        hd.validate_mnemonic("abandon notaword " * 6)


def test_watch_only_refuses_private_extended_keys_and_garbage() -> None:
    from bip_utils import Bip32Secp256k1

    xprv = Bip32Secp256k1.FromSeed(hd.seed_from_mnemonic(ABANDON)).PrivateKey().ToExtended()
    with pytest.raises(VaultError):
        hd.WatchOnlyAccount(xprv)
    with pytest.raises(VaultError):
        hd.WatchOnlyAccount("xpub-not-really")


def test_xpub_from_device_parts_equals_seed_xpub() -> None:
    from bip_utils import Bip32Secp256k1

    seed = hd.seed_from_mnemonic(ALL12)
    master = Bip32Secp256k1.FromSeed(seed)
    parent = master.DerivePath("m/44'/195'")
    acct = master.DerivePath("m/44'/195'/0'")
    xpub = hd.xpub_from_parts(
        acct.ChainCode().ToBytes(),
        acct.PublicKey().RawCompressed().ToBytes(),
        parent.PublicKey().FingerPrint().ToBytes(),
        0,
    )
    assert xpub == ALL_XPUB
