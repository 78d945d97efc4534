"""wallet-manager's MongoDB collections and every query it makes (FerretDB v1 compatible).

Collections (prefixed `wallet_manager_`):
  wallets       one document per wallet (no key material); the unique `hd_owner` is the claim "one HD
                account per owner" (a deleted wallet moves its claim aside: FerretDB has no partial
                indexes). `policy_tag` is the policy's integrity tag (integrity.py).
  addresses     every address of every wallet (primary = index 0, derived deposit addresses), with its
                derivation index and public key; the unique `address_key` claims "one active wallet per
                address" the same way.
  secrets       sealed secrets only (vault.keystore envelope: ciphertext, wrapped data key, kek_id, KDF
                parameters).
  vault         the KDF parameters (salt, cost) the KEKs are derived with (keys.KDF_DOC, LEGACY_KDF_DOC).
  counters      sequences (HD account indexes, address indexes per wallet): one document per value
                taken, claimed by a unique insert.
  signing_log   append-only: one document per signature, never updated or deleted; its unique
                `request_key` is also the idempotency record of SignTransaction / SignMessage.
  daily_spend   per (wallet, UTC day) a chain of links (seq 1, 2, ... with the running totals per
                asset), one per signature of a daily-limited asset: the next link is claimed by a unique
                (key, seq) insert, and its _id is derived from the request so a replay never counts
                twice. A link is stored only after the signature exists and before its log record, so
                nothing is ever released: a crash in between over-counts (the safe side). Each link
                carries its integrity tag (integrity.py).
  challenges    TronLink challenges; `challenge_uses` holds one document per consumed challenge.

Why unique inserts and not conditional updates: FerretDB v1 (the test and local server) does not
isolate read-modify-write updates. Measured: 30 concurrent update_one({spent <= 4}, {$inc: 1}) calls
reported 12 matches and left spent = 5, and find_one_and_update lost increments the same way; 30
concurrent inserts of one unique key always let exactly one through. So every "at most once" or
"never beyond a limit" decision here is a unique insert (on MongoDB this is just as correct).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.common import errors
from services.common.mongo import Document, IndexSpec, ServiceDatabase
from services.common.reads import CoalescedReads

WALLETS = "wallets"
ADDRESSES = "addresses"
SECRETS = "secrets"
VAULT = "vault"
COUNTERS = "counters"
SIGNING_LOG = "signing_log"
DAILY_SPEND = "daily_spend"
CHALLENGES = "challenges"
CHALLENGE_USES = "challenge_uses"
COLLECTIONS = (
    WALLETS,
    ADDRESSES,
    SECRETS,
    VAULT,
    COUNTERS,
    SIGNING_LOG,
    DAILY_SPEND,
    CHALLENGES,
    CHALLENGE_USES,
)
_RETRIES = 200  # bound on optimistic retries of a sequence claim under contention
# How long the signing path may use a wallet document it read before (see Store.signing_wallet).
WALLET_CACHE_SECONDS = 1.0

ACTIVE = "ACTIVE"
DELETED = "DELETED"

INDEXES: Sequence[IndexSpec] = (
    IndexSpec(WALLETS, [("hd_owner", 1)], unique=True, name="hd_owner"),
    IndexSpec(WALLETS, [("owner_id", 1), ("_id", 1)], name="owner_id"),
    IndexSpec(ADDRESSES, [("address_key", 1)], unique=True, name="address_key"),
    IndexSpec(ADDRESSES, [("wallet_id", 1), ("index", 1)], unique=True, name="wallet_index"),
    IndexSpec(SIGNING_LOG, [("request_key", 1)], unique=True, name="request_key"),
    IndexSpec(SIGNING_LOG, [("wallet_id", 1), ("_id", 1)], name="wallet_id"),
    IndexSpec(COUNTERS, [("name", 1), ("n", 1)], unique=True, name="name_n"),
    IndexSpec(DAILY_SPEND, [("key", 1), ("seq", 1)], unique=True, name="key_seq"),
)


def now() -> datetime:
    """Current time at BSON precision (ms), so a response and a later read of the document agree."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def deleted_key(value: str, wallet_id: str) -> str:
    """The claim value a deleted wallet keeps, freeing `value` for a new wallet."""
    return f"{value}#deleted#{wallet_id}"


