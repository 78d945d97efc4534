"""The audit trail: an append-only, hash-chained log of a service's security-relevant events.

Each service keeps its own log in `<service>_audit_log`. A record is one JSON object (docs/audit.md):

    {"version": 1, "seq": 7, "event_time": "2025-01-02T03:04:05.678Z", "service": "wallet_manager",
     "event_type": "SIGNATURE_MADE", "actor": {"subject": ..., "caller": ..., "method": ...,
     "request_id": ..., "roles": [...], "tenant": ...},
     "resource": "wallets/w1", "outcome": "SUCCEEDED", "details": {...},
     "prev_hash": "<hex>", "hash": "<hex>"}

`hash` is the SHA-256 of the canonical encoding (sorted keys, no spaces, UTF-8) of every other field, and
`prev_hash` is the previous record's `hash` (64 zeros for seq 1), so altering, deleting or moving a record
breaks the chain at that record. Cutting off the tail leaves a valid shorter chain: only a head kept outside
the database (an anchor) shows that.

Several replicas append to one log without transactions (FerretDB has none): an appender reads the head,
inserts seq = head + 1 carrying the head's hash, and starts over when the unique index on `seq` says another
appender took that number first. A record is inserted only right after the record it names, so the log
stays one gap-free chain. Appending runs to its end even when the caller's RPC is cancelled.

Details are for facts, never secrets: keys naming secrets (private_key, seed, mnemonic, password, token,
secret, passphrase, xprv, ...) and values shaped like them (extended private keys, PEM private keys, JWTs,
BIP-39 mnemonics) are refused anywhere in them, as are floats (money is integers) and oversized values.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.common import context
from services.common.errors import Unavailable
from services.common.mongo import Document, IndexSpec, ServiceDatabase

COLLECTION = "audit_log"
INDEXES = (IndexSpec(COLLECTION, [("seq", 1)], unique=True, name="seq"),)
VERSION = 1
GENESIS_HASH = "0" * 64  # prev_hash of the first record

APPEND_ATTEMPTS = 200  # a lost race costs two round trips; this bounds the retries of one append
MAX_BACKOFF_MS = 20  # random pause after a lost race, growing with the attempt up to this

MAX_RESOURCE_CHARS = 256
MAX_DETAILS_BYTES = 4096  # canonical encoding of the whole details object
MAX_DETAILS_DEPTH = 4
MAX_ITEMS = 64  # keys of one object, items of one list
MAX_STRING_CHARS = 1024
INT64 = (-(2**63), 2**63 - 1)  # what BSON stores exactly; larger amounts go in as decimal strings

_INT_SEQ = {"seq": {"$type": ["int", "long"]}}  # documents that can be part of the chain


class AuditEvent(StrEnum):
    """What happened (closed: tronpay.audit.v1.AuditRecord.EventType has the same names)."""

    WALLET_CREATED = "WALLET_CREATED"
    WALLET_UPDATED = "WALLET_UPDATED"
    WALLET_DELETED = "WALLET_DELETED"
    KEY_IMPORTED = "KEY_IMPORTED"
    KEY_ROTATED = "KEY_ROTATED"
    SIGNATURE_MADE = "SIGNATURE_MADE"
    SIGNATURE_REFUSED = "SIGNATURE_REFUSED"
    POLICY_CHANGED = "POLICY_CHANGED"
    PAYOUT_APPROVED = "PAYOUT_APPROVED"
    PAYOUT_CANCELLED = "PAYOUT_CANCELLED"
    PAYOUT_SUBMITTED = "PAYOUT_SUBMITTED"
    ALLOWLIST_CHANGED = "ALLOWLIST_CHANGED"
    REFUND_ISSUED = "REFUND_ISSUED"
    WEBHOOK_SECRET_ROTATED = "WEBHOOK_SECRET_ROTATED"  # noqa: S105  # an event name, not a secret
    AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
    AUTHORIZATION_FAILED = "AUTHORIZATION_FAILED"


class Outcome(StrEnum):
    """How the action ended (tronpay.audit.v1.AuditRecord.Outcome has the same names)."""

    SUCCEEDED = "SUCCEEDED"
    DENIED = "DENIED"
    FAILED = "FAILED"


class BreakReason(StrEnum):
    """Why the chain breaks at a record (tronpay.audit.v1.ChainBreak.Reason has the same names)."""

    MISSING = "MISSING"
    HASH_MISMATCH = "HASH_MISMATCH"
    PREV_HASH_MISMATCH = "PREV_HASH_MISMATCH"
    OUT_OF_ORDER = "OUT_OF_ORDER"
    DUPLICATE = "DUPLICATE"
    MALFORMED = "MALFORMED"
    TRUNCATED = "TRUNCATED"
    ANCHOR_MISMATCH = "ANCHOR_MISMATCH"


class UnsafeAuditDetails(ValueError):
    """Details that could carry a secret or are too big. The message names the field, never its value."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """A record's seq and hash kept outside the database (printed by verify; checked when given back)."""

    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place the chain does not hold: the record's seq (0 when it has none) and why."""

    seq: int
    reason: BreakReason
    description: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """`count` records from seq 1 hold; `head` is the last of them (None for none); `broken` says where the
    chain stops holding (None: the whole log, and the anchor if given, hold)."""

    count: int
    head: Anchor | None
    broken: ChainBreak | None = None

    @property
    def intact(self) -> bool:
        """Whether nothing is broken."""
        return self.broken is None


