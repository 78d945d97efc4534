"""The service's key custody (keys.KeyVault) in-process over a real database: sealed records hold no
plaintext, signatures recover to the wallet (and match the Ledger vector), a record under another id or
tampered never opens, a key of another address never signs, both keys work during a rotation and a key
the records are not under opens nothing; stored scrypt parameters below the minimum are VAULT_UNAVAILABLE,
records of the legacy cost still open and rotation upgrades them; the public devnet key is used only once
tron-client reports a devnet."""

from __future__ import annotations

import bson
import pytest
from pydantic import SecretStr

from services.common.errors import FailedPrecondition
from services.common.settings import ServiceName, TronNetwork
from services.wallet_manager import admin
from services.wallet_manager.keys import KDF_DOC, LEGACY_KDF_DOC, SEED_ID, KeyVault, secret_id
from services.wallet_manager.settings import WalletManagerSettings
from services.wallet_manager.vault import hd
from services.wallet_manager.vault.ecdsa import recover_address, sign_digest
from services.wallet_manager.vault.errors import SignatureMismatch, VaultError
from services.wallet_manager.vault.keystore import LEGACY_SCRYPT_N, MIN_SCRYPT_N, KdfParams, Kek, Keyring
from services.wallet_manager.vault.tron_tx import parse_transaction
from tests.harness.ferretdb import FerretDB

from .service_support import KEY, KEY2, key_store, key_vault
from .txs import ABANDON, ABANDON_ADDR0, DEST, LEDGER_VECTOR_RAW, LEDGER_VECTOR_SIG, transfer

SEED = hd.seed_from_mnemonic(ABANDON)


async def _unavailable(coro: object) -> None:
    with pytest.raises(FailedPrecondition) as err:
        await coro  # type: ignore[misc]
    assert err.value.reason == "VAULT_UNAVAILABLE"


async def test_sealed_keys_sign_for_their_own_address_only(ferretdb: FerretDB) -> None:
    async with key_store(ferretdb) as store:
        vault = key_vault(store)
        for index in range(3):
            key = hd.derive_key(SEED, 0, index)
            await vault.seal_key(secret_id("w", index), "w", key.private_key)
            tx = parse_transaction(transfer(key.address, DEST, 1))
            sig = await vault.sign_digest(secret_id("w", index), tx.txid, key.address)
            assert len(sig) == 65 and sig[64] in (0, 1)
            assert recover_address(tx.txid, sig) == key.address
            doc = await store.get_secret(secret_id("w", index))
            assert doc is not None and key.private_key not in bson.encode(doc)
        seed_doc = await store.get_secret(SEED_ID)
        assert seed_doc is not None and len(seed_doc["sealed"]["ciphertext"]) >= 64 + 16
        vector = parse_transaction(LEDGER_VECTOR_RAW)
        sig = await vault.sign_digest(secret_id("w", 0), vector.txid, ABANDON_ADDR0)
        assert sig.hex() == LEDGER_VECTOR_SIG
        assert sign_digest(hd.derive_key(SEED, 0, 0).private_key, vector.txid).hex() == LEDGER_VECTOR_SIG
        # The key of index 1 never signs for index 0's address.
        with pytest.raises(SignatureMismatch):
            await vault.sign_digest(secret_id("w", 1), bytes(32), ABANDON_ADDR0)
        with pytest.raises(VaultError):  # one sealed key per address, never replaced
            await vault.seal_key(secret_id("w", 0), "w", hd.derive_key(SEED, 0, 5).private_key)


async def test_moved_or_tampered_records_never_open(ferretdb: FerretDB) -> None:
    async with key_store(ferretdb) as store:
        vault = key_vault(store)
        key = hd.derive_key(SEED, 0, 0)
        await vault.seal_key(secret_id("a", 0), "a", key.private_key)
        good = await store.get_secret(secret_id("a", 0))
        seed = await store.get_secret(SEED_ID)
        assert good is not None and seed is not None
        # Another wallet's record, and the master seed's, stored under a wallet key's id.
        await store.insert_secret(secret_id("b", 0), "private_key", "b", good["sealed"])
        await store.insert_secret(secret_id("s", 0), "private_key", "s", seed["sealed"])
        tampered = dict(good["sealed"])
        tampered["ciphertext"] = bytes([tampered["ciphertext"][0] ^ 1]) + tampered["ciphertext"][1:]
        await store.insert_secret(secret_id("a", 1), "private_key", "a", good["sealed"])
        await store.secrets.update_one({"_id": secret_id("a", 0)}, {"$set": {"sealed": tampered}})
        fresh = key_vault(store)  # no cached records
        for sid in (secret_id("a", 0), secret_id("a", 1), secret_id("b", 0), secret_id("s", 0)):
            await _unavailable(fresh.sign_digest(sid, bytes(32), key.address))
        await _unavailable(fresh.sign_digest(secret_id("nobody", 0), bytes(32), key.address))


async def test_rotation_accepts_both_keys_and_a_foreign_key_opens_nothing(ferretdb: FerretDB) -> None:
    async with key_store(ferretdb) as store:
        key = hd.derive_key(SEED, 0, 0)
        await key_vault(store, KEY).seal_key(secret_id("r", 0), "r", key.private_key)
        both = key_vault(store, KEY2, previous=KEY)
        tx = parse_transaction(transfer(key.address, DEST, 1))
        assert recover_address(tx.txid, await both.sign_digest(secret_id("r", 0), tx.txid, key.address)) == (
            key.address
        )
        assert await both.with_seed(lambda s: len(s)) == 64
        other = hd.derive_key(SEED, 0, 1)
        await both.seal_key(secret_id("r", 1), "r", other.private_key)
        old_doc = await store.get_secret(secret_id("r", 0))
        new_doc = await store.get_secret(secret_id("r", 1))
        assert old_doc is not None and new_doc is not None
        assert old_doc["sealed"]["kek_id"] != new_doc["sealed"]["kek_id"]  # new records on the new key
        # A process with only a key the records are not under fails closed (the seed is not re-made).
        await _unavailable(
            key_vault(store, "an unrelated key, as long as the others").sign_digest(
                secret_id("r", 0), tx.txid, ""
            )
        )


