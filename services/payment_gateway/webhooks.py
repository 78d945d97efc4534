"""Outgoing webhooks through an outbox, and the checks of incoming ones.

Outbox. The payments code appends each state change to its payment as an event (`seq`, `type`, `at`, `data`)
and sets `relay_pending` in the same conditional update. The relay turns every event with `seq` above the
payment's `relayed_seq` into one delivery document (collection `webhook_deliveries`), whose `_id` derives from
the event id `evt_<payment>_<seq>`: inserting it is the once-only claim, so a relay that dies between its
inserts and its flag update re-inserts nothing twice. It then sets `relayed_seq` and clears `relay_pending`
only if `seq` is still what it read; an event appended meanwhile keeps the flag for the next pass. So no event
is lost across kill -9 and none gets two original deliveries; every replica may relay.

Delivery. A worker claims a due PENDING delivery with one guarded write (its `next_attempt_at` moves past the
attempt's lease, `lease` names the claim, `attempt_count` counts it), so two replicas never send the same
attempt; a replica that dies mid-attempt leaves a lease that runs out and the delivery is sent again
(receivers dedupe by event id). The body's bytes are stored with the delivery; each attempt signs them
afresh (signing.py) with every master secret's merchant secret. 2xx -> DELIVERED; anything else is retried
with exponential back-off (PAYMENT_WEBHOOK_FIRST_RETRY_SECONDS doubling to PAYMENT_WEBHOOK_MAX_RETRY_SECONDS)
until PAYMENT_WEBHOOK_RETRY_WINDOW_SECONDS after the delivery's creation -> FAILED, the dead letter
(tronpay_payment_webhook_dead_letters_total). Redirects are not followed. One endpoint holds at most a quarter
of the PAYMENT_WEBHOOK_CONCURRENCY slots, so a slow or dead one never starves other merchants. Without a
master secret nothing is sent: deliveries stay PENDING with last_error saying why (the backlog metric grows
and alerts), and go out once a secret is configured.

Unless PAYMENT_WEBHOOK_ALLOW_PRIVATE: a URL naming a non-public address or a local name is refused when the
payment is created (check_webhook_url) and again before each attempt, and the connection resolves names
through a resolver that refuses any non-public answer (DNS rebinding): that attempt fails, nothing is sent.

Redelivery inserts a new delivery (new id, derived from the request id) with the same event id and body.
Work this replica creates (wake(payment_id), its own inserts) is handled at once by `_id`; a scan every
PAYMENT_WEBHOOK_POLL_SECONDS picks up the rest (retries, other replicas' work, anything a crash left).

Incoming: verify_inbound checks the signature header with the source's secrets (PAYMENT_INBOUND_WEBHOOK_*),
mark_seen records each (source, event id) once (collection `inbound_webhooks`) so a replay is not processed
twice. tronpay_payment_inbound_webhooks_total counts refusals here by outcome (unknown_source, unsigned,
malformed, expired, forged) and replays (replayed); the caller counts what it accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError
from tronpay.payment_gateway.v1 import payment_gateway_pb2 as pb

from services.common import context, errors
from services.common.chain_ops import operation_id
from services.common.logging import get_logger
from services.common.mongo import Document, IndexSpec, ServiceDatabase
from services.common.pagination import NEWEST_FIRST, Page, newest_first, position_of
from services.common.timestamps import timestamp
from services.payment_gateway.metrics import (
    INBOUND_WEBHOOKS,
    WEBHOOK_BACKLOG,
    WEBHOOK_DEAD_LETTERS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_OLDEST,
)
from services.payment_gateway.settings import PaymentGatewaySettings
from services.payment_gateway.signing import HEADER, SignatureError, merchant_secret, signature_header
from services.payment_gateway.signing import verify_signature as _verify

log = get_logger("payment_gateway.webhooks")

PAYMENTS, DELIVERIES, INBOUND = "payments", "webhook_deliveries", "inbound_webhooks"
PENDING, DELIVERED, FAILED = "PENDING", "DELIVERED", "FAILED"
UNCONFIGURED = "no webhook secret configured (PAYMENT_WEBHOOK_MASTER_SECRETS): not sent"
URL_INVALID, URL_NOT_ALLOWED = "WEBHOOK_URL_INVALID", "WEBHOOK_URL_NOT_ALLOWED"

INDEXES = (
    IndexSpec(PAYMENTS, [("relay_pending", 1)], name="relay_pending"),
    IndexSpec(DELIVERIES, [("state", 1), ("next_attempt_at", 1)], name="due"),
    IndexSpec(DELIVERIES, [("create_time", -1), ("_id", -1)], name="time"),
    IndexSpec(DELIVERIES, [("payment_id", 1), ("create_time", -1), ("_id", -1)], name="payment_time"),
    IndexSpec(INBOUND, [("source", 1), ("event_id", 1)], unique=True, name="source_event"),
)

RELAY_BATCH = 100  # payments read per relay scan
RELAY_CONCURRENCY = 16  # woken payments relayed at once (each one's events in order)
LEASE_MARGIN_SECONDS = 30.0  # an attempt's lease: the HTTP timeout plus this
ENDPOINT_SHARE = 4  # one endpoint (host:port) holds at most 1/ENDPOINT_SHARE of the delivery slots
FRESH_LIMIT = 10_000  # ids of new deliveries kept for the fast path; the scan finds any beyond
RESPONSE_READ_LIMIT = 64 * 1024  # bytes of a response read (so the connection can be reused)
USER_AGENT = "tronpay-webhooks/1"
_RELAY_FIELDS = {"merchant_id": 1, "webhook_url": 1, "seq": 1, "events": 1, "relayed_seq": 1, "tenant": 1}
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_STATE_PB = {
    PENDING: pb.WebhookDelivery.STATE_PENDING,
    DELIVERED: pb.WebhookDelivery.STATE_DELIVERED,
    FAILED: pb.WebhookDelivery.STATE_FAILED,
}
_STATE_OF = {v: k for k, v in _STATE_PB.items()}
_SIGNATURE_OUTCOMES = {
    "MISSING": "unsigned",
    "MALFORMED": "malformed",
    "EXPIRED": "expired",
    "MISMATCH": "forged",
}


# ---- URL safety -----------------------------------------------------------------------------------------


def address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ip is a public unicast address (an IPv4 address embedded in IPv6 is judged as itself)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_allowed(embedded)
        if ip.is_site_local:
            return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
    )


def _legacy_ipv4(host: str) -> bool:
    """A numeric host the resolver would read as IPv4 without being dotted-quad (127.1, 0x7f000001)."""
    if not all(c in "0123456789abcdefx." for c in host):
        return False
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def url_refusal(url: str, allow_private: bool) -> errors.FieldViolation | None:
    """Why url may not receive webhooks, or None (names are resolved at delivery, see _PublicResolver)."""

    def bad(reason: str, description: str) -> errors.FieldViolation:
        return errors.FieldViolation("webhook_url", description, reason)

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return bad(URL_INVALID, "not a valid URL")
    if parts.scheme not in ("http", "https"):
        return bad(URL_INVALID, "must be an http or https URL")
    host = (parts.hostname or "").rstrip(".")
    if not host or port == 0:
        return bad(URL_INVALID, "must name a host (and a port other than 0)")
    if parts.username is not None or parts.password is not None:
        return bad(URL_INVALID, "must not carry credentials")
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is None and _legacy_ipv4(host):
        return bad(URL_INVALID, "a numeric host must be a dotted-quad IPv4 address")
    if allow_private:
        return None
    if ip is not None and not address_allowed(ip):
        return bad(URL_NOT_ALLOWED, "points at a loopback, private, link-local or reserved address")
    if ip is None and (host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES)):
        return bad(URL_NOT_ALLOWED, "names a local host")
    return None


def check_webhook_url(url: str, allow_private: bool) -> None:
    """INVALID_ARGUMENT (field webhook_url) unless url may receive webhooks."""
    violation = url_refusal(url, allow_private)
    if violation is not None:
        raise errors.InvalidArgument(
            f"webhook_url {violation.description}", [violation], reason=violation.reason
        )


class NonPublicAddress(OSError):
    """A webhook host resolved to an address webhooks may not reach."""


class _PublicResolver(AbstractResolver):
    """Resolves through aiohttp's default resolver and refuses a name if any answer is not public, so the
    address checked is the address connected to (no second lookup a rebinding DNS server could change)."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            address = ipaddress.ip_address(answer["host"].split("%", 1)[0])
            if not address_allowed(address):
                raise NonPublicAddress(f"{host} resolves to a non-public address ({address})")
        return answers

    async def close(self) -> None:
        await self._inner.close()