# -- encoding ------------------------------------------------------------------------------------------------
def canonical(value: Any) -> bytes:
    """The canonical encoding: JSON with sorted keys and no spaces, UTF-8 (floats are never stored)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical encoding of every field of the JSON-form record except `hash`."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def format_time(moment: datetime) -> str:
    """UTC, millisecond precision (what BSON dates keep): 2025-01-02T03:04:05.678Z."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # a naive BSON date is UTC
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def json_form(doc: Document) -> dict[str, Any]:
    """A stored document as its JSON record (dates as text, no Mongo `_id`); an altered one stays altered."""
    return {k: _json_value(v) for k, v in doc.items() if k != "_id"}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value  # an altered record may hold what JSON cannot encode: checking it says MALFORMED


def _stored_form(record: Mapping[str, Any]) -> Document:
    """The document to insert: the record with its time as a BSON date (millisecond precision)."""
    return {**record, "event_time": datetime.fromisoformat(record["event_time"])}


# -- details -------------------------------------------------------------------------------------------------
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_SECRET_WORDS = frozenset(
    {
        "seed", "mnemonic", "password", "passwd", "pwd", "passphrase", "secret", "secrets", "xprv",
        "xpriv", "privkey", "privatekey", "credential", "credentials", "jwt", "bearer", "authorization",
        "cookie", "otp",
    }
)  # fmt: skip
_SECRET_PAIRS = frozenset({("private", "key"), ("priv", "key"), ("api", "key"), ("access", "key")})
# "token" is a secret (access_token, auth_token) except where it names an on-chain asset (token_address).
_ASSET_AFTER_TOKEN = frozenset({"address", "contract", "symbol", "decimals", "id", "name", "standard"})
_SECRET_VALUE = re.compile(
    r"^[xtyzuv]prv[1-9A-HJ-NP-Za-km-z]{100,}$"  # BIP-32 extended private key
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"  # PEM private key
    r"|^eyJ[\w-]*\.[\w-]+\.[\w-]*$"  # JWT (header.payload.signature)
)
_MNEMONIC_LENGTHS = frozenset({12, 15, 18, 21, 24})


def _key_words(key: str) -> list[str]:
    """privateKey / private_key / PRIVATE_KEY -> ["private", "key"]."""
    return [w.lower() for w in re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).split("_") if w]


def _secret_key(key: str) -> bool:
    words = _key_words(key)
    if _SECRET_WORDS.intersection(words) or _SECRET_PAIRS.intersection(itertools.pairwise(words)):
        return True
    return any(w == "token" and (i + 1 == len(words) or words[i + 1] not in _ASSET_AFTER_TOKEN)
               for i, w in enumerate(words))  # fmt: skip


