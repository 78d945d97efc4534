"""Operator commands of wallet-manager (`python -m services.wallet_manager <command>`).

rotate-key      Re-wrap every data key under WALLET_ENCRYPTION_KEY (the new key), opening records wrapped
                under WALLET_ENCRYPTION_KEY_PREVIOUS (the old one), and re-tag the policies and daily-spend
                links (integrity.py) whose tags verify under the old key. No downtime: run the services with
                both variables set first (every replica then opens records and checks tags under either key
                and seals and tags under the new one), run this command, then drop
                WALLET_ENCRYPTION_KEY_PREVIOUS. Ciphertexts stay byte-identical; each record is swapped by a
                conditional update, so a concurrent run or writer is never overwritten; running it again is
                a no-op. Also the upgrade of records sealed with the legacy scrypt cost (N = 2**15): run it
                once with just WALLET_ENCRYPTION_KEY and they are re-wrapped under the current parameters.
import-seed     Store a BIP39 mnemonic (read from stdin, never from the command line) as the master seed.
                Only before the first HD wallet exists: a stored seed is never replaced.
seal-integrity  Tag the policies and daily-spend links written before integrity tags existed, trusting the
                database as it is now: run it once after upgrading, before signing resumes (until then
                those wallets' signatures are refused as INTEGRITY_CHECK_FAILED).
restore-wallet  Make a deleted wallet active again (its keys were never removed, its addresses stayed
                watched), so an admin can sweep funds that reached it; refused when a newer wallet has taken
                its address or its owner's HD account.
status          Count sealed records per key id (which KEKs are still needed).

Output names counts, key ids and wallet ids only, never key material.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from services.common.audit import AuditEvent, AuditLog
from services.common.mongo import ServiceDatabase
from services.common.settings import ServiceName, load_settings
from services.wallet_manager import integrity
from services.wallet_manager.keys import KeyVault, load_keyring
from services.wallet_manager.settings import WalletManagerSettings
from services.wallet_manager.store import DAILY_SPEND, DELETED, WALLETS, Store
from services.wallet_manager.vault.errors import VaultError
from services.wallet_manager.vault.keystore import Keyring

Parts = Callable[[Mapping[str, Any]], tuple[str | bytes, ...]]
# (collection, tag field, what the tag covers) of every integrity-tagged document kind.
TAGGED: tuple[tuple[str, str, Parts], ...] = (
    (WALLETS, integrity.POLICY_TAG, lambda d: integrity.policy_parts(d["_id"], d.get("policy") or b"")),
    (DAILY_SPEND, integrity.LINK_TAG, integrity.link_parts),
)


async def audit(db: ServiceDatabase, event: AuditEvent, resource: str, command: str, **facts: Any) -> None:
    """Record what an operator command did in the service's audit log (no RPC: the actor is the command and
    the machine user who ran it)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container's uid without a passwd entry
        user = f"uid {os.getuid()}"
    details = {"command": command, "os_user": user, **facts}
    await AuditLog(db).append(event, resource=resource, details=details)


async def retag(store: Store, ring: Keyring) -> tuple[int, list[str]]:
    """Re-tag under the active key what verifies under another of the ring; (done, ids that failed)."""
    done, failed = 0, []
    for collection, field, parts in TAGGED:
        async for doc in store.iter_tags(collection, field, not_under=ring.active_id):
            if not ring.check_tag(doc[field], *parts(doc)):
                failed.append(f"{collection}/{doc['_id']}")
                continue
            done += await store.replace_tag(collection, doc["_id"], field, doc[field], ring.tag(*parts(doc)))
    return done, failed


async def rotate(settings: WalletManagerSettings) -> int:
    db = ServiceDatabase.connect(settings)
    try:
        store = Store(db)
        ring = await load_keyring(settings, store, None)
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
        retagged, tag_failed = await retag(store, ring)
        left = {k: n for k, n in (await store.count_secrets_by_kek()).items() if k != ring.active_id}
        await audit(
            db, AuditEvent.KEY_ROTATED, f"keys/{ring.active_id}", "rotate-key",
            rewrapped=done, failed=failed, retagged=retagged,
        )  # fmt: skip
        print(f"re-wrapped {done}, skipped {skipped}, failed {failed}; active key {ring.active_id}")
        print(f"re-tagged {retagged} policies and spend links")
        if left:
            print(f"records still under other keys: {left}", file=sys.stderr)
        if tag_failed:
            print(f"integrity check failed, not re-tagged: {', '.join(tag_failed)}", file=sys.stderr)
        return 0 if not failed and not left and not tag_failed else 1
    finally:
        await db.close()


