"""The durable lifecycle of a signed TRON transaction, for every service that sends one (USDT transfers and
approvals today; staking operations, payouts and sweeps use the same machine).

A service supplies what is specific to its operations:
  - a `Builder`: the unsigned transaction of attempt n, built through tron-client's BuildTransaction (it may
    check again what can have changed since the previous attempt and raise `Refused` to end the operation
    FAILED; nothing of that attempt is signed);
  - which wallet signs: each operation's `wallet_id` and `signer_address` (wallet-manager's SignTransaction,
    so the wallet's signing policy decides); for a multi-signature account the Builder names the signing
    wallets of each attempt (`Built.signers`, the transaction built with the permission's Permission_id), and
    every one of them signs in turn, each appending its signature to the others';
  - optionally an `EnergySource` asked for each attempt's estimated energy after it is built and before it is
    signed (`BurnEnergy`, the default, provides none: the signer's own staked energy, then TRX burned up to
    the transaction's fee_limit; `StakingBroker`: trx-staking's energy broker) and a `TransitionHook`.
It gets a `Lifecycle`: `create` (once per operation id, see `operation_id`; builds and signs the first attempt
before storing it, so a refusal reaches the caller and leaves nothing behind), `get`, `replayed`,
`txid_owners`, `start`/`stop` of the driver; and `indexes(collection)` for its ServiceSpec.

    ops = Lifecycle(rt.db, rt.clients, LifecycleConfig("payout", "payout_txs"), build_payout,
                    owner=Lifecycle.default_owner(rt.settings.port))
    ops.start(); rt.on_stop(ops.stop)
    op = await ops.create(operation_id("po", request.request_id), request_id=..., fingerprint=...,
                          wallet_id=..., signer_address=..., fields={...the service's own fields...})

States (OpState): PENDING (accepted; the current attempt is being built or signed) -> SIGNED (its signed
transaction is stored) -> BROADCAST (sent at least once) -> INCLUDED (in a block not yet solidified) ->
CONFIRMED (in a solidified block, receipt SUCCESS) | FAILED (solidified with another result, or refused before
signing) | EXPIRED (max_attempts attempts, each provably expired unseen).

Why no crash can lose an operation or pay twice:
  - one document per operation, inserted once (`_id` = operation id, unique); every state change is one write
    guarded on (owner, state, attempt), so a write that lost a race changes nothing. The collection holds
    live operations only: a terminal one is copied to `<collection>_done` (insert-once) and then removed, so
    the lifecycle's scans (own and orphaned operations) stay small on FerretDB, which serves only `_id`
    equality from an index. Creation checks `_done` after its insert, so an operation can never be created
    again after it finished (its copy is in `_done` before it leaves the collection);
  - the first attempt is stored signed (a crash before that leaves a signature nobody ever broadcasts, and the
    retried request builds anew); a later attempt's transaction is stored before it is signed; every signature
    (all of a multi-signature attempt's, collected before any is stored) is stored before the first
    broadcast; a rebroadcast sends the same bytes (same txID) and a retried sign/broadcast reuses its request
    id, so wallet-manager and tron-client answer it from their records;
  - a new attempt is built only after the current one provably can never be included: its expiration is not
    after the solidified block's time (every later block is later still) and no block holds it;
  - INCLUDED is never final: CONFIRMED/FAILED need the receipt from a solidified block, and a block that left
    the chain takes the operation back to BROADCAST (rebroadcast at once);
  - one driver per operation across replicas: each operation names its `owner`; each process keeps a
    heartbeat (`<collection>_drivers`, renewed every lease/3) and steps only while its last renewal is recent;
    another process takes over (guarded on the old owner) the operations of an owner whose heartbeat ran out.
    The owner id is host:port, so a restarted process resumes its own operations at once; `drivers` lists
    every process that ever drove the operation. A driver that lost an operation cannot write to it any more;
    what it may still send is the stored signed transaction, which is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import grpc
from google.rpc import error_details_pb2
from prometheus_client import Counter, Gauge, Histogram
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc
from tronpay.trx_staking.v1 import trx_staking_pb2 as ts
from tronpay.trx_staking.v1 import trx_staking_pb2_grpc as ts_grpc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as wm_grpc

from services.common import errors
from services.common.clients import ServiceClients
from services.common.logging import get_logger
from services.common.mongo import Document, IndexSpec, ServiceDatabase
from services.common.settings import ServiceName

log = get_logger("services.chain_ops")


class OpState(StrEnum):
    """Lifecycle states, named as the contracts' OperationState values without their prefix."""

    PENDING = "PENDING"
    SIGNED = "SIGNED"
    BROADCAST = "BROADCAST"
    INCLUDED = "INCLUDED"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


ACTIVE = (OpState.PENDING, OpState.SIGNED, OpState.BROADCAST, OpState.INCLUDED)
TERMINAL = (OpState.CONFIRMED, OpState.FAILED, OpState.EXPIRED)
_ACTIVE = [s.value for s in ACTIVE]
_TERMINAL = [s.value for s in TERMINAL]

# Codes after which the same call is simply tried again later.
TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)
MAX_BACKOFF_SECONDS = 30.0