def _secret_value(value: str) -> bool:
    if _SECRET_VALUE.search(value):
        return True
    words = value.split()
    if len(words) in _MNEMONIC_LENGTHS and all(w.isalpha() and w.islower() for w in words):
        from bip_utils import Bip39MnemonicValidator  # only for strings shaped like a mnemonic

        return bool(Bip39MnemonicValidator().IsValid(value))
    return False


def _checked(value: Any, path: str, depth: int) -> Any:
    """A plain-JSON copy of value (str subclasses such as enums become str); raises UnsafeAuditDetails.
    `depth`: how many objects and lists enclose value (details itself is the first)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise UnsafeAuditDetails(f"details.{path}: integer outside int64 (pass it as a decimal string)")
        return int(value)
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            raise UnsafeAuditDetails(f"details.{path}: string longer than {MAX_STRING_CHARS} characters")
        if _secret_value(value):
            raise UnsafeAuditDetails(f"details.{path}: value looks like a secret")
        return str(value)
    if isinstance(value, Mapping | list | tuple) and depth + 1 > MAX_DETAILS_DEPTH:
        raise UnsafeAuditDetails(f"details.{path}: nested deeper than {MAX_DETAILS_DEPTH} levels")
    if isinstance(value, list | tuple):
        if len(value) > MAX_ITEMS:
            raise UnsafeAuditDetails(f"details.{path}: more than {MAX_ITEMS} items")
        return [_checked(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return _checked_object(value, path, depth + 1)
    # Floats (money is integers), bytes (possibly key material) and anything else have no place here.
    raise UnsafeAuditDetails(
        f"details.{path}: {type(value).__name__} is not allowed (str, int, bool, list, dict)"
    )


def _checked_object(obj: Mapping[Any, Any], path: str, depth: int) -> dict[str, Any]:
    if len(obj) > MAX_ITEMS:
        raise UnsafeAuditDetails(f"details{'.' if path else ''}{path}: more than {MAX_ITEMS} keys")
    out: dict[str, Any] = {}
    for key, value in obj.items():
        where = f"{path}.{key}" if path else str(key)
        if not isinstance(key, str) or not _KEY.match(key):
            raise UnsafeAuditDetails(f"details.{where}: keys are identifiers (letter, then letters/digits/_)")
        if _secret_key(key):
            raise UnsafeAuditDetails(f"details.{where}: the key names a secret")
        out[key] = _checked(value, where, depth)
    return out


def check_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """The details as plain JSON, or UnsafeAuditDetails naming the offending field (never its value)."""
    out = _checked_object(details or {}, "", 1)
    if len(canonical(out)) > MAX_DETAILS_BYTES:
        raise UnsafeAuditDetails(f"details: more than {MAX_DETAILS_BYTES} bytes encoded")
    return out


def _actor() -> dict[str, Any]:
    """Who asked, from the RPC being served (empty outside any RPC: the service acted by itself)."""
    ctx = context.current()
    return {
        "subject": getattr(ctx, "subject", "") or "",
        "caller": str(getattr(ctx, "caller", "") or ""),
        "method": getattr(ctx, "method", "") or "",
        "request_id": getattr(ctx, "request_id", "") or "",
        "roles": sorted(str(r) for r in getattr(ctx, "roles", ()) or ()),
        "tenant": getattr(ctx, "tenant", "") or "",
    }


# -- checking a chain ----------------------------------------------------------------------------------------
class ChainChecker:
    """Checks JSON-form records fed in seq order (from the database or an export) against the chain rules.

    `feed` returns the first break it sees (then stop feeding); `finish` checks the anchor's reach."""

    def __init__(self, anchor: Anchor | None = None) -> None:
        self._anchor = anchor
        self.count = 0
        self.head: Anchor | None = None

    @property
    def _expected(self) -> int:
        return self.count + 1

    def feed(self, record: Mapping[str, Any]) -> ChainBreak | None:
        seq, stored_hash = record.get("seq"), record.get("hash")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return ChainBreak(0, BreakReason.MALFORMED, "a record without an integer seq")
        if seq < self._expected:
            return ChainBreak(seq, BreakReason.DUPLICATE, f"a second record with seq {seq}")
        if seq > self._expected:
            missing = f"{self._expected}" if seq == self._expected + 1 else f"{self._expected} to {seq - 1}"
            return ChainBreak(self._expected, BreakReason.MISSING, f"record(s) {missing} missing")
        if not isinstance(stored_hash, str):
            return ChainBreak(seq, BreakReason.MALFORMED, "the record has no hash")
        try:
            computed = record_hash(record)
        except (TypeError, ValueError):
            return ChainBreak(seq, BreakReason.MALFORMED, "the record holds a value JSON cannot encode")
        if computed != stored_hash:
            return ChainBreak(seq, BreakReason.HASH_MISMATCH, "the record's content does not match its hash")
        prev = self.head.hash if self.head else GENESIS_HASH
        if record.get("prev_hash") != prev:
            which = f"record {seq - 1}" if self.head else "the genesis value"
            return ChainBreak(
                seq,
                BreakReason.PREV_HASH_MISMATCH,
                f"prev_hash is not the hash of {which}: {which} was rewritten, or this record moved",
            )
        if self._anchor and seq == self._anchor.seq and stored_hash != self._anchor.hash:
            return ChainBreak(seq, BreakReason.ANCHOR_MISMATCH, "the record's hash differs from the anchor")
        self.count = seq
        self.head = Anchor(seq, stored_hash)
        return None

    def finish(self) -> ChainBreak | None:
        """After the last record: a log ending before the anchor was cut off."""
        if self._anchor and self.count < self._anchor.seq:
            return ChainBreak(
                self._expected,
                BreakReason.TRUNCATED,
                f"the log ends at seq {self.count} but the anchor names seq {self._anchor.seq}",
            )
        return None