# ---- events and their bodies ------------------------------------------------------------------------------


def event_id(payment_id: str, seq: int) -> str:
    """The id of a payment's event (stable across redeliveries)."""
    return f"evt_{payment_id}_{seq}"


def rfc3339(at: datetime) -> str:
    """UTC, milliseconds (what MongoDB keeps), Z suffix."""
    utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_body(payment_id: str, merchant_id: str, event: Mapping[str, Any]) -> bytes:
    """The compact JSON body of an event's webhook."""
    return orjson.dumps(
        {
            "id": event_id(payment_id, int(event["seq"])),
            "type": event["type"],
            "created": rfc3339(event["at"]),
            "payment_id": payment_id,
            "merchant_id": merchant_id,
            "sequence": int(event["seq"]),
            "data": event["data"],
        }
    )


def backoff(attempts: int, first: float, cap: float) -> float:
    """Seconds before the next attempt after `attempts` failed ones (1, 2, ...)."""
    return min(first * 2 ** min(attempts - 1, 62), cap)


def _endpoint(url: str) -> str:
    """host:port, the unit of the per-endpoint share of delivery slots."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # refused at its attempt; any stable key will do
        port = None
    return f"{parts.hostname}:{port or (443 if parts.scheme == 'https' else 80)}"


def _now() -> datetime:
    return datetime.now(UTC)


def delivery_pb(d: Mapping[str, Any]) -> pb.WebhookDelivery:
    """A stored delivery as the contract's WebhookDelivery."""
    return pb.WebhookDelivery(
        delivery_id=d["_id"],
        event_id=d["event_id"],
        event_type=d["event_type"],
        payment_id=d["payment_id"],
        url=d["url"],
        state=_STATE_PB[d["state"]],
        attempt_count=int(d["attempt_count"]),
        last_status_code=int(d["last_status_code"]),
        last_error=d["last_error"],
        next_attempt_time=timestamp(d["next_attempt_at"]) if d["state"] == PENDING else None,
        create_time=timestamp(d["create_time"]),
        update_time=timestamp(d["update_time"]),
    )