_SECONDS = (0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600)
TRANSITIONS = Counter(
    "tronpay_chain_ops_transitions_total", "Operations entering a state.", ["kind", "state"]
)
ACTIVE_OPS = Gauge("tronpay_chain_ops_active", "Operations this process drives, by state.", ["kind", "state"])
TO_INCLUDED = Histogram(
    "tronpay_chain_ops_seconds_to_included", "Seconds from creation to the first block.", ["kind"],
    buckets=_SECONDS,
)  # fmt: skip
TO_CONFIRMED = Histogram(
    "tronpay_chain_ops_seconds_to_confirmed",
    "Seconds from creation to CONFIRMED.",
    ["kind"],
    buckets=_SECONDS,
)
BROADCASTS = Counter(
    "tronpay_chain_ops_broadcasts_total", "Signed transactions sent (first sends).", ["kind"]
)
REBROADCASTS = Counter(
    "tronpay_chain_ops_rebroadcasts_total", "The same signed transaction sent again.", ["kind"]
)
REBUILDS = Counter(
    "tronpay_chain_ops_rebuilds_total", "New attempts after the previous one provably expired.", ["kind"]
)
REORGED = Counter(
    "tronpay_chain_ops_reorged_total", "Included operations whose block left the chain.", ["kind"]
)
TAKEOVERS = Counter(
    "tronpay_chain_ops_takeovers_total",
    "Operations taken over from a driver whose heartbeat ran out.",
    ["kind"],
)
ENERGY_USED = Counter(
    "tronpay_chain_ops_energy_used_total", "Energy used by finished operations.", ["kind", "source"]
)
TRX_BURNED = Counter(
    "tronpay_chain_ops_trx_burned_sun_total", "TRX burned by finished operations, in sun.", ["kind", "source"]
)
STEP_ERRORS = Counter(
    "tronpay_chain_ops_step_errors_total", "Steps that failed and are retried later.", ["kind", "error"]
)


# ---------------------------------------------------------------------------------------------------
# what a service supplies