async def seal_integrity(settings: WalletManagerSettings) -> int:
    db = ServiceDatabase.connect(settings)
    try:
        store = Store(db)
        ring = await load_keyring(settings, store, None)
        counts = []
        for collection, field, parts in TAGGED:
            sealed = 0
            async for doc in store.iter_tags(collection, field, not_under=None):
                sealed += await store.replace_tag(collection, doc["_id"], field, None, ring.tag(*parts(doc)))
            counts.append(f"{sealed} {collection}")
        print(f"tagged {' and '.join(counts)} documents that had no integrity tag")
        return 0
    finally:
        await db.close()


async def restore_wallet(settings: WalletManagerSettings, wallet_id: str) -> int:
    db = ServiceDatabase.connect(settings)
    try:
        store = Store(db)
        wallet = await store.get_wallet(wallet_id)
        if wallet is None or wallet["state"] != DELETED:
            print(f"not restored: {wallet_id} is not a deleted wallet", file=sys.stderr)
            return 1
        conflict = await store.restore_conflict(wallet)
        if conflict is not None:
            print(f"not restored: a newer wallet holds its {conflict}", file=sys.stderr)
            return 1
        if await store.restore_wallet(wallet) is None:
            print(f"not restored: {wallet_id} changed meanwhile; run the command again", file=sys.stderr)
            return 1
        await audit(db, AuditEvent.WALLET_UPDATED, f"wallets/{wallet_id}", "restore-wallet", restored=True)
        print(f"restored {wallet_id}")
        return 0
    finally:
        await db.close()


async def import_seed(settings: WalletManagerSettings, mnemonic: str) -> int:
    db = ServiceDatabase.connect(settings)
    try:
        store = Store(db)
        vault = KeyVault(settings, store, None)
        ring = await load_keyring(settings, store, None)
        try:
            stored = await vault.store_mnemonic(ring, mnemonic, created_by="imported")
        except VaultError as exc:
            print(f"not imported: {exc.reason}", file=sys.stderr)
            return 2
        if not stored:
            print("not imported: a master seed exists already", file=sys.stderr)
            return 1
        await audit(db, AuditEvent.KEY_IMPORTED, "keys/master-seed", "import-seed")
        print("master seed imported")
        return 0
    finally:
        await db.close()


async def status(settings: WalletManagerSettings) -> int:
    db = ServiceDatabase.connect(settings)
    try:
        ring = await load_keyring(settings, Store(db), None)
        counts = await Store(db).count_secrets_by_kek()
        print(f"active key {ring.active_id}; sealed records per key: {counts}")
        return 0
    finally:
        await db.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.wallet_manager")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("rotate-key", help="re-wrap every data key and re-tag under WALLET_ENCRYPTION_KEY")
    sub.add_parser("import-seed", help="store the BIP39 mnemonic read from stdin as the master seed")
    sub.add_parser("seal-integrity", help="tag policies and spend links that have no integrity tag yet")
    restore = sub.add_parser("restore-wallet", help="make a deleted wallet active again (funds recovery)")
    restore.add_argument("wallet_id")
    sub.add_parser("status", help="sealed records per key id")
    args = parser.parse_args(argv)
    settings = load_settings(ServiceName.WALLET_MANAGER, WalletManagerSettings)
    if args.command == "rotate-key":
        if not settings.WALLET_ENCRYPTION_KEY_PREVIOUS.get_secret_value():
            print("note: WALLET_ENCRYPTION_KEY_PREVIOUS is not set; only records under the active key open")
            print("(at any stored scrypt cost: legacy ones are re-wrapped under the current parameters)")
        return asyncio.run(rotate(settings))
    if args.command == "import-seed":
        return asyncio.run(import_seed(settings, sys.stdin.read()))
    if args.command == "seal-integrity":
        return asyncio.run(seal_integrity(settings))
    if args.command == "restore-wallet":
        return asyncio.run(restore_wallet(settings, args.wallet_id))
    return asyncio.run(status(settings))