# ---- incoming ---------------------------------------------------------------------------------------------


def inbound_secrets(settings: PaymentGatewaySettings, source: str) -> list[str]:
    """The secrets a source's notifications may be signed with (empty: the source is not configured)."""
    raw = settings.PAYMENT_INBOUND_WEBHOOK_SECRETS.get_secret_value()
    configured = json.loads(raw).get(source) if raw else None
    if configured is None:
        return []
    return list(configured) if isinstance(configured, list) else [configured]


def verify_inbound(
    header_value: str, body: bytes, secrets: Sequence[str], now: float, window_seconds: float
) -> int:
    """Check an incoming notification's signature header (t=...,v1=...) against its raw body with the
    source's secrets; returns the signed timestamp. UNAUTHENTICATED when the source has no secret, or the
    header is missing, malformed, forged or outside the window."""
    if not secrets:
        INBOUND_WEBHOOKS.labels("unknown_source").inc()
        raise errors.Unauthenticated("the webhook source is not configured", reason="WEBHOOK_SOURCE_UNKNOWN")
    try:
        return _verify(header_value, body, secrets, now, window_seconds)
    except SignatureError as err:
        INBOUND_WEBHOOKS.labels(_SIGNATURE_OUTCOMES[err.reason]).inc()
        raise errors.Unauthenticated(str(err), reason=f"WEBHOOK_SIGNATURE_{err.reason}") from None


# ---- the outbox -------------------------------------------------------------------------------------------