def claimed_key(wallet: Document) -> str:
    """The `hd_owner` claim a deleted wallet held before deleted_key moved it aside."""
    return str(wallet["hd_owner"]).removesuffix(f"#deleted#{wallet['_id']}")


def hd_key(tenant: str, owner_id: str) -> str:
    """The `hd_owner` claim of an HD wallet: one per owner within a tenant (owner ids are the tenant's)."""
    return f"{tenant}/{owner_id}" if tenant else owner_id


class Store:
    """All MongoDB access of wallet-manager."""

    def __init__(self, db: ServiceDatabase) -> None:
        self.db = db
        self.wallets = db.collection(WALLETS)
        self._wallet_reads = CoalescedReads(self.wallets)
        self.addresses = db.collection(ADDRESSES)
        self.secrets = db.collection(SECRETS)
        self.vault = db.collection(VAULT)
        self.counters = db.collection(COUNTERS)
        self.signing_log = db.collection(SIGNING_LOG)
        self.daily_spend = db.collection(DAILY_SPEND)
        self.challenges = db.collection(CHALLENGES)
        self.challenge_uses = db.collection(CHALLENGE_USES)
        # In-process: serialise claims per key (no self-contention) and remember the last entry seen.
        self._locks: dict[str, asyncio.Lock] = {}
        self._heads: dict[str, tuple[int, int]] = {}
        self._wallet_cache: dict[str, tuple[float, Document]] = {}

    # -- vault metadata and secrets ----------------------------------------------------------------

    async def get_or_create_vault_doc(self, doc_id: str, fresh: Document) -> Document:
        """The stored document `doc_id`, inserting `fresh` when there is none (first replica wins)."""
        with contextlib.suppress(DuplicateKeyError):
            await self.vault.insert_one({"_id": doc_id, **fresh})
        found = await self.vault.find_one({"_id": doc_id})
        if found is None:  # vault documents are never deleted
            raise RuntimeError(f"vault document {doc_id} vanished after its insert")
        return found

    async def get_vault_doc(self, doc_id: str) -> Document | None:
        return await self.vault.find_one({"_id": doc_id})

    async def insert_secret(
        self, secret_id: str, kind: str, wallet_id: str, sealed: Mapping[str, Any]
    ) -> bool:
        """Store a sealed secret; False when `secret_id` exists already."""
        try:
            await self.secrets.insert_one(
                {
                    "_id": secret_id,
                    "kind": kind,
                    "wallet_id": wallet_id,
                    "sealed": dict(sealed),
                    "create_time": now(),
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def get_secret(self, secret_id: str) -> Document | None:
        return await self.secrets.find_one({"_id": secret_id})

    async def delete_secrets(self, wallet_id: str) -> None:
        await self.secrets.delete_many({"wallet_id": wallet_id})

    def iter_secrets_not_under(self, kek_id: str) -> Any:
        return self.secrets.find({"sealed.kek_id": {"$ne": kek_id}})

    async def replace_sealed(self, secret_id: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        """Swap a re-wrapped record in, only if nobody changed it meanwhile."""
        res = await self.secrets.update_one(
            {"_id": secret_id, "sealed.kek_id": old["kek_id"], "sealed.wrapped_key": old["wrapped_key"]},
            {"$set": {"sealed": dict(new), "rotate_time": now()}},
        )
        return res.modified_count == 1

    async def count_secrets_by_kek(self) -> dict[str, int]:
        out: dict[str, int] = {}
        async for doc in self.secrets.find({}, {"sealed.kek_id": 1}):
            k = doc["sealed"]["kek_id"]
            out[k] = out.get(k, 0) + 1
        return out

    # -- counters ------------------------------------------------------------------------------------

    def _lock(self, key: str) -> asyncio.Lock:
        if len(self._locks) > 50_000:  # bounded memory; an evicted lock only costs a retry
            self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            self._heads.clear()
        return self._locks.setdefault(key, asyncio.Lock())

    async def next_counter(self, name: str, start: int = 0) -> int:
        """start, start+1, ... : each value handed out once across replicas (unique insert per value)."""
        async with self._lock("counter:" + name):
            for _ in range(_RETRIES):
                head = self._heads.get("counter:" + name)
                if head is None:
                    last = await self.counters.find_one({"name": name}, sort=[("n", DESCENDING)])
                    n = start if last is None else max(start, int(last["n"]) + 1)
                else:
                    n = head[0] + 1
                try:
                    await self.counters.insert_one({"_id": f"{name}#{n:010d}", "name": name, "n": n})
                except DuplicateKeyError:
                    self._heads.pop("counter:" + name, None)
                    continue
                self._heads["counter:" + name] = (n, 0)
                return n
        raise errors.Aborted(f"counter {name} is too contended; retry", reason="CONTENDED")

    # -- wallets -------------------------------------------------------------------------------------

    async def insert_wallet(self, doc: Document) -> None:
        """Raises DuplicateKeyError when the address or the owner's HD account is taken."""
        await self.wallets.insert_one(doc)

    async def delete_wallet_doc(self, wallet_id: str) -> None:
        await self.wallets.delete_one({"_id": wallet_id})

    async def get_wallet(self, wallet_id: str) -> Document | None:
        """The wallet as stored now (coalesced with concurrent reads of it, never older than the call)."""
        return await self._wallet_reads.get(wallet_id)

    async def signing_wallet(self, wallet_id: str) -> Document | None:
        """The wallet for a signature, read at most WALLET_CACHE_SECONDS ago.

        One FerretDB read per signature costs about as much CPU as the rest of the signature together, so
        the signing path reuses a recent read. Updates and deletes made through this process take effect
        at once (they drop the entry); made through another replica, within WALLET_CACHE_SECONDS. The
        document holds no secret (policy, state, address).
        """
        t = time.monotonic()
        hit = self._wallet_cache.get(wallet_id)
        if hit is not None and hit[0] > t:
            return hit[1]
        doc = await self.get_wallet(wallet_id)
        if doc is not None:
            if len(self._wallet_cache) > 100_000:
                self._wallet_cache.clear()
            self._wallet_cache[wallet_id] = (t + WALLET_CACHE_SECONDS, doc)
        return doc

    def forget_wallet(self, wallet_id: str) -> None:
        self._wallet_cache.pop(wallet_id, None)

    async def find_hd_wallet(self, tenant: str, owner_id: str) -> Document | None:
        return await self.wallets.find_one({"hd_owner": hd_key(tenant, owner_id), "state": ACTIVE})

    async def list_wallets(
        self,
        *,
        tenant: str | None,
        owner_id: str,
        kind: str,
        label: str,
        show_deleted: bool,
        after: str,
        limit: int,
    ) -> list[Document]:
        query: dict[str, Any] = {}
        if tenant is not None:
            query["tenant"] = tenant
        if owner_id:
            query["owner_id"] = owner_id
        if kind:
            query["kind"] = kind
        if label:
            query["labels"] = label
        if not show_deleted:
            query["state"] = ACTIVE
        if after:
            query["_id"] = {"$gt": after}
        cursor = self.wallets.find(query).sort("_id", ASCENDING).limit(limit)
        return [d async for d in cursor]

    async def update_wallet(self, wallet_id: str, fields: Mapping[str, Any]) -> Document | None:
        self.forget_wallet(wallet_id)
        doc = await self.wallets.find_one_and_update(
            {"_id": wallet_id, "state": ACTIVE},
            {"$set": {**fields, "update_time": now()}},
            return_document=ReturnDocument.AFTER,
        )
        self.forget_wallet(wallet_id)  # a signature may have re-read the old version meanwhile
        return doc

    async def mark_deleted(self, wallet: Document) -> Document | None:
        """ACTIVE -> DELETED; frees the wallet's address and HD-owner claims."""
        wid = wallet["_id"]
        self.forget_wallet(wid)
        t = now()
        doc = await self.wallets.find_one_and_update(
            {"_id": wid, "state": ACTIVE},
            {
                "$set": {
                    "state": DELETED,
                    "delete_time": t,
                    "update_time": t,
                    "hd_owner": deleted_key(wallet["hd_owner"], wid),
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        self.forget_wallet(wid)
        if doc is not None:
            async for a in self.addresses.find({"wallet_id": wid}):
                await self.addresses.update_one(
                    {"_id": a["_id"]}, {"$set": {"address_key": deleted_key(a["address"], wid)}}
                )
        return doc

    async def restore_conflict(self, wallet: Document) -> str | None:
        """What a newer wallet took from a deleted one (an address, its owner's HD account), if anything."""
        async for a in self.addresses.find({"wallet_id": wallet["_id"]}):
            if await self.addresses.find_one({"address_key": a["address"]}) is not None:
                return f"address {a['address']}"
        if await self.wallets.find_one({"hd_owner": claimed_key(wallet)}) is not None:
            return f"owner {wallet['owner_id']}'s HD account"
        return None

    async def restore_wallet(self, wallet: Document) -> Document | None:
        """DELETED -> ACTIVE, taking its address and HD-owner claims back (check restore_conflict first: the
        unique indexes refuse what another wallet holds, and the claims taken are then given back); None
        when it is not deleted."""
        wid = wallet["_id"]
        claimed: list[Document] = []
        try:
            async for a in self.addresses.find({"wallet_id": wid}):
                res = await self.addresses.update_one(
                    {"_id": a["_id"], "address_key": deleted_key(a["address"], wid)},
                    {"$set": {"address_key": a["address"]}},
                )
                if res.modified_count:
                    claimed.append(a)
            doc = await self.wallets.find_one_and_update(
                {"_id": wid, "state": DELETED},
                {
                    "$set": {
                        "state": ACTIVE,
                        "update_time": now(),
                        "hd_owner": claimed_key(wallet),
                    },
                    "$unset": {"delete_time": ""},
                },
                return_document=ReturnDocument.AFTER,
            )
        except BaseException:
            for a in claimed:
                await self.addresses.update_one(
                    {"_id": a["_id"]}, {"$set": {"address_key": deleted_key(a["address"], wid)}}
                )
            raise
        self.forget_wallet(wid)
        return doc

    async def next_address_index(self, wallet_id: str) -> int:
        """The next derivation index of a wallet (index 0 is the primary address, taken at creation)."""
        return await self.next_counter("address:" + wallet_id, start=1)

    async def note_address_count(self, wallet_id: str, count: int) -> None:
        await self.wallets.update_one(
            {"_id": wallet_id}, {"$max": {"address_count": count}, "$set": {"update_time": now()}}
        )

    # -- addresses -----------------------------------------------------------------------------------

    async def insert_address(self, doc: Document) -> None:
        """Raises DuplicateKeyError when the address belongs to an active wallet already."""
        await self.addresses.insert_one(doc)

    async def delete_addresses(self, wallet_id: str) -> None:
        await self.addresses.delete_many({"wallet_id": wallet_id})

    async def get_address(self, wallet_id: str, address: str) -> Document | None:
        return await self.addresses.find_one({"wallet_id": wallet_id, "address": address})

    async def wallet_addresses(self, wallet_id: str, limit: int) -> list[Document]:
        """The wallet's addresses by index; limit 0 = all of them."""
        cursor = self.addresses.find({"wallet_id": wallet_id}).sort("index", ASCENDING).limit(limit)
        return [d async for d in cursor]

    # -- signing log ---------------------------------------------------------------------------------

    async def insert_log_records(self, docs: list[Document]) -> list[bool]:
        """Insert a batch (unordered); per record True, or False when its request_key exists already."""
        ok = [True] * len(docs)
        try:
            await self.signing_log.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            for err in exc.details.get("writeErrors", []):
                if err.get("code") != 11000:
                    raise
                ok[int(err["index"])] = False
        return ok

    async def find_log_record(self, request_key: str) -> Document | None:
        return await self.signing_log.find_one({"request_key": request_key})

    async def list_log(self, wallet_id: str, before: str, limit: int) -> list[Document]:
        query: dict[str, Any] = {}
        if wallet_id:
            query["wallet_id"] = wallet_id
        if before:
            query["_id"] = {"$lt": before}
        cursor = self.signing_log.find(query, {"response": 0, "fingerprint": 0})
        return [d async for d in cursor.sort("_id", DESCENDING).limit(limit)]

    # -- daily spend ---------------------------------------------------------------------------------

    async def insert_spend_links(self, links: list[Document]) -> int:
        """Insert links in order; how many were stored before the first duplicate key."""
        try:
            await self.daily_spend.insert_many(links, ordered=True)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
            return int(exc.details.get("nInserted", 0))
        return len(links)

    async def spend_head(self, key: str) -> Document | None:
        """The last link of a day's spend chain; None before its first."""
        return await self.daily_spend.find_one({"key": key}, sort=[("seq", DESCENDING)])

    async def get_spend_link(self, link_id: str) -> Document | None:
        return await self.daily_spend.find_one({"_id": link_id})

    # -- integrity tags (operator commands: seal-integrity, rotate-key) -----------------------------

    def _tagged_collection(self, collection: str) -> Any:
        return {WALLETS: self.wallets, DAILY_SPEND: self.daily_spend}[collection]

    def iter_tags(self, collection: str, field: str, not_under: str | None) -> Any:
        """Documents of `collection` whose tag `field` was made under another KEK than `not_under`; with
        not_under None, those without a tag."""
        if not_under is None:
            return self._tagged_collection(collection).find({field: {"$exists": False}})
        query = {field: {"$exists": True}, f"{field}.kek_id": {"$ne": not_under}}
        return self._tagged_collection(collection).find(query)

    async def replace_tag(
        self, collection: str, doc_id: str, field: str, old: Mapping[str, Any] | None, new: Mapping[str, Any]
    ) -> bool:
        """Set a document's tag if it still has the old one (None: none); the service writes a tag together
        with what it covers, so a document changed meanwhile is left alone."""
        guard = {field: {"$exists": False}} if old is None else {f"{field}.tag": old["tag"]}
        res = await self._tagged_collection(collection).update_one(
            {"_id": doc_id, **guard}, {"$set": {field: dict(new)}}
        )
        if collection == WALLETS:
            self.forget_wallet(doc_id)
        return res.modified_count == 1

    # -- TronLink challenges -------------------------------------------------------------------------

    async def insert_challenge(self, doc: Document) -> None:
        await self.challenges.insert_one(doc)

    async def get_challenge(self, challenge_id: str) -> Document | None:
        return await self.challenges.find_one({"_id": challenge_id})

    async def consume_challenge(self, challenge_id: str, at: datetime, by: str) -> bool:
        """Use a challenge once: True for the first caller only (unique insert)."""
        try:
            await self.challenge_uses.insert_one({"_id": challenge_id, "use_time": at, "used_by": by})
        except DuplicateKeyError:
            return False
        await self.challenges.update_one({"_id": challenge_id}, {"$set": {"used": True, "use_time": at}})
        return True

    async def challenge_used(self, challenge_id: str) -> bool:
        return await self.challenge_uses.find_one({"_id": challenge_id}) is not None