class Refused(Exception):
    """Raised by a Builder: the operation must not go on. It ends FAILED (or, on `create`, is refused with
    FAILED_PRECONDITION); `reason` is a stable UPPER_SNAKE_CASE word."""

    def __init__(self, reason: str, message: str, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.reason, self.message, self.metadata = reason, message, dict(metadata or {})


@dataclass(frozen=True, slots=True)
class Signer:
    """A wallet in wallet-manager and the address of its key that signs."""

    wallet_id: str
    address: str


@dataclass(frozen=True, slots=True)
class Built:
    """What a Builder returns: the unsigned transaction (tron-client's BuildTransaction answer), the energy
    it was estimated to use, fields of the service to store with it (what the builder decided) and, for a
    multi-signature account, the wallets whose signatures together meet its permission's threshold (empty:
    the operation's own wallet signs alone)."""

    transaction: common_pb2.Transaction
    energy_estimate: int = 0
    fields: Mapping[str, Any] = field(default_factory=dict)
    signers: Sequence[Signer] = ()


@dataclass(frozen=True, slots=True)
class EnergyGrant:
    """Where an attempt's energy comes from ("burn", "broker"), the energy free at the signer when it was
    arranged, and what the source said (stored with the attempt)."""

    source: str
    energy: int = 0
    detail: str = ""


class EnergySource(Protocol):
    """Arranges energy for an attempt's signer once it is built, before it is signed (for example by
    delegating staked energy); what it does not provide the transaction burns as TRX, up to its fee_limit.
    Raises Refused when the attempt must not be signed."""

    async def provide(self, op: Operation, attempt: int, built: Built) -> EnergyGrant: ...


class BurnEnergy:
    """No provider: the signer's own staked energy, then TRX burned up to the fee_limit."""

    async def provide(self, op: Operation, attempt: int, built: Built) -> EnergyGrant:
        return EnergyGrant("burn")


class StakingBroker:
    """trx-staking's energy broker (RequestEnergy): it delegates the estimated energy to the signer from
    the cluster's stake, so the transaction burns no TRX for it. When the broker refuses but allows burning
    (up to its max_burn_sun, which must cover the attempt's fee_limit) and the signer holds the fee_limit in
    TRX, the attempt burns; otherwise it is refused (ENERGY_REFUSED). A delegation still on its way is asked
    for again, a few times."""

    PENDING_TRIES = 5
    PENDING_WAIT_SECONDS = 2.0

    def __init__(self, clients: ServiceClients) -> None:
        self._clients = clients

    async def provide(self, op: Operation, attempt: int, built: Built) -> EnergyGrant:
        if built.energy_estimate <= 0:
            return EnergyGrant("burn", detail="nothing to provide")
        broker = self._clients.stub(ServiceName.TRX_STAKING, ts_grpc.TrxStakingServiceStub)
        answer = ts.RequestEnergyResponse()
        for n in range(self.PENDING_TRIES):
            req = ts.RequestEnergyRequest(
                request_id=f"{op.id}.{attempt}.energy{n}",
                address=op.signer_address,
                energy=built.energy_estimate,
            )
            answer = await broker.RequestEnergy(req)
            outcome = ts.RequestEnergyResponse.Outcome.Name(answer.outcome).removeprefix("OUTCOME_")
            if answer.outcome in (
                ts.RequestEnergyResponse.OUTCOME_AVAILABLE,
                ts.RequestEnergyResponse.OUTCOME_DELEGATED,
            ):
                return EnergyGrant(
                    "broker", answer.energy_available, f"{outcome} {answer.operation_id}".strip()
                )
            if answer.outcome != ts.RequestEnergyResponse.OUTCOME_PENDING:
                break
            await asyncio.sleep(self.PENDING_WAIT_SECONDS)
        why = answer.refusal_reason or "the delegation is still on its way"
        fee_limit = built.transaction.fee_limit_sun
        if answer.burn_allowed and fee_limit <= answer.max_burn_sun:
            tron = self._clients.stub(ServiceName.TRON_CLIENT, tc_grpc.TronClientServiceStub)
            account = (await tron.GetAccount(tc.GetAccountRequest(address=op.signer_address))).account
            if account.balance_sun >= fee_limit:
                return EnergyGrant("burn", detail=f"broker: {why}; burning")
            why += f"; the signer holds {account.balance_sun} sun, the fee limit is {fee_limit}"
        raise Refused("ENERGY_REFUSED", f"the energy broker did not provide the energy: {why}")


class Builder(Protocol):
    """Builds the unsigned transaction of `attempt` (1 for the first) of `op`."""

    async def __call__(self, op: Operation, attempt: int) -> Built: ...


# Called after every guarded transition (and when an INCLUDED operation moves to another block), with the
# operation as written and the state it left. Errors are logged; the transition stands.
TransitionHook = Callable[["Operation", OpState], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    """`kind` names the operations in metrics and signing purposes; `collection` holds their documents (one
    per operation, with the service's own fields beside the lifecycle's)."""

    kind: str
    collection: str
    max_attempts: int = 3
    poll_seconds: float = 1.0  # inclusion and finality checks
    rebroadcast_seconds: float = 6.0  # the same signed transaction again while it is in no block
    lease_seconds: float = 30.0  # a driver whose heartbeat is older than this loses its operations
    concurrency: int = 64  # steps in flight per process

    @property
    def fork_check_seconds(self) -> float:
        """How often an INCLUDED operation whose block is not solidified yet checks that it is still there
        (a check that finds any transaction in a block counts for every operation included in that block)."""
        return 3 * self.poll_seconds


# ---------------------------------------------------------------------------------------------------
# the operation as read


@dataclass(frozen=True, slots=True)
class Attempt:
    """One transaction built for an operation."""

    number: int
    txid: str
    raw: bytes
    expiration_ms: int
    fee_limit_sun: int
    energy_estimate: int
    energy_source: str
    signature: bytes
    broadcasts: int
    first_broadcast_time: datetime | None
    last_broadcast_time: datetime | None
    expired: bool
    last_error: str
    signatures: tuple[bytes, ...]  # all of them, in signing order (`signature` is the first)
    signers: tuple[Signer, ...]  # the wallets of a multi-signature attempt; empty: the operation's wallet

    @classmethod
    def of(cls, d: Mapping[str, Any]) -> Attempt:
        first = bytes(d.get("signature", b""))
        signatures = tuple(bytes(x) for x in d.get("signatures", ())) or ((first,) if first else ())
        signers = tuple(Signer(x["wallet_id"], x["address"]) for x in d.get("signers", ()))
        return cls(
            int(d["number"]), d.get("txid", ""), bytes(d.get("raw", b"")), int(d.get("expiration_ms", 0)),
            int(d.get("fee_limit_sun", 0)), int(d.get("energy_estimate", 0)), d.get("energy_source", ""),
            first, int(d.get("broadcasts", 0)), d.get("first_broadcast_time"),
            d.get("last_broadcast_time"), bool(d.get("expired", False)), d.get("last_error", ""),
            signatures, signers,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Receipt:
    """The execution receipt of the including transaction."""

    result: str  # SUCCESS, REVERT, OUT_OF_ENERGY, FAILED
    fee_sun: int
    energy_used: int
    energy_fee_sun: int
    net_fee_sun: int
    message: str


@dataclass(frozen=True, slots=True)
class Operation:
    """An operation's document, typed; `doc` is the whole document (the service's own fields too)."""

    id: str
    kind: str
    state: OpState
    wallet_id: str
    signer_address: str
    attempts: tuple[Attempt, ...]
    block_number: int
    block_id: str
    receipt: Receipt | None
    failure_reason: str
    create_time: datetime
    update_time: datetime
    include_time: datetime | None
    confirm_time: datetime | None
    doc: Mapping[str, Any]

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Operation:
        attempts = tuple(sorted((Attempt.of(a) for a in doc.get("attempts", {}).values()), key=_number))
        r = doc.get("receipt")
        receipt = None if r is None else Receipt(
            r["result"], r["fee_sun"], r["energy_used"], r["energy_fee_sun"], r["net_fee_sun"], r["message"]
        )  # fmt: skip
        return cls(
            doc["_id"], doc["kind"], OpState(doc["state"]), doc["wallet_id"], doc["signer_address"], attempts,
            int(doc.get("block_number", 0)), doc.get("block_id", ""), receipt, doc.get("failure_reason", ""),
            doc["create_time"], doc["update_time"], doc.get("include_time"), doc.get("confirm_time"), doc,
        )  # fmt: skip

    @property
    def current(self) -> Attempt:
        """The attempt being driven (the last one)."""
        return self.attempts[-1]


def _number(a: Attempt) -> int:
    return a.number


def indexes(collection: str) -> tuple[IndexSpec, ...]:
    """The indexes a lifecycle's queries use (own and orphaned operations, txid lookups); add them to the
    service's ServiceSpec."""
    return (
        IndexSpec(collection, [("owner", 1), ("state", 1)], name="owner_state"),
        IndexSpec(collection, [("txids", 1)], name="txids"),
        IndexSpec(collection + "_done", [("txids", 1)], name="txids"),
    )


def operation_id(prefix: str, request_id: str) -> str:
    """The id of the operation a request creates: the same request_id always names the same operation, so
    inserting it is the once-only claim."""
    return f"{prefix}_{hashlib.sha256(f'{prefix}:{request_id}'.encode()).hexdigest()[:24]}"


# ---------------------------------------------------------------------------------------------------
# helpers


def _now() -> datetime:
    return datetime.now(UTC)


def _reason(exc: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a failed call ("" when it has none)."""
    status = errors.status_from_error(exc)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


def refusal(exc: grpc.aio.AioRpcError, what: str) -> errors.DomainError:
    """A definitive refusal by another service, as this service's error (code and reason kept)."""
    code, reason = exc.code(), _reason(exc) or "UPSTREAM_REFUSED"
    meta = {"upstream_code": code.name if code else "UNKNOWN"}
    message = f"{what}: {exc.details() or reason}"
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return errors.PermissionDenied(message, reason=reason, metadata=meta)
    if code == grpc.StatusCode.NOT_FOUND:
        return errors.NotFound(message, reason=reason, metadata=meta)
    return errors.FailedPrecondition(message, reason=reason, metadata=meta)


def upstream_error(exc: grpc.aio.AioRpcError, service: str, what: str) -> errors.DomainError:
    """Another service's failure as ours: retryable stays retryable; a refusal keeps its code and reason."""
    code = exc.code()
    meta = {"upstream": service, "upstream_code": code.name if code else "UNKNOWN"}
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.DeadlineExceeded(f"{service} did not answer {what} in time", metadata=meta)
    if code in (
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
    ):
        return refusal(exc, f"{service} refused {what}")
    return errors.Unavailable(
        f"cannot {what} through {service}",
        reason=f"{service.replace('-', '_').upper()}_UNAVAILABLE",
        metadata=meta,
    )


#: Wallet kinds that can sign a transaction the cluster builds (watch-only and TronLink wallets cannot).
SIGNING_KINDS = (wm.Wallet.KIND_HD, wm.Wallet.KIND_IMPORTED, wm.Wallet.KIND_LEDGER, wm.Wallet.KIND_TREZOR)
WALLET_CANNOT_SIGN = "WALLET_CANNOT_SIGN"
#: A service's refusal maker: (reason, message, **metadata) -> the error, counted in its own metric.
Refusal = Callable[..., errors.DomainError]


class PeerReads:
    """What every service that sends transactions reads from its peers: tron-client's and wallet-manager's
    stubs, and the wallet lookups (each service's chain module builds on this)."""

    def __init__(self, clients: ServiceClients) -> None:
        self._clients = clients

    @property
    def _tron(self) -> tc_grpc.TronClientServiceStub:
        return self._clients.stub(ServiceName.TRON_CLIENT, tc_grpc.TronClientServiceStub)

    @property
    def _wallets(self) -> wm_grpc.WalletManagerServiceStub:
        return self._clients.stub(ServiceName.WALLET_MANAGER, wm_grpc.WalletManagerServiceStub)

    async def wallet(self, wallet_id: str) -> wm.Wallet:
        try:
            return (await self._wallets.GetWallet(wm.GetWalletRequest(wallet_id=wallet_id))).wallet
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "wallet-manager", "to read the wallet") from None

    async def signing_wallet(self, wallet_id: str, refuse: Refusal) -> wm.Wallet:
        """The wallet, if it can sign transactions here; else `refuse`'s FAILED_PRECONDITION
        WALLET_CANNOT_SIGN (each service counts its refusals its own way)."""
        wallet = await self.wallet(wallet_id)
        if wallet.kind not in SIGNING_KINDS:
            raise refuse(WALLET_CANNOT_SIGN, "this wallet cannot sign here (watch-only or TronLink)",
                         wallet_id=wallet_id)  # fmt: skip
        return wallet

    async def signing_address(self, wallet_id: str, address: str, field: str, refuse: Refusal) -> str:
        """The address that signs: the wallet's primary one, or `address` (request field `field`) if it is one
        of the wallet's."""
        wallet = await self.signing_wallet(wallet_id, refuse)
        if address and address != wallet.address and not await self.wallet_holds(wallet_id, address):
            raise errors.InvalidArgument(
                "the address is not in the wallet",
                [errors.FieldViolation(field, "not an address of the wallet", "ADDRESS_NOT_IN_WALLET")],
            )
        return address or wallet.address

    async def wallet_holds(self, wallet_id: str, address: str) -> bool:
        """Whether `address` is one of the wallet's addresses (GetPublicKey knows every derived one)."""
        try:
            await self._wallets.GetPublicKey(wm.GetPublicKeyRequest(wallet_id=wallet_id, address=address))
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                return False
            raise upstream_error(exc, "wallet-manager", "to read the wallet's address") from None
        return True


@dataclass(frozen=True, slots=True)
class _Height:
    head_time_ms: int
    solid_number: int
    solid_time_ms: int


def _ms(ts: Any) -> int:
    return int(ts.ToMilliseconds()) if ts is not None else 0


class _SignRefused(Exception):
    def __init__(self, exc: grpc.aio.AioRpcError) -> None:
        super().__init__(exc.details())
        self.error = refusal(exc, "the wallet manager refused to sign")


def _signature_fields(signatures: Sequence[bytes]) -> Document:
    """How an attempt stores its signatures: `signature` alone, as always, for one; all in `signatures` too
    for a multi-signature attempt."""
    fields: Document = {"signature": signatures[0]}
    if len(signatures) > 1:
        fields["signatures"] = list(signatures)
    return fields


def _new_attempt(number: int) -> Document:
    return {"number": number, "txid": "", "broadcasts": 0, "expired": False}


# ---------------------------------------------------------------------------------------------------
# the lifecycle


class Lifecycle:
    """Creates operations and drives every operation this process owns to a terminal state."""

    def __init__(
        self,
        db: ServiceDatabase,
        clients: ServiceClients,
        config: LifecycleConfig,
        builder: Builder,
        *,
        owner: str,
        energy: EnergySource | None = None,
        on_transition: TransitionHook | None = None,
    ) -> None:
        self._col = db.collection(config.collection)
        self._done = db.collection(config.collection + "_done")
        self._heartbeats = db.collection(config.collection + "_drivers")
        self._clients = clients
        self._cfg = config
        self._builder = builder
        self._energy: EnergySource = energy or BurnEnergy()
        self._on_transition = on_transition
        self._owner = owner
        self._lease = timedelta(seconds=config.lease_seconds)
        self._lease_valid_until = 0.0  # monotonic; steps run only before it
        self._cache: dict[str, Document] = {}  # documents of the operations this process drives
        self._due: dict[str, float] = {}  # op id -> monotonic time of its next step
        self._heap: list[tuple[float, str]] = []
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._failures: dict[str, int] = {}
        self._fork_checked: dict[str, float] = {}
        # block id -> monotonic time a transaction was last read in it (the block was on the chain then):
        # the operations included in one block share their fork checks.
        self._block_seen: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._height: tuple[float, _Height] | None = None
        self._loops: list[asyncio.Task[None]] = []

    @staticmethod
    def default_owner(port: int) -> str:
        """host:port: the same after a restart (the process resumes its operations at once), different for
        every replica."""
        return f"{socket.gethostname()}:{port}"

    @property
    def _wallets(self) -> wm_grpc.WalletManagerServiceStub:
        return self._clients.stub(ServiceName.WALLET_MANAGER, wm_grpc.WalletManagerServiceStub)

    @property
    def _tron(self) -> tc_grpc.TronClientServiceStub:
        return self._clients.stub(ServiceName.TRON_CLIENT, tc_grpc.TronClientServiceStub)

    # ---- creating and reading ---------------------------------------------------------------------
    async def create(
        self,
        op_id: str,
        *,
        request_id: str,
        fingerprint: str,
        wallet_id: str,
        signer_address: str,
        fields: Mapping[str, Any],
        looked_up: bool = False,
    ) -> Operation:
        """The operation `op_id`, created once: build attempt 1, sign it, store it SIGNED (owned by this
        process; the driver broadcasts it at once). The same id again returns the stored operation
        (FAILED_PRECONDITION REQUEST_ID_REUSED when `fingerprint` differs). A Builder refusal is
        FAILED_PRECONDITION, a signing refusal the wallet manager's error, a wallet manager out of reach
        UNAVAILABLE; nothing is stored then. `looked_up`: the caller has just found no such operation (`get`),
        so it is not read again before building (the checks after the insert still catch a concurrent or
        finished one)."""
        existing = None if looked_up else await self.get(op_id)
        if existing is not None:
            return self.replayed(existing, fingerprint)
        now = _now()
        doc: Document = {
            **fields, "_id": op_id, "kind": self._cfg.kind, "request_id": request_id,
            "fingerprint": fingerprint, "wallet_id": wallet_id, "signer_address": signer_address,
            "state": OpState.PENDING.value, "attempt": 1, "attempts": {"1": _new_attempt(1)}, "txids": [],
            "owner": self._owner, "drivers": [self._owner], "create_time": now, "update_time": now,
        }  # fmt: skip
        try:
            built, grant = await self._prepare(Operation.of(doc), 1)
        except Refused as r:
            raise errors.FailedPrecondition(r.message, reason=r.reason, metadata=r.metadata) from None
        doc.update(built.fields)
        doc["attempts"]["1"].update(self._attempt_fields(built, grant))
        try:
            signatures = await self._signatures(doc)
        except _SignRefused as refused:
            raise refused.error from None
        except grpc.aio.AioRpcError as exc:
            raise errors.Unavailable(
                "the wallet manager cannot sign now; retry", reason="WALLET_MANAGER_UNAVAILABLE"
            ) from exc
        doc["attempts"]["1"].update(_signature_fields(signatures))
        doc.update(state=OpState.SIGNED.value, txids=[built.transaction.txid], update_time=_now())
        self._running.add(op_id)  # not resumed by the heartbeat loop before the check below
        try:
            try:
                await self._col.insert_one(doc)
            except DuplicateKeyError:  # the same request, concurrently
                again = await self.get(op_id)
                if again is None:
                    raise errors.Aborted(
                        "the operation is being created concurrently", reason="CONFLICT"
                    ) from None
                return self.replayed(again, fingerprint)
            finished = await self._done.find_one({"_id": op_id})
            if finished is not None:  # the same request ran to its end while this one was signing
                await self._col.delete_one(
                    {"_id": op_id, "owner": self._owner, "state": OpState.SIGNED.value}
                )
                return self.replayed(Operation.of(finished), fingerprint)
        finally:
            self._running.discard(op_id)
        self._cache[op_id] = doc
        TRANSITIONS.labels(self._cfg.kind, OpState.PENDING.value).inc()
        TRANSITIONS.labels(self._cfg.kind, OpState.SIGNED.value).inc()
        self._schedule(op_id, 0.0)
        return Operation.of(doc)

    def replayed(self, op: Operation, fingerprint: str) -> Operation:
        """The operation a repeated request names; REQUEST_ID_REUSED when the request differs."""
        if op.doc.get("fingerprint") != fingerprint:
            raise errors.FailedPrecondition(
                "request_id was already used for a different request",
                reason="REQUEST_ID_REUSED",
                metadata={"request_id": str(op.doc.get("request_id", ""))},
            )
        return op

    async def get(self, op_id: str) -> Operation | None:
        """The operation as stored (live, else finished)."""
        doc = await self._col.find_one({"_id": op_id}) or await self._done.find_one({"_id": op_id})
        return None if doc is None else Operation.of(doc)

    async def txid_owners(self, txids: Sequence[str]) -> dict[str, str]:
        """txid -> id of the operation that built it, for those of `txids` this lifecycle built."""
        wanted = set(txids)
        out: dict[str, str] = {}
        for col in (self._col, self._done) if wanted else ():
            async for d in col.find({"txids": {"$in": list(wanted)}}, {"txids": 1}):
                out.update((t, d["_id"]) for t in d["txids"] if t in wanted)
        return out

    async def _prepare(self, op: Operation, attempt: int) -> tuple[Built, EnergyGrant]:
        """Build the attempt, then arrange its energy (before anything is signed); Refused by either."""
        built = await self._builder(op, attempt)
        grant = await self._energy.provide(op, attempt, built)
        if grant.detail:
            log.info("energy %s", grant.source, extra={"fields": {"op": op.id, "attempt": attempt,
                                                                  "detail": grant.detail}})  # fmt: skip
        return built, grant

    @staticmethod
    def _attempt_fields(built: Built, grant: EnergyGrant) -> Document:
        tx = built.transaction
        fields = {
            "txid": tx.txid, "raw": bytes(tx.raw_data), "expiration_ms": _ms(tx.expiration_time),
            "fee_limit_sun": tx.fee_limit_sun, "energy_estimate": built.energy_estimate,
"energy_source": grant.source, "energy_provided": grant.energy, "energy_detail": grant.detail,
            "build_time": _now(),
        }  # fmt: skip
        if built.signers:
            fields["signers"] = [{"wallet_id": x.wallet_id, "address": x.address} for x in built.signers]
        return fields

    # ---- the driver -------------------------------------------------------------------------------
    def start(self) -> None:
        """Resume this process's operations and start driving (call from the running event loop)."""
        self._loops = [asyncio.create_task(self._leases()), asyncio.create_task(self._work())]

    async def stop(self, grace: float = 5.0) -> None:
        """Stop stepping, let running steps finish (at most `grace` s), and end the heartbeat now so
        another replica takes over at once."""
        self._stopping.set()
        self._wake.set()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        for task in (*self._loops, *self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(PyMongoError):
            await self._heartbeats.update_one({"_id": self._owner}, {"$set": {"until": _now()}})

    def _schedule(self, op_id: str, delay: float) -> None:
        at = time.monotonic() + delay
        self._due[op_id] = at
        heapq.heappush(self._heap, (at, op_id))
        self._wake.set()

    async def _work(self) -> None:
        while not self._stopping.is_set():
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now and len(self._tasks) < self._cfg.concurrency:
                at, op_id = heapq.heappop(self._heap)
                if self._due.get(op_id) != at or op_id in self._running:
                    continue  # rescheduled since, or a step of it runs (and reschedules it)
                del self._due[op_id]
                self._running.add(op_id)
                task = asyncio.create_task(self._drive(op_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            self._wake.clear()
            timeout = self._cfg.poll_seconds
            if self._heap and len(self._tasks) < self._cfg.concurrency:
                timeout = max(0.0, min(timeout, self._heap[0][0] - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _drive(self, op_id: str) -> None:
        try:
            delay = await self._step(op_id)
            self._failures.pop(op_id, None)
        except Exception as exc:  # a dependency is down or answered strangely: retried with back-off
            n = self._failures[op_id] = self._failures.get(op_id, 0) + 1
            delay = min(self._cfg.poll_seconds * 2**n, MAX_BACKOFF_SECONDS)
            if isinstance(exc, grpc.aio.AioRpcError):
                name, detail = exc.code().name, exc.details() or ""
            else:
                name, detail = type(exc).__name__, str(exc)
            STEP_ERRORS.labels(self._cfg.kind, name).inc()
            log.warning(
                "step failed; retrying",
                extra={"fields": {"op": op_id, "error": name, "detail": detail, "retry_in": delay}},
                exc_info=not isinstance(exc, grpc.aio.AioRpcError | PyMongoError),
            )
        finally:
            self._running.discard(op_id)
        if delay is None:
            self._forget(op_id)
        elif not self._stopping.is_set():
            self._schedule(op_id, delay)
        self._wake.set()

    def _forget(self, op_id: str) -> None:
        self._cache.pop(op_id, None)
        self._failures.pop(op_id, None)
        self._fork_checked.pop(op_id, None)

    async def _leases(self) -> None:
        """Renew this process's heartbeat, resume its own operations that are not scheduled (those of before
        a restart), take over those of owners whose heartbeat ran out, report the gauges; every lease/3."""
        while not self._stopping.is_set():
            try:
                started = time.monotonic()
                await self._heartbeats.update_one(
                    {"_id": self._owner}, {"$set": {"until": _now() + self._lease}}, upsert=True
                )
                self._lease_valid_until = started + 0.8 * self._cfg.lease_seconds
                mine = self._col.find({"owner": self._owner, "state": {"$in": _ACTIVE}}, {"_id": 1})
                async for stub in mine:
                    if stub["_id"] not in self._running and stub["_id"] not in self._due:
                        self._schedule(stub["_id"], 0.0)
                async for ended in self._col.find({"state": {"$in": _TERMINAL}}):  # a crash before its move
                    await self._archive(ended)
                await self._take_orphans()
                self._report()
            except PyMongoError as exc:  # the database is away: steps stop once the heartbeat is unsure
                log.warning("heartbeat failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._cfg.lease_seconds / 3)

    async def _take_orphans(self) -> None:
        live = [self._owner]  # never itself, even when its own heartbeat is late
        live += [d["_id"] async for d in self._heartbeats.find({"until": {"$gte": _now()}}, {"_id": 1})]
        orphans = self._col.find({"state": {"$in": _ACTIVE}, "owner": {"$nin": live}}, {"owner": 1})
        async for stub in orphans.limit(500):
            taken = await self._col.find_one_and_update(
                {"_id": stub["_id"], "state": {"$in": _ACTIVE}, "owner": stub["owner"]},
                {"$set": {"owner": self._owner}, "$addToSet": {"drivers": self._owner}},
                return_document=ReturnDocument.AFTER,
            )
            if taken is None:
                continue
            TAKEOVERS.labels(self._cfg.kind).inc()
            log.warning(
                "took over an operation whose driver stopped",
                extra={"fields": {"op": stub["_id"], "previous_owner": stub["owner"]}},
            )
            self._cache[stub["_id"]] = taken
            self._schedule(stub["_id"], 0.0)

    def _report(self) -> None:
        counts = dict.fromkeys(_ACTIVE, 0)
        for doc in self._cache.values():
            if doc["state"] in counts:
                counts[doc["state"]] += 1
        for state, n in counts.items():
            ACTIVE_OPS.labels(self._cfg.kind, state).set(n)

    # ---- one step ---------------------------------------------------------------------------------
    async def _step(self, op_id: str) -> float | None:
        """Move the operation on as far as it can go now; the delay until its next step (None: it is
        terminal or no longer ours)."""
        doc = self._cache.get(op_id) or await self._col.find_one({"_id": op_id})
        if doc is None or doc.get("owner") != self._owner or doc["state"] not in _ACTIVE:
            return None
        self._cache[op_id] = doc
        if time.monotonic() >= self._lease_valid_until:
            return self._cfg.poll_seconds  # our lease may have run out: wait for the next renewal
        state = OpState(doc["state"])
        if state is OpState.PENDING:
            return await self._pending(doc)
        if state is OpState.SIGNED:
            return await self._signed(doc)
        if state is OpState.BROADCAST:
            return await self._broadcast(doc)
        return await self._included(doc)

    async def _write(
        self,
        doc: Document,
        changes: Mapping[str, Any],
        *,
        state: OpState | None = None,
        guard: Mapping[str, Any] | None = None,
        add_txid: str = "",
    ) -> Document | None:
        """One guarded write (owner, state and attempt as read, plus `guard`); the new document, or None when
        the operation changed meanwhile (it is then read again)."""
        old = OpState(doc["state"])
        query = {"_id": doc["_id"], "owner": self._owner, "state": old.value, "attempt": doc["attempt"],
                 **(guard or {})}  # fmt: skip
        update: dict[str, Any] = {"$set": {**changes, "update_time": _now()}}
        if state is not None:
            update["$set"]["state"] = state.value
        if add_txid:
            update["$addToSet"] = {"txids": add_txid}
        new = await self._col.find_one_and_update(query, update, return_document=ReturnDocument.AFTER)
        if new is None:
            self._cache.pop(doc["_id"], None)
            return None
        self._cache[doc["_id"]] = new
        if state in TERMINAL:
            await self._archive(new)
        if state is not None:
            await self._entered(new, old)
        return new

    async def _archive(self, doc: Document) -> None:
        """Move a terminal operation to `_done`: copy first (insert-once), then remove the live one (by `_id`
        alone: only `create` inserts here, and not while this document exists)."""
        with contextlib.suppress(DuplicateKeyError):
            await self._done.insert_one(doc)
        await self._col.delete_one({"_id": doc["_id"]})
        self._cache.pop(doc["_id"], None)

    async def _entered(self, doc: Document, old: OpState) -> None:
        op = Operation.of(doc)
        kind = self._cfg.kind
        if op.state is not old:
            TRANSITIONS.labels(kind, op.state.value).inc()
            fields = {"op": op.id, "from": old.value, "txid": op.current.txid}
            log.info("operation %s", op.state.value, extra={"fields": fields})
        if op.state is OpState.CONFIRMED:
            TO_CONFIRMED.labels(kind).observe((_now() - op.create_time).total_seconds())
        if op.receipt is not None and op.state in TERMINAL:
            source = op.current.energy_source
            ENERGY_USED.labels(kind, source).inc(op.receipt.energy_used)
            TRX_BURNED.labels(kind, source).inc(op.receipt.fee_sun)
        if self._on_transition is not None:
            try:
                await self._on_transition(op, old)
            except Exception:  # the transition is stored; the hook's own state must repair itself
                log.exception("transition hook failed", extra={"fields": {"op": op.id}})

    def _attempt(self, doc: Document) -> tuple[int, Attempt]:
        n = int(doc["attempt"])
        return n, Attempt.of(doc["attempts"][str(n)])

    async def _pending(self, doc: Document) -> float | None:
        n, att = self._attempt(doc)
        if not att.txid:
            try:
                built, grant = await self._prepare(Operation.of(doc), n)
            except Refused as r:
                await self._write(doc, {"failure_reason": f"{r.reason}: {r.message}"}, state=OpState.FAILED)
                return None
            changes = {
                **built.fields,
                **{f"attempts.{n}.{k}": v for k, v in self._attempt_fields(built, grant).items()},
            }
            new = await self._write(
                doc, changes, guard={f"attempts.{n}.txid": ""}, add_txid=built.transaction.txid
            )
            if new is None:
                return 0.0
            doc = new
        try:
            signatures = await self._signatures(doc)
        except _SignRefused as refused:
            reason = f"SIGNING_REFUSED {refused.error.reason}: {refused.error.message}"
            await self._write(doc, {"failure_reason": reason}, state=OpState.FAILED)
            return None
        changes = {f"attempts.{n}.{k}": v for k, v in _signature_fields(signatures).items()}
        await self._write(doc, changes, state=OpState.SIGNED)
        return 0.0  # broadcast at once (or read again: the write lost a race)

    async def _signatures(self, doc: Document) -> list[bytes]:
        """The wallet manager's signatures of the current attempt: the operation's wallet, or each of the
        attempt's signers in turn (each request carries the signatures before it, the answer appends its own).
        The request id names the attempt, its txID and the signer's place: a retry of the same transaction
        gets the first signatures back, a transaction built anew (the first attempt of a retried request) is
        a new request."""
        n, att = self._attempt(doc)
        signers = att.signers or (Signer(doc["wallet_id"], doc["signer_address"]),)
        signatures: list[bytes] = []
        for i, signer in enumerate(signers):
            req = wm.SignTransactionRequest(
                request_id=f"{doc['_id']}.{n}.{att.txid[:16]}" + (f".{i}" if i else ""),
                wallet_id=signer.wallet_id,
                address=signer.address,
                transaction=common_pb2.Transaction(
                    txid=att.txid, raw_data=att.raw, raw_data_hex=att.raw.hex(), signatures=signatures
                ),
                purpose=f"{self._cfg.kind} {doc['_id']} attempt {n}",
            )
            try:
                resp = await self._wallets.SignTransaction(req)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in TRANSIENT:
                    raise
                raise _SignRefused(exc) from None
            if resp.txid != att.txid or len(resp.signature) != 65:
                raise RuntimeError(f"the wallet manager signed {resp.txid}, not {att.txid}")
            signatures.append(bytes(resp.signature))
        return signatures

    async def _signed(self, doc: Document) -> float | None:
        _, att = self._attempt(doc)
        if (await self._heights()).head_time_ms >= att.expiration_ms:
            return await self._settle_expired(doc)  # too late to send
        return await self._send(doc)

    async def _send(self, doc: Document) -> float | None:
        """Broadcast the stored signed transaction (again); BROADCAST."""
        n, att = self._attempt(doc)
        signed = common_pb2.Transaction(
            txid=att.txid, raw_data=att.raw, raw_data_hex=att.raw.hex(), signatures=list(att.signatures)
        )
        # The count in the id: a retry after a crash replays tron-client's answer, a rebroadcast sends anew.
        req = tc.BroadcastTransactionRequest(
            request_id=f"{doc['_id']}.{n}.{att.broadcasts}", transaction=signed
        )
        try:
            await self._tron.BroadcastTransaction(req)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in TRANSIENT:
                raise
            if _reason(exc) == "TRANSACTION_EXPIRED":
                return await self._settle_expired(doc)
            # Refused by the node we reached; it may still sit in another node's pool, so it is kept, sent
            # again and only settled once provably expired.
            error = f"{_reason(exc) or exc.code().name}: {exc.details()}"
            await self._write(doc, {f"attempts.{n}.last_error": error})
            return self._cfg.rebroadcast_seconds
        now = _now()
        changes: dict[str, Any] = {
            f"attempts.{n}.broadcasts": att.broadcasts + 1,
            f"attempts.{n}.last_broadcast_time": now,
        }
        if att.first_broadcast_time is None:
            changes[f"attempts.{n}.first_broadcast_time"] = now
        again = doc["state"] == OpState.BROADCAST.value
        (REBROADCASTS if again else BROADCASTS).labels(self._cfg.kind).inc()
        new = await self._write(doc, changes, state=OpState.BROADCAST)
        return self._cfg.poll_seconds if new is not None else 0.0

    async def _broadcast(self, doc: Document) -> float | None:
        _, att = self._attempt(doc)
        info = await self._info(att.txid)
        if info is not None:
            return await self._seen(doc, info)
        if (await self._heights()).head_time_ms >= att.expiration_ms:
            return await self._settle_expired(doc)
        last = att.last_broadcast_time
        if last is None or (_now() - last).total_seconds() >= self._cfg.rebroadcast_seconds:
            return await self._send(doc)
        return self._cfg.poll_seconds

    async def _included(self, doc: Document) -> float | None:
        op_id = doc["_id"]
        height = await self._heights()
        checked = max(self._fork_checked.get(op_id, 0.0), self._block_seen.get(doc.get("block_id", ""), 0.0))
        if height.solid_number < int(doc["block_number"]) and (
            time.monotonic() - checked < self._cfg.fork_check_seconds
        ):
            return self._cfg.poll_seconds
        self._fork_checked[op_id] = time.monotonic()
        _, att = self._attempt(doc)
        info = await self._info(att.txid)
        if info is not None:
            return await self._seen(doc, info)
        # Its block left the chain: the same signed transaction goes out again at once.
        REORGED.labels(self._cfg.kind).inc()
        log.warning("included transaction left the chain", extra={"fields": {"op": op_id, "txid": att.txid}})
        new = await self._write(doc, {"block_number": 0, "block_id": ""}, state=OpState.BROADCAST)
        return await self._send(new) if new is not None else 0.0

    async def _seen(self, doc: Document, info: tc.TransactionInfo) -> float | None:
        """The current attempt is in a block: INCLUDED, or final with its receipt once solidified."""
        block = info.block
        changes: dict[str, Any] = {"block_number": block.number, "block_id": block.block_id}
        if not doc.get("include_time"):
            changes["include_time"] = now = _now()
            TO_INCLUDED.labels(self._cfg.kind).observe((now - doc["create_time"]).total_seconds())
        if info.solidified:
            result = tc.TransactionInfo.Result.Name(info.result).removeprefix("RESULT_")
            changes["receipt"] = {
                "result": result, "fee_sun": info.fee_sun, "energy_used": info.energy_usage_total,
                "energy_fee_sun": info.energy_fee_sun, "net_fee_sun": info.net_fee_sun,
                "message": info.failure_reason,
            }  # fmt: skip
            if info.result == tc.TransactionInfo.RESULT_SUCCESS:
                changes["confirm_time"] = _now()
                await self._write(doc, changes, state=OpState.CONFIRMED)
            else:
                changes["failure_reason"] = f"{result}: {info.failure_reason}".rstrip(": ")
                await self._write(doc, changes, state=OpState.FAILED)
            return None
        if doc["state"] == OpState.INCLUDED.value and doc.get("block_id") == block.block_id:
            return self._cfg.poll_seconds
        await self._write(doc, changes, state=OpState.INCLUDED)
        return self._cfg.poll_seconds

    async def _settle_expired(self, doc: Document) -> float | None:
        """Once the current attempt provably cannot be included any more: the next attempt, or EXPIRED."""
        n, att = self._attempt(doc)
        height = await self._heights(fresh=True)
        if height.solid_time_ms < att.expiration_ms:
            return self._cfg.poll_seconds  # a block up to its expiration may still come
        # Read after the solidified time: a block holding it would be at or below that block, i.e. final.
        info = await self._info(att.txid)
        if info is not None:
            return await self._seen(doc, info)
        if n >= self._cfg.max_attempts:
            why = f"not included: {n} attempt(s) expired in no block"
            if att.last_error:
                why += f" (last node error {att.last_error})"
            await self._write(
                doc, {f"attempts.{n}.expired": True, "failure_reason": why}, state=OpState.EXPIRED
            )
            return None
        new = await self._write(
            doc,
            {f"attempts.{n}.expired": True, "attempt": n + 1, f"attempts.{n + 1}": _new_attempt(n + 1)},
            state=OpState.PENDING,
        )
        if new is not None:
            REBUILDS.labels(self._cfg.kind).inc()
        return 0.0

    # ---- chain reads ------------------------------------------------------------------------------
    async def _info(self, txid: str) -> tc.TransactionInfo | None:
        asked = time.monotonic()
        try:
            resp = await self._tron.GetTransactionInfo(tc.GetTransactionInfoRequest(txid=txid))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        self._saw_block(resp.info.block.block_id, asked)
        return resp.info

    def _saw_block(self, block_id: str, at: float) -> None:
        """A transaction was in `block_id` when asked at `at`: the block was on the chain then, and so was
        every operation included in it (a block's content is fixed by its id). Old entries are dropped."""
        if not block_id:
            return
        if len(self._block_seen) >= 4096:
            stale = at - self._cfg.fork_check_seconds
            self._block_seen = {b: t for b, t in self._block_seen.items() if t >= stale}
        self._block_seen[block_id] = max(at, self._block_seen.get(block_id, 0.0))

    async def _heights(self, *, fresh: bool = False) -> _Height:
        """Head time and the solidified block (reused for half a poll interval unless `fresh`)."""
        cached = self._height
        if not fresh and cached is not None and time.monotonic() - cached[0] < self._cfg.poll_seconds / 2:
            return cached[1]
        resp = await self._tron.GetNetworkHeight(tc.GetNetworkHeightRequest())
        height = _Height(
            _ms(resp.head_block_time), resp.solidified_block_number, _ms(resp.solidified_block_time)
        )
        self._height = (time.monotonic(), height)
        return height
