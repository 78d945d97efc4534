"""The service's key custody (keys.KeyVault) in-process over a real database: sealed records hold no
plaintext, signatures recover to the wallet (and match the Ledger vector), a record under another id or
tampered never opens, a key of another address never signs, both keys work during a rotation and a key
the records are not under opens nothing, and a missing WALLET_ENCRYPTION_KEY is VAULT_UNAVAILABLE."""

from __future__ import annotations

import bson
import pytest

from services.common.errors import FailedPrecondition
from services.wallet_manager.keys import SEED_ID, secret_id
from services.wallet_manager.vault import hd
from services.wallet_manager.vault.ecdsa import recover_address, sign_digest
from services.wallet_manager.vault.errors import SignatureMismatch, VaultError
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
        await _unavailable(key_vault(store, "an unrelated key").sign_digest(secret_id("r", 0), tx.txid, ""))


async def test_missing_encryption_key_is_vault_unavailable(ferretdb: FerretDB) -> None:
    async with key_store(ferretdb) as store:
        await _unavailable(key_vault(store, "").keyring())