async def test_stored_kdf_parameters_below_the_minimum_are_vault_unavailable(ferretdb: FerretDB) -> None:
    for doc_id, n in ((KDF_DOC, MIN_SCRYPT_N // 2), (LEGACY_KDF_DOC, LEGACY_SCRYPT_N // 2)):
        async with key_store(ferretdb) as store:
            # Planted before the first start: the service would derive its KEK with a cheap scrypt.
            await store.get_or_create_vault_doc(doc_id, KdfParams.generate(n=n).to_doc())
            with pytest.raises(FailedPrecondition) as err:
                await key_vault(store).keyring()
            assert err.value.reason == "VAULT_UNAVAILABLE" and "KDF parameters refused" in err.value.message
    # A record claiming cheaper parameters than its KEK's never opens.
    async with key_store(ferretdb) as store:
        key = hd.derive_key(SEED, 0, 0)
        await key_vault(store).seal_key(secret_id("w", 0), "w", key.private_key)
        await store.secrets.update_one({"_id": secret_id("w", 0)}, {"$set": {"sealed.kdf.n": 2**12}})
        with pytest.raises(FailedPrecondition) as err:
            await key_vault(store).sign_digest(secret_id("w", 0), bytes(32), key.address)
        assert err.value.reason == "VAULT_UNAVAILABLE" and "KDF parameters refused" in err.value.message


async def test_legacy_records_still_open_and_rotation_upgrades_them(ferretdb: FerretDB) -> None:
    db_name = ferretdb.db_name("wmlegacy")
    async with key_store(ferretdb, db_name) as store:
        # A database as the service left it before MIN_SCRYPT_N: one KDF document (N = 2**15), records
        # without stated parameters.
        legacy_params = KdfParams.generate(n=LEGACY_SCRYPT_N)
        await store.get_or_create_vault_doc(LEGACY_KDF_DOC, legacy_params.to_doc())
        legacy = Keyring(Kek.derive(KEY, legacy_params))
        key = hd.derive_key(SEED, 0, 0)
        old_sid = secret_id("old", 0)
        for sid, secret, purpose, wallet in (
            (SEED_ID, SEED, "seed", ""),
            (old_sid, key.private_key, "private_key", "old"),
        ):
            rec = legacy.seal(sid, secret, purpose=purpose).to_doc()
            rec.pop("kdf")
            await store.insert_secret(sid, purpose, wallet, rec)
        tx = parse_transaction(transfer(key.address, DEST, 1))

        async def signs_old_key(vault: KeyVault) -> bool:
            return (
                recover_address(tx.txid, await vault.sign_digest(old_sid, tx.txid, key.address))
                == key.address
            )

        vault = key_vault(store)
        assert await signs_old_key(vault)
        await vault.seal_key(secret_id("new", 0), "new", hd.derive_key(SEED, 0, 1).private_key)
        new_doc = await store.get_secret(secret_id("new", 0))
        assert new_doc is not None and new_doc["sealed"]["kdf"]["n"] >= MIN_SCRYPT_N  # new records: new cost

        settings = WalletManagerSettings(
            SERVICE_NAME=ServiceName.WALLET_MANAGER,
            TRON_NETWORK=TronNetwork.MAINNET,
            WALLET_ENCRYPTION_KEY=SecretStr(KEY),
            MONGODB_URI=SecretStr(ferretdb.uri),
            PAYMENT_DB_NAME=db_name,
        )
        assert await admin.rotate(settings) == 0
        for sid in (SEED_ID, old_sid, secret_id("new", 0)):
            doc = await store.get_secret(sid)
            assert doc is not None and doc["sealed"]["kdf"] == new_doc["sealed"]["kdf"], sid
        # The legacy parameters are no longer needed: a fresh process without them opens everything.
        await store.vault.delete_one({"_id": LEGACY_KDF_DOC})
        assert await signs_old_key(key_vault(store))


async def test_the_devnet_key_needs_tron_client_to_report_a_devnet(ferretdb: FerretDB) -> None:
    settings = WalletManagerSettings(SERVICE_NAME=ServiceName.WALLET_MANAGER)  # devnet on loopback, no key
    assert settings.uses_devnet_fallback_key
    reports = [("mainnet", 0x2B6653DC), ("devnet", 0x2B6653DC), ("nile", 0x1234)]
    for network, chain_id in reports:

        async def info(network: str = network, chain_id: int = chain_id) -> tuple[str, int]:
            return network, chain_id

        async with key_store(ferretdb) as store:
            with pytest.raises(FailedPrecondition) as err:
                await KeyVault(settings, store, info).keyring()
            assert err.value.reason == "VAULT_UNAVAILABLE" and "is not a local devnet" in err.value.message
            assert await store.get_secret(SEED_ID) is None  # nothing was sealed under the public key

    async def devnet() -> tuple[str, int]:
        return "devnet", 0x5A17E1D0

    async with key_store(ferretdb) as store:
        assert (await KeyVault(settings, store, devnet).keyring()).active_id.startswith("kek-")