# -- the log -------------------------------------------------------------------------------------------------
class AuditLog:
    """The service's audit log (`<service>_audit_log`; its index is INDEXES)."""

    def __init__(self, db: ServiceDatabase, *, attempts: int = APPEND_ATTEMPTS) -> None:
        self._col = db.collection(COLLECTION)
        # The log names its service as the collection prefix does ("<service>_audit_log").
        self.service = db.collection_name(COLLECTION).removesuffix(f"_{COLLECTION}")
        self._attempts = attempts
        self._running: set[asyncio.Task[Any]] = set()  # strong references: the loop keeps only weak ones
        # Appends of this process take turns, so only appends of other replicas can race for a seq.
        self._turn = asyncio.Lock()
        # (seq, hash) of the last record this process wrote or read as the head: appending needs no read
        # while no other replica appends (a lost race, seen as a duplicate seq, reads the head again).
        self._last: tuple[int, str] | None = None

    async def append(
        self,
        event: AuditEvent,
        *,
        resource: str,
        outcome: Outcome = Outcome.SUCCEEDED,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one record, the actor taken from the RPC being served; returns it in JSON form.

        Raises UnsafeAuditDetails (nothing is written) for details or a resource that could hold a secret,
        ValueError for an unknown event or outcome or a bad resource, Unavailable when other appenders kept
        winning the race (a database error propagates as raised). A cancelled caller does not cancel the
        write (`drain` waits for such writes)."""
        if not 0 < len(resource) <= MAX_RESOURCE_CHARS:
            raise ValueError(f"resource must have 1 to {MAX_RESOURCE_CHARS} characters")
        if _secret_value(resource):
            raise UnsafeAuditDetails("resource: value looks like a secret")
        body = {
            "version": VERSION,
            "event_time": format_time(datetime.now(UTC)),
            "service": self.service,
            "event_type": AuditEvent(event).value,
            "actor": _actor(),
            "resource": resource,
            "outcome": Outcome(outcome).value,
            "details": check_details(details),
        }
        task = asyncio.create_task(self._insert(body))
        self._running.add(task)
        task.add_done_callback(self._forget)
        return await asyncio.shield(task)

    async def drain(self, seconds: float) -> None:
        """Wait (at most `seconds`) for appends whose callers went away; shutdown calls it."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=seconds)

    async def verify(self, anchor: Anchor | None = None) -> VerifyResult:
        """Walk the chain from seq 1 to the current head; the first break, or intact with the count."""
        checker = ChainChecker(anchor)
        head = await self._head()
        last = head["seq"] if head else 0
        # Records appended while we walk lie past `last`: every seq up to it existed when it was read.
        cursor = self._col.find({"seq": {"$type": ["int", "long"], "$lte": last}}).sort("seq", 1)
        async for doc in cursor:
            broken = checker.feed(json_form(doc))
            if broken is not None:
                await cursor.close()
                return VerifyResult(checker.count, checker.head, await self._diagnose(broken, doc))
        if checker.count < last:  # the head went away while we walked
            broken = ChainBreak(checker.count + 1, BreakReason.MISSING, "the head vanished during the walk")
            return VerifyResult(checker.count, checker.head, broken)
        broken = checker.finish()
        if broken is None:
            stray = await self._col.find_one({"seq": {"$not": {"$type": ["int", "long"]}}})
            if stray is not None:
                broken = ChainBreak(0, BreakReason.MALFORMED, f"document {stray['_id']} has no integer seq")
        return VerifyResult(checker.count, checker.head, broken)

    async def export(self, after_seq: int = 0) -> AsyncIterator[dict[str, Any]]:
        """The records after `after_seq` up to the current head, in seq order, in JSON form (as stored)."""
        head = await self._head()
        if head is None:
            return
        query = {"seq": {"$type": ["int", "long"], "$gt": after_seq, "$lte": head["seq"]}}
        async for doc in self._col.find(query).sort("seq", 1):
            yield json_form(doc)

    # -- internals ---------------------------------------------------------------------------------------
    async def _head(self) -> Document | None:
        return await self._col.find_one(_INT_SEQ, sort=[("seq", -1)])

    async def _insert(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self._turn:
            return await self._race(body)

    async def _race(self, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(self._attempts):
            if self._last is None:  # first append of this process, or another appender won a race
                head = await self._head()
                # A head without a hash was tampered with: keep recording; verify names it.
                self._last = (int(head["seq"]), str(head.get("hash", ""))) if head else (0, GENESIS_HASH)
            seq, prev_hash = self._last
            record = {**body, "seq": seq + 1, "prev_hash": prev_hash}
            record["hash"] = record_hash(record)
            try:
                await self._col.insert_one(_stored_form(record))
            except DuplicateKeyError:  # another appender took this seq: read the new head
                self._last = None
                await asyncio.sleep(secrets.randbelow(min(attempt + 1, MAX_BACKOFF_MS) + 1) / 1000)
                continue
            except BaseException:  # the insert may or may not have landed: read the head next time
                self._last = None
                raise
            self._last = (seq + 1, record["hash"])
            return record
        raise Unavailable("the audit log is too busy to append to; retry", reason="AUDIT_LOG_CONTENDED")

    async def _diagnose(self, broken: ChainBreak, doc: Document) -> ChainBreak:
        """A record whose content fails its hash may be intact but moved. Its neighbours in the chain (the
        record whose hash it names, the record naming its hash) tell where it was written: right after the
        one or right before the other (either may have moved too, so both are tried)."""
        if broken.reason is not BreakReason.HASH_MISMATCH:
            return broken
        record = json_form(doc)
        prev, own = record.get("prev_hash"), record.get("hash")
        if not isinstance(prev, str) or not isinstance(own, str):
            return broken
        candidates = {1} if prev == GENESIS_HASH else set()
        before = await self._col.find_one({"hash": prev, **_INT_SEQ})
        after = await self._col.find_one({"prev_hash": own, **_INT_SEQ})
        candidates |= {before["seq"] + 1} if before else set()
        candidates |= {after["seq"] - 1} if after else set()
        for written_at in sorted(candidates - {broken.seq}):
            if record_hash({**record, "seq": written_at}) == own:
                return ChainBreak(
                    broken.seq,
                    BreakReason.OUT_OF_ORDER,
                    f"the record stored at seq {broken.seq} was written as seq {written_at}",
                )
        return broken

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()  # its caller may be gone: mark the outcome retrieved