class Webhooks:
    """The relay, the delivery worker, the delivery log and redelivery, and the incoming replay store."""

    def __init__(self, db: ServiceDatabase, settings: PaymentGatewaySettings) -> None:
        self._settings = settings
        self._payments = db.collection(PAYMENTS)
        self._deliveries = db.collection(DELIVERIES)
        self._inbound = db.collection(INBOUND)
        self._masters = settings.webhook_masters
        self._owner = uuid.uuid4().hex
        self._lease = timedelta(seconds=settings.PAYMENT_WEBHOOK_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS)
        self._endpoint_cap = max(1, settings.PAYMENT_WEBHOOK_CONCURRENCY // ENDPOINT_SHARE)
        self._relay_kick = asyncio.Event()
        self._deliver_kick = asyncio.Event()
        self._woken: set[str] = set()  # payments to relay now
        self._fresh: dict[str, str] = {}  # deliveries this replica created -> endpoint, oldest first
        self._inflight: dict[asyncio.Task[None], str] = {}  # attempt -> endpoint
        self._loops: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._resolver: _PublicResolver | None = None

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the relay and the delivery worker (inside the running loop)."""
        s = self._settings
        self._resolver = None if s.webhook_allow_private else _PublicResolver()
        connector = aiohttp.TCPConnector(limit=s.PAYMENT_WEBHOOK_CONCURRENCY, resolver=self._resolver)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=s.PAYMENT_WEBHOOK_TIMEOUT_SECONDS),
            headers={"User-Agent": USER_AGENT},
        )
        if not self._masters:
            log.error(
                "PAYMENT_WEBHOOK_MASTER_SECRETS is empty: webhook deliveries are recorded but NOT sent until "
                "a master secret is configured (they wait as PENDING)"
            )
        self._loops = [asyncio.create_task(self._relay_loop()), asyncio.create_task(self._deliver_loop())]

    async def stop(self) -> None:
        """Stop both loops; attempts under way get the HTTP timeout to finish (a cut one is sent again)."""
        for task in self._loops:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=self._settings.PAYMENT_WEBHOOK_TIMEOUT_SECONDS)
        for task in list(self._inflight):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
        if self._resolver is not None:  # the connector closes only a resolver it made itself
            await self._resolver.close()

    def wake(self, payment_id: str = "") -> None:
        """Relay now: call after appending an event (with its payment id, relayed by `_id` at once)."""
        if payment_id:
            self._woken.add(payment_id)
        self._relay_kick.set()

    # ---- relay --------------------------------------------------------------------------------------------

    async def relay_once(self) -> int:
        """Relay up to RELAY_BATCH payments flagged relay_pending; returns how many it cleared (0: none was
        pending, or each got a new event meanwhile)."""
        cursor = self._payments.find({"relay_pending": True}, _RELAY_FIELDS).limit(RELAY_BATCH)
        cleared = 0
        for payment in [p async for p in cursor]:
            cleared += await self._relay_logged(payment) is True
        return cleared

    async def _relay_logged(self, payment: Document) -> bool | None:
        """_relay, except that a payment whose events cannot be relayed is logged and skipped (None)."""
        try:
            return await self._relay(payment)
        except PyMongoError:
            raise  # the database is away: the pass ends here
        except Exception as exc:  # one payment's unusable event must not hold up the others
            log.error(
                "cannot relay a payment's events: %s: %s",
                type(exc).__name__,
                exc,
                extra={"fields": {"payment_id": payment["_id"]}},
            )
            return None

    async def _relay_loop(self) -> None:
        next_scan = 0.0
        while True:
            self._relay_kick.clear()
            try:
                woken, self._woken = self._woken, set()
                gate = asyncio.Semaphore(RELAY_CONCURRENCY)
                await asyncio.gather(*(self._relay_woken(pid, gate) for pid in woken))
                if time.monotonic() >= next_scan:
                    next_scan = time.monotonic() + self._settings.PAYMENT_WEBHOOK_POLL_SECONDS
                    while await self.relay_once():
                        pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: the next pass tries again
                log.warning("webhook relay failed: %s: %s", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._relay_kick.wait(), max(0.0, next_scan - time.monotonic()))

    async def _relay_woken(self, pid: str, gate: asyncio.Semaphore) -> None:
        async with gate:
            payment = await self._payments.find_one({"_id": pid, "relay_pending": True}, _RELAY_FIELDS)
            if payment is not None and await self._relay_logged(payment) is False:
                self.wake(pid)  # an event came in meanwhile: relay it on the next pass

    async def _relay(self, payment: Document) -> bool:
        """Insert a delivery per event not yet relayed, then clear the flag if no event came in meanwhile
        (True). The inserts are once-only by `_id`, so running this again after a crash is harmless."""
        pid = payment["_id"]
        done = int(payment.get("relayed_seq", 0))
        events = sorted(
            (e for e in payment.get("events", ()) if int(e["seq"]) > done), key=lambda e: int(e["seq"])
        )
        url = payment.get("webhook_url", "")
        inserted = False
        for event in events if url else ():
            # A new delivery this replica can send now is inserted already claimed (one write less per event;
            # after a crash its lease runs out and a scan claims it like any other).
            free, busy = self._slots()
            claim = self._running and free > 0 and busy.get(_endpoint(url), 0) < self._endpoint_cap
            doc = self._new_delivery(
                operation_id("whd", event_id(pid, int(event["seq"]))),
                event_id=event_id(pid, int(event["seq"])),
                event_type=event["type"],
                payment_id=pid,
                merchant_id=payment["merchant_id"],
                tenant=payment.get("tenant", ""),
                sequence=int(event["seq"]),
                url=url,
                body=event_body(pid, payment["merchant_id"], event),
                redelivery_of="",
            )
            if claim:
                doc.update(self._claim_fields(_now()), attempt_count=1)
            try:
                await self._deliveries.insert_one(doc)
            except DuplicateKeyError:
                continue  # inserted by a pass that died before clearing the flag, or by a replica
            if claim:
                self._start(doc)
            else:
                self._queue(doc)
            inserted = True
        if inserted:
            self._deliver_kick.set()
        relayed = max([done, *(int(e["seq"]) for e in events)])
        cleared = await self._payments.update_one(
            {"_id": pid, "seq": payment["seq"]},
            {"$set": {"relay_pending": False, "relayed_seq": relayed}},
        )
        return cleared.matched_count == 1

    def _new_delivery(self, delivery_id: str, **fields: Any) -> Document:
        now = _now()
        return {
            "_id": delivery_id,
            **fields,
            "endpoint": _endpoint(fields["url"]),
            "state": PENDING,
            "attempt_count": 0,
            "last_status_code": 0,
            "last_error": "" if self._masters else UNCONFIGURED,
            "next_attempt_at": now,
            "create_time": now,
            "update_time": now,
        }

    def _queue(self, doc: Document) -> None:
        self._fresh[doc["_id"]] = doc["endpoint"]
        if len(self._fresh) > FRESH_LIMIT:
            del self._fresh[next(iter(self._fresh))]

    # ---- delivery -----------------------------------------------------------------------------------------

    async def _deliver_loop(self) -> None:
        next_scan = 0.0
        while True:
            self._deliver_kick.clear()
            try:
                scan = time.monotonic() >= next_scan
                if scan:
                    next_scan = time.monotonic() + self._settings.PAYMENT_WEBHOOK_POLL_SECONDS
                if not self._masters:
                    self._fresh.clear()
                    if scan:
                        await self._deliveries.update_many(
                            {"state": PENDING, "last_error": {"$ne": UNCONFIGURED}},
                            {"$set": {"last_error": UNCONFIGURED}},
                        )
                else:
                    await self._claim_fresh()
                    if scan and await self._claim_due():
                        next_scan = 0.0  # others may be due behind a full endpoint's: scan again now
                if scan:
                    await self._update_gauges()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: the next pass tries again
                log.warning("webhook delivery pass failed: %s: %s", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deliver_kick.wait(), max(0.0, next_scan - time.monotonic()))

    def _slots(self) -> tuple[int, dict[str, int]]:
        busy: dict[str, int] = {}
        for endpoint in self._inflight.values():
            busy[endpoint] = busy.get(endpoint, 0) + 1
        return self._settings.PAYMENT_WEBHOOK_CONCURRENCY - len(self._inflight), busy

    async def _claim_fresh(self) -> None:
        """Claim this replica's new deliveries by `_id` (no scan), as far as slots allow."""
        free, busy = self._slots()
        for delivery_id, endpoint in list(self._fresh.items()):
            if free <= 0:
                return
            if busy.get(endpoint, 0) >= self._endpoint_cap:
                continue
            del self._fresh[delivery_id]
            if await self._claim(delivery_id, endpoint):
                free -= 1
                busy[endpoint] = busy.get(endpoint, 0) + 1

    async def _claim_due(self) -> bool:
        """Claim due deliveries found by a scan, skipping endpoints that hold their share of slots; True if
        it skipped some (a scan that excludes their endpoint may find others)."""
        free, busy = self._slots()
        if free <= 0:
            return False
        query: Document = {"state": PENDING, "next_attempt_at": {"$lte": _now()}}
        if full := [e for e, n in busy.items() if n >= self._endpoint_cap]:
            query["endpoint"] = {"$nin": full}
        cursor = self._deliveries.find(query, {"endpoint": 1}).sort("next_attempt_at", ASCENDING)
        skipped = False
        for candidate in [c async for c in cursor.limit(free)]:
            endpoint = candidate["endpoint"]
            if busy.get(endpoint, 0) >= self._endpoint_cap:
                skipped = True
                continue
            if await self._claim(candidate["_id"], endpoint):
                busy[endpoint] = busy.get(endpoint, 0) + 1
        return skipped

    async def _claim(self, delivery_id: str, endpoint: str) -> bool:
        """Take one attempt of a due delivery (guarded: another replica's claim wins or loses whole)."""
        now = _now()
        claimed = await self._deliveries.find_one_and_update(
            {"_id": delivery_id, "state": PENDING, "next_attempt_at": {"$lte": now}},
            {"$set": self._claim_fields(now), "$inc": {"attempt_count": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if claimed is None:
            return False
        self._start(claimed)
        return True

    @property
    def _running(self) -> bool:
        """Whether this replica sends deliveries now (started, with a secret to sign them)."""
        return self._session is not None and bool(self._masters)

    def _claim_fields(self, now: datetime) -> Document:
        """What a claim of one attempt writes: this replica's lease on it."""
        return {
            "next_attempt_at": now + self._lease,
            "owner": self._owner,
            "lease": uuid.uuid4().hex,
            "update_time": now,
        }

    def _start(self, claimed: Document) -> None:
        """Run the attempt of a delivery this replica claimed."""
        task = asyncio.create_task(self._attempt(claimed))
        self._inflight[task] = claimed["endpoint"]
        task.add_done_callback(self._attempt_done)

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._deliver_kick.set()  # a slot is free
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("webhook attempt failed to record: %s: %s", type(exc).__name__, exc)

    async def _attempt(self, doc: Document) -> None:
        """Send one attempt and record its outcome (guarded on this claim's lease)."""
        s = self._settings
        status, error, outcome = await self._send(doc)
        now = _now()
        changes: Document = {"last_status_code": status, "last_error": error, "update_time": now}
        dead = False
        if outcome == "delivered":
            changes["state"] = DELIVERED
        elif (now - doc["create_time"]).total_seconds() >= s.PAYMENT_WEBHOOK_RETRY_WINDOW_SECONDS:
            changes["state"] = FAILED
            dead = True
        else:
            delay = backoff(
                doc["attempt_count"],
                s.PAYMENT_WEBHOOK_FIRST_RETRY_SECONDS,
                s.PAYMENT_WEBHOOK_MAX_RETRY_SECONDS,
            )
            changes["next_attempt_at"] = now + timedelta(seconds=delay)
        WEBHOOK_DELIVERIES.labels(outcome).inc()
        recorded = await self._deliveries.update_one(
            {"_id": doc["_id"], "lease": doc["lease"], "state": PENDING},
            {"$set": changes, "$unset": {"owner": "", "lease": ""}},
        )
        if recorded.modified_count != 1:  # the lease ran out and another attempt took the delivery
            log.warning("webhook attempt outlived its lease", extra={"fields": {"delivery_id": doc["_id"]}})
        elif dead:
            WEBHOOK_DEAD_LETTERS.inc()
            log.warning(
                "webhook delivery dead-lettered after its retry window",
                extra={
                    "fields": {
                        "delivery_id": doc["_id"],
                        "event_id": doc["event_id"],
                        "attempts": doc["attempt_count"],
                        "last_error": error,
                    }
                },
            )

    async def _send(self, doc: Document) -> tuple[int, str, str]:
        """POST the delivery's body: (HTTP status or 0, last_error, outcome for the attempts metric)."""
        if self._session is None:
            raise RuntimeError("Webhooks.start() was not called")
        refusal = url_refusal(doc["url"], self._settings.webhook_allow_private)
        if refusal is not None:
            return 0, f"not sent: webhook_url {refusal.description}", "refused"
        body = bytes(doc["body"])
        secrets = [merchant_secret(m, doc["merchant_id"]) for m in self._masters]
        headers = {
            "Content-Type": "application/json",
            "X-Tronpay-Event-Id": doc["event_id"],
            "X-Tronpay-Delivery-Id": doc["_id"],
            HEADER: signature_header(secrets, int(time.time()), body),
        }
        try:
            async with self._session.post(
                doc["url"], data=body, headers=headers, allow_redirects=False
            ) as resp:
                remaining = RESPONSE_READ_LIMIT  # read a short answer whole, so the connection is reused
                while remaining > 0 and (chunk := await resp.content.read(remaining)):
                    remaining -= len(chunk)
                if 200 <= resp.status < 300:
                    return resp.status, "", "delivered"
                return resp.status, f"HTTP {resp.status}", "rejected"
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, NonPublicAddress):
                return 0, f"not sent: {exc.os_error}", "refused"
            return 0, f"cannot connect: {exc.os_error.strerror or type(exc.os_error).__name__}", "error"
        except TimeoutError:
            return 0, f"no answer within {self._settings.PAYMENT_WEBHOOK_TIMEOUT_SECONDS:g}s", "error"
        except aiohttp.ClientError as exc:
            return 0, f"{type(exc).__name__}: {exc}", "error"

    async def _update_gauges(self) -> None:
        pending = {"state": PENDING}
        WEBHOOK_BACKLOG.set(await self._deliveries.count_documents(pending))
        oldest = await self._deliveries.find_one(
            pending, {"create_time": 1}, sort=[("create_time", ASCENDING)]
        )
        WEBHOOK_OLDEST.set((_now() - oldest["create_time"]).total_seconds() if oldest else 0)

    # ---- the delivery log and redelivery ------------------------------------------------------------------

    async def list_deliveries(
        self,
        payment_id: str,
        state: pb.WebhookDelivery.State.ValueType,
        page_size: int,
        page_token: str,
    ) -> tuple[list[Document], str]:
        """One page of deliveries, newest first (the ListWebhookDeliveries request's fields; state is a
        WebhookDelivery.State, 0 for all): the documents and the next page token."""
        page = Page.of(
            pb.ListWebhookDeliveriesRequest(
                payment_id=payment_id, state=state, page_size=page_size, page_token=page_token
            )
        )
        query: Document = {}
        if payment_id:
            query["payment_id"] = payment_id
        if state:
            query["state"] = _STATE_OF[state]
        cursor = self._deliveries.find(newest_first(query, page.after), {"body": 0}).sort(NEWEST_FIRST)
        docs = [d async for d in cursor.limit(page.fetch_limit)]
        return page.finish(docs, key=position_of)

    async def redeliver(self, delivery_id: str, request_id: str) -> Document:
        """A new delivery of the same event (same event id and body, new delivery id derived from
        request_id, so a retried request creates no second one). NOT_FOUND for an unknown delivery."""
        query: Document = {"_id": delivery_id}
        if (tenant := context.tenant_scope()) is not None:
            query["tenant"] = tenant
        source = await self._deliveries.find_one(query)
        if source is None:
            raise errors.NotFound(
                "webhook delivery not found",
                reason="WEBHOOK_DELIVERY_NOT_FOUND",
                metadata={"delivery_id": delivery_id},
            )
        new_id = operation_id("whd", f"{delivery_id}/redeliver/{request_id}")
        copied = ("event_id", "event_type", "payment_id", "merchant_id", "tenant", "sequence", "url", "body")
        doc = self._new_delivery(new_id, **{k: source[k] for k in copied}, redelivery_of=delivery_id)
        try:
            await self._deliveries.insert_one(doc)
        except DuplicateKeyError:  # the same request again: its delivery (deliveries are never deleted)
            existing = await self._deliveries.find_one({"_id": new_id})
            if existing is not None:
                return existing
            raise
        self._queue(doc)
        self._deliver_kick.set()
        return doc

    # ---- incoming replay store ----------------------------------------------------------------------------

    async def mark_seen(self, source: str, event_id: str) -> bool:
        """Record an incoming notification's event id; False if it was recorded before (a replay)."""
        try:
            await self._inbound.insert_one({"source": source, "event_id": event_id, "seen_time": _now()})
        except DuplicateKeyError:
            INBOUND_WEBHOOKS.labels("replayed").inc()
            return False
        return True

    async def forget_seen(self, source: str, event_id: str) -> None:
        """Undo mark_seen when processing failed, so the sender's retry is processed."""
        await self._inbound.delete_one({"source": source, "event_id": event_id})
