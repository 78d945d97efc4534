"""Operator commands of wallet-manager (`python -m services.wallet_manager <command>`).

rotate-key   Re-wrap every data key under WALLET_ENCRYPTION_KEY (the new key), opening records wrapped
             under WALLET_ENCRYPTION_KEY_PREVIOUS (the old one). No downtime: run the services with both
             variables set first (every replica then opens records under either key and seals new ones
             under the new key), run this command, then drop WALLET_ENCRYPTION_KEY_PREVIOUS. Ciphertexts
             stay byte-identical; each record is swapped by a conditional update, so a concurrent run or
             writer is never overwritten; running it again is a no-op.
import-seed  Store a BIP39 mnemonic (read from stdin, never from the command line) as the master seed.
             Only before the first HD wallet exists: a stored seed is never replaced.
status       Count sealed records per key id (which KEKs are still needed).

Output names counts and key ids only, never key material.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.common.mongo import ServiceDatabase
from services.common.settings import ServiceName, load_settings
from services.wallet_manager.keys import KeyVault, load_keyring
from services.wallet_manager.settings import WalletManagerSettings
from services.wallet_manager.store import Store
from services.wallet_manager.vault.errors import VaultError


async def rotate(settings: WalletManagerSettings) -> int:
    db = ServiceDatabase.connect(settings)
    try:
        store = Store(db)
        ring = await load_keyring(settings, store)
        done = skipped = failed = 0
        async for doc in store.iter_secrets_not_under(ring.active_id):
            sealed = doc["sealed"]
            try:
                new = ring.rewrap(doc["_id"], sealed)  # the secret id is the envelope AAD
            except VaultError as exc:
                failed += 1
                print(f"cannot re-wrap {doc['_id']}: {exc.reason}", file=sys.stderr)
                continue
            if await store.replace_sealed(doc["_id"], sealed, new.to_doc()):
                done += 1
            else:
                skipped += 1  # changed concurrently (another run re-wrapped it)
        left = {k: n for k, n in (await store.count_secrets_by_kek()).items() if k != ring.active_id}
        print(f"re-wrapped {done}, skipped {skipped}, failed {failed}; active key {ring.active_id}")
        if left:
            print(f"records still under other keys: {left}", file=sys.stderr)
        return 0 if not failed and not left else 1
    finally:
        await db.close()


async def import_seed(settings: WalletManagerSettings, mnemonic: str) -> int:
    db = ServiceDatabase.connect(settings)
    try:
        store = Store(db)
        vault = KeyVault(settings, store)
        ring = await load_keyring(settings, store)
        try:
            stored = await vault.store_mnemonic(ring, mnemonic, created_by="imported")
        except VaultError as exc:
            print(f"not imported: {exc.reason}", file=sys.stderr)
            return 2
        if not stored:
            print("not imported: a master seed exists already", file=sys.stderr)
            return 1
        print("master seed imported")
        return 0
    finally:
        await db.close()


async def status(settings: WalletManagerSettings) -> int:
    db = ServiceDatabase.connect(settings)
    try:
        ring = await load_keyring(settings, Store(db))
        counts = await Store(db).count_secrets_by_kek()
        print(f"active key {ring.active_id}; sealed records per key: {counts}")
        return 0
    finally:
        await db.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.wallet_manager")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("rotate-key", help="re-wrap every data key under WALLET_ENCRYPTION_KEY")
    sub.add_parser("import-seed", help="store the BIP39 mnemonic read from stdin as the master seed")
    sub.add_parser("status", help="sealed records per key id")
    args = parser.parse_args(argv)
    settings = load_settings(ServiceName.WALLET_MANAGER, WalletManagerSettings)
    if args.command == "rotate-key":
        if not settings.WALLET_ENCRYPTION_KEY_PREVIOUS.get_secret_value():
            print("note: WALLET_ENCRYPTION_KEY_PREVIOUS is not set; only records under the active key open")
        return asyncio.run(rotate(settings))
    if args.command == "import-seed":
        return asyncio.run(import_seed(settings, sys.stdin.read()))
    return asyncio.run(status(settings))
