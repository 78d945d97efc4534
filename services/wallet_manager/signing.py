"""SignTransaction / SignMessage: the policy gate, daily limits, the signers and the append-only signing log.

Order of one transaction signature:
 1. the wallet (active), the caller (policy.allowed_callers) and the signing address (one of the wallet's);
 2. raw_data parsed by the vault; the txID is recomputed from those bytes (a caller's txid must match);
 3. the vault policy (vault/policy.py: owner, permission id, contract type, counterparties, memo, fee,
    assets and per-transaction limits, then expiration); with allow_contract_creation, a contract the
    transaction's owner deployed (its origin on chain, read through tron-client) counts as an allowed
    call; for a transaction of a multi-signature account the policy lists (allowed_multisig_accounts), the
    signing address must be a key of the transaction's permission on chain (read through tron-client); no
    signature the transaction carries may be this key's (the signature is appended to them);
 4. the daily limits, checked early against the day's running totals (saves a device prompt that could
    not be used);
 5. the signature: a software key decrypted for this call only, or the wallet's Ledger/Trezor;
 6. the signing-log record, inserted before the signature is returned. Its unique request_key makes the
    log the idempotency record as well: a retry with the same request_id gets the first signature. For
    daily-limited assets the record's link in the wallet's spend chain of the day (store.py) is stored
    first: the limits are decided for good when the link is claimed, so concurrent signatures can never
    pass them together; a signature that loses that race is discarded, never returned.

The wallet's policy and the day's spend links are used only once their integrity tags verify
(integrity.py): one edited in the database refuses the signature with INTEGRITY_CHECK_FAILED.

A stored answer is only ever returned after steps 1-3 passed for this request, and only to the caller
that made it: a refused request never gets a signature, not even one signed for an identical request
before. A retry refused only for time or the day's totals (STATE_REASONS) gets its first answer.
SignMessage follows the same steps with the policy's allow_sign_message instead of 2-4.

Refusal codes: a request the policy does not allow -> PERMISSION_DENIED; one that is allowed in principle
but not now (daily limit reached, expired transaction, device refused or missing) -> FAILED_PRECONDITION.
Log records are written in batches (group commit): concurrent signatures share one insert_many, each
still waiting for its own record to be stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from google.protobuf.message import Message
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from services.common import context, errors
from services.common.access import Peer
from services.common.idempotency import fingerprint
from services.wallet_manager import devices as dev
from services.wallet_manager import integrity
from services.wallet_manager.chain import Chain
from services.wallet_manager.convert import CONTRACT_ENUMS, INT64_MAX, asset_of, vault_policy
from services.wallet_manager.keys import KeyVault, secret_id
from services.wallet_manager.settings import WalletManagerSettings
from services.wallet_manager.store import ACTIVE, Store, now
from services.wallet_manager.tenancy import in_scope
from services.wallet_manager.vault import policy as vpolicy
from services.wallet_manager.vault.ecdsa import recover_address
from services.wallet_manager.vault.errors import MalformedTransaction, SignatureMismatch
from services.wallet_manager.vault.messages import hash_message_v2
from services.wallet_manager.vault.tron_tx import ParsedTransaction, parse_transaction

SOFTWARE_KINDS = ("HD", "IMPORTED")
DEVICE_KINDS = (dev.LEDGER, dev.TREZOR)
# Reasons that depend on time or state rather than on what the policy allows.
STATE_REASONS = vpolicy.STATE_REASONS


def record_id() -> str:
    """Time-ordered id: newest-first listing sorts by _id."""
    return f"sig_{time.time_ns():016x}{secrets.token_hex(4)}"


def day_key(wallet_id: str, at: datetime) -> str:
    """The wallet's spend chain of one UTC day."""
    return f"{wallet_id}:{at.strftime('%Y-%m-%d')}"


def _refusal(reason: str, detail: str, wallet_id: str) -> errors.DomainError:
    cls = errors.FailedPrecondition if reason in STATE_REASONS else errors.PermissionDenied
    return cls(f"signing refused: {detail}", reason=reason, metadata={"wallet_id": wallet_id})


@dataclass(frozen=True)
class SpendClaim:
    """What a record adds to its wallet's spend chain of the day (key wallet:day): per daily-limited asset
    ("TRX" or a token address) the amount (TRX with its worst-case fee) and the limit."""

    key: str
    amounts: Mapping[str, int]
    limits: Mapping[str, int]

    def over(self, totals: Mapping[str, int]) -> str | None:
        """The first asset whose day total would pass its limit with this claim, if any."""
        for asset, amount in self.amounts.items():
            if totals.get(asset, 0) + amount > self.limits[asset]:
                return asset
        return None


STORED, DUPLICATE, OVER_LIMIT = "stored", "duplicate", "over_limit"
M = TypeVar("M", bound=Message)
_Item = tuple[dict[str, Any], SpendClaim | None, "asyncio.Future[str]"]


def _wallet_of(spend_key: str) -> str:
    return spend_key.rsplit(":", 1)[0]


class LogWriter:
    """Group commit for the signing log: records waiting while an insert runs go in the next round, each
    caller still waiting for its own record. A round stores the spend links of limited records first (one
    ordered insert_many into daily_spend, numbered from the last link this process stored or read, each
    with its integrity tag), then the records whose link was stored or who need none (one insert_many into
    signing_log)."""

    BATCH = 500
    RETRIES = 100

    def __init__(self, store: Store, keys: KeyVault) -> None:
        self._store = store
        self._keys = keys
        self._pending: list[_Item] = []
        self._task: asyncio.Task[None] | None = None
        self._heads: dict[str, tuple[int, dict[str, int]]] = {}  # spend key -> (last seq, totals per asset)
        self._reading: dict[str, asyncio.Future[tuple[int, dict[str, int]]]] = {}

    async def spent(self, key: str) -> dict[str, int]:
        """The day's running totals for key as of the last link this process stored or read."""
        if key not in self._heads:
            if len(self._heads) > 100_000:
                self._heads.clear()
            # One read per key at a time: concurrent first signatures of a day share it.
            reading = self._reading.get(key)
            if reading is None:
                reading = asyncio.ensure_future(self._read_head(key))
                self._reading[key] = reading
                reading.add_done_callback(lambda _f: self._reading.pop(key, None))
            head = await asyncio.shield(reading)
            self._heads.setdefault(key, head)
        return self._heads[key][1]

    async def _read_head(self, key: str) -> tuple[int, dict[str, int]]:
        """(last seq, running totals per asset) of a chain, its tag checked; (0, {}) before its first link."""
        link = await self._store.spend_head(key)
        if link is None:
            return 0, {}
        await self.check_link(link)
        return int(link["seq"]), {a: int(n) for a, n in link["totals"].items()}

    async def check_link(self, link: dict[str, Any]) -> None:
        """Raise INTEGRITY_CHECK_FAILED unless the link's tag verifies."""
        if not await self._keys.tag_valid(link.get(integrity.LINK_TAG), *integrity.link_parts(link)):
            raise integrity.failed("the daily spend chain", _wallet_of(str(link["key"])))

    async def write(self, doc: dict[str, Any], spend: SpendClaim | None = None) -> str:
        """STORED once stored; DUPLICATE when the request_key exists already; OVER_LIMIT when the
        record's amounts would take a day total past its limit (nothing stored)."""
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((doc, spend, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.BATCH], self._pending[self.BATCH :]
            try:
                await self._commit(batch)
            except Exception as exc:  # every waiter sees the failure; nothing is reported as signed
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)

    async def _commit(self, batch: list[_Item]) -> None:
        pending = batch
        for _ in range(self.RETRIES):
            if not pending:
                return
            heads: dict[str, tuple[int, dict[str, int]]] = {}
            broken: dict[str, errors.DomainError] = {}
            for _doc, spend, _fut in pending:
                if spend is None or spend.key in heads or spend.key in broken:
                    continue
                try:
                    await self.spent(spend.key)
                except errors.FailedPrecondition as exc:  # a tampered chain fails only its own records
                    broken[spend.key] = exc
                    continue
                heads[spend.key] = self._heads[spend.key]
            links: list[dict[str, Any]] = []
            linked: list[_Item] = []
            free: list[_Item] = []
            t = now()
            for item in pending:
                doc, spend, fut = item
                if spend is None:
                    free.append(item)
                    continue
                if spend.key in broken:
                    fut.set_exception(broken[spend.key])
                    continue
                seq, totals = heads[spend.key]
                # Refusals stand even on a head this process cached: totals only grow (amounts are
                # >= 0), so a cached head is a lower bound of the stored one.
                if spend.over(totals) is not None:
                    fut.set_result(OVER_LIMIT)
                    continue
                seq = seq + 1
                totals = {**totals, **{a: totals.get(a, 0) + n for a, n in spend.amounts.items()}}
                heads[spend.key] = (seq, totals)
                link = {
                    "_id": "spend:" + doc["request_key"],  # a replayed request cannot count twice
                    "key": spend.key,
                    "seq": seq,
                    "amounts": dict(spend.amounts),
                    "totals": totals,
                    "record_id": doc["_id"],
                    "fingerprint": doc["fingerprint"],
                    "time": t,
                }
                link[integrity.LINK_TAG] = await self._keys.tag(*integrity.link_parts(link))
                links.append(link)
                linked.append(item)
            stored_links = await self._store.insert_spend_links(links) if links else 0
            ready = free + linked[:stored_links]
            if ready:
                docs = [d for d, _, _ in free]
                for (doc, _spend, _fut), link in zip(linked[:stored_links], links, strict=False):
                    docs.append(
                        {
                            **doc,
                            "spend_key": link["key"],
                            "spend_seq": link["seq"],
                            "spend_totals": link["totals"],
                        }
                    )
                results = await self._store.insert_log_records(docs)
                for (*_, fut), ok in zip(ready, results, strict=True):
                    fut.set_result(STORED if ok else DUPLICATE)
            if stored_links == len(links):
                self._heads.update(heads)
                return
            # The links stopped at a duplicate: this request's link exists (a replay) or another replica
            # took that sequence number. Re-read the heads and retry what is left.
            for key in heads:
                self._heads.pop(key, None)
            doc, spend, fut = linked[stored_links]
            existing = await self._store.get_spend_link("spend:" + doc["request_key"])
            if existing is not None:
                try:
                    fut.set_result(await self._adopt(doc, spend, existing))
                except errors.FailedPrecondition as exc:
                    fut.set_exception(exc)
            pending = [i for i in pending if not i[2].done()]
        raise errors.Aborted("the signing log is too contended; retry", reason="CONTENDED")

    async def _adopt(self, doc: dict[str, Any], spend: SpendClaim | None, link: dict[str, Any]) -> str:
        """This request's spend was counted already. Normally its record exists too (a replay); if an
        earlier attempt died between the link and the record, the same request stores its record now
        against that link instead of counting the spend twice."""
        if spend is None or link["fingerprint"] != doc["fingerprint"]:
            return DUPLICATE  # the replay path compares fingerprints and answers REQUEST_ID_REUSED
        await self.check_link(link)
        # Links stored before totals were kept per asset have none (a retry across the upgrade).
        totals = link.get("totals", {})
        record = {**doc, "spend_key": spend.key, "spend_seq": link["seq"], "spend_totals": totals}
        (ok,) = await self._store.insert_log_records([record])
        return STORED if ok else DUPLICATE


def _check_not_signed(wallet_id: str, tx: ParsedTransaction, address: str, signatures: list[bytes]) -> None:
    """The signatures a transaction already carries (other keys of a multi-signature account) must be valid
    signatures of its txID, none by this key: the chain refuses a key that signed twice."""
    for i, sig in enumerate(signatures):
        try:
            signer = recover_address(tx.txid, bytes(sig))
        except SignatureMismatch:
            raise errors.InvalidArgument(
                "a signature the transaction carries is not a signature of its txID",
                [errors.FieldViolation(f"transaction.signatures[{i}]", "not a signature of the txID")],
            ) from None
        if signer == address:
            raise _refusal(
                vpolicy.ALREADY_SIGNED, "the transaction already carries this key's signature", wallet_id
            )


class Signing:
    def __init__(
        self,
        settings: WalletManagerSettings,
        store: Store,
        keys: KeyVault,
        devices: dev.Devices,
        chain: Chain,
    ) -> None:
        self._settings = settings
        self._store = store
        self._keys = keys
        self._devices = devices
        self._chain = chain
        self._log = LogWriter(store, keys)
        self._usdt = settings.USDT_CONTRACT_ADDRESS
        self._tokens = settings.wallet_tokens

    # -- shared steps ------------------------------------------------------------------------------------

    async def _wallet(self, wallet_id: str) -> dict[str, Any]:
        w = await self._store.signing_wallet(wallet_id)
        if w is None or w["state"] != ACTIVE or not in_scope(w):  # a service acting for another tenant
            raise errors.NotFound(
                "wallet not found", reason="WALLET_NOT_FOUND", metadata={"wallet_id": wallet_id}
            )
        return w

    async def _check_policy_tag(self, w: Mapping[str, Any]) -> None:
        parts = integrity.policy_parts(w["_id"], w.get("policy") or b"")
        if not await self._keys.tag_valid(w.get(integrity.POLICY_TAG), *parts):
            raise integrity.failed("the wallet's signing policy", w["_id"])

    def _check_signer_kind(self, w: Mapping[str, Any]) -> None:
        if w["kind"] == "WATCH_ONLY":
            raise _refusal(vpolicy.WATCH_ONLY, "watch-only wallets cannot sign", w["_id"])
        if w["kind"] == "TRONLINK":
            raise _refusal(
                "EXTERNAL_SIGNER", "TronLink wallets sign in the user's wallet, never here", w["_id"]
            )

    def _check_caller(self, w: Mapping[str, Any], policy_bytes: bytes) -> None:
        call = context.current()
        caller = call.caller if call else ""
        allowed = pb.SigningPolicy.FromString(policy_bytes).allowed_callers if policy_bytes else []
        if allowed and caller not in allowed:
            raise _refusal("CALLER_NOT_ALLOWED", "this caller may not use the wallet", w["_id"])
        # An empty list allows the cluster's services; the operator's tools (the deploy command) sign only
        # with a wallet whose policy names them.
        if caller == Peer.OPERATOR and caller not in allowed:
            raise _refusal("CALLER_NOT_ALLOWED", "the operator tools may not use this wallet", w["_id"])

    async def _signer(self, w: Mapping[str, Any], address: str) -> tuple[str, int]:
        if not address or address == w["address"]:
            return w["address"], 0
        doc = await self._store.get_address(w["_id"], address)
        if doc is None:
            raise _refusal("ADDRESS_NOT_IN_WALLET", "the address does not belong to this wallet", w["_id"])
        return address, int(doc["index"])

    async def _replay(self, request_key: str, fp: str, response_type: type[Message]) -> Any:
        """The stored answer of this request_id; call only once the policy allowed this request. Bound to
        the caller: request_ids are global, and another caller's signature is never handed out."""
        doc = await self._store.find_log_record(request_key)
        if doc is None:
            raise errors.Aborted("the request is being retried concurrently", reason="REQUEST_IN_PROGRESS")
        call = context.current()
        if doc["fingerprint"] != fp or doc.get("caller", "") != (call.caller if call else ""):
            raise errors.FailedPrecondition(
                "request_id was already used by another caller or for a different request",
                reason="REQUEST_ID_REUSED",
            )
        return response_type.FromString(doc["response"])

    def _record(
        self, kind: str, request_key: str, fp: str, req: Any, w: Mapping[str, Any], signer: str
    ) -> dict:
        call = context.current()
        return {
            "_id": record_id(),
            "request_key": request_key,
            "fingerprint": fp,
            "kind": kind,
            "wallet_id": w["_id"],
            "signer_address": signer,
            "caller": call.caller if call else "",
            "subject": call.subject if call else "",
            "request_id": req.request_id,
            "purpose": req.purpose,
            "sign_time": now(),
        }

    # -- transactions ------------------------------------------------------------------------------------

    async def _answered_or(
        self, exc: errors.DomainError, request_key: str, fp: str, response_type: type[M]
    ) -> M:
        """A refusal, unless it is one for time or the day's totals (the policy allowed the request itself)
        and this request_id was answered before: then the first answer, as promised."""
        if exc.reason not in STATE_REASONS or await self._store.find_log_record(request_key) is None:
            raise exc
        return await self._replay(request_key, fp, response_type)

    async def sign_transaction(self, req: pb.SignTransactionRequest) -> pb.SignTransactionResponse:
        request_key = f"SignTransaction:{req.request_id}"
        fp = fingerprint(req)
        try:
            return await self._sign_transaction(req, request_key, fp)
        except errors.FailedPrecondition as exc:
            return await self._answered_or(exc, request_key, fp, pb.SignTransactionResponse)

    async def _sign_transaction(
        self, req: pb.SignTransactionRequest, request_key: str, fp: str
    ) -> pb.SignTransactionResponse:
        w = await self._wallet(req.wallet_id)
        self._check_signer_kind(w)
        await self._check_policy_tag(w)
        policy_bytes: bytes = w.get("policy") or b""
        self._check_caller(w, policy_bytes)
        raw = bytes(req.transaction.raw_data)
        try:
            tx = parse_transaction(raw)
        except MalformedTransaction as exc:
            raise errors.InvalidArgument(
                f"raw_data is not a signable transaction: {exc}",
                [errors.FieldViolation("transaction.raw_data", str(exc), "MALFORMED_TRANSACTION")],
            ) from None
        if req.transaction.txid and req.transaction.txid != tx.txid_hex:
            raise errors.InvalidArgument(
                "txid does not match raw_data",
                [errors.FieldViolation("transaction.txid", "not sha256(raw_data)", "TXID_MISMATCH")],
            )
        address, index = await self._signer(w, req.address)
        pol = vault_policy(policy_bytes, self._usdt, self._tokens)
        decision = vpolicy.check(tx, policy=pol, wallet_address=address)
        called = tx.contract_address
        if (
            decision.reason == vpolicy.CALL_NOT_ALLOWED
            and called
            and await self._deployed_by_owner(tx, called, pol)
        ):
            pol = dataclasses.replace(pol, allowed_call_contracts=pol.allowed_call_contracts | {called})
            decision = vpolicy.check(tx, policy=pol, wallet_address=address)
        if not decision:
            raise _refusal(decision.reason or "POLICY", decision.detail, w["_id"])
        if tx.owner != address:  # a multi-signature account the policy lists
            await self._check_permission_key(w["_id"], tx, address)
        _check_not_signed(w["_id"], tx, address, list(req.transaction.signatures))
        device = w["kind"] in DEVICE_KINDS
        # never ask the user twice for a retried request
        if device and await self._store.find_log_record(request_key) is not None:
            return await self._replay(request_key, fp, pb.SignTransactionResponse)

        claim = self._spend_claim(w["_id"], tx, pol)
        # Early refusal (no device prompt for a signature that could not be used). Totals only grow, so
        # the last head seen is a lower bound: a refusal on it is right; an accept is decided at insert.
        counted: dict[str, Any] | None = None
        over = claim.over(await self._log.spent(claim.key)) if claim is not None else None
        if over is not None:
            # Unless the totals include this very request: an attempt that died after claiming its link.
            counted = await self._store.get_spend_link("spend:" + request_key)
            if counted is None or counted["fingerprint"] != fp:
                raise self._over_limit(over, w["_id"])
            await self._log.check_link(counted)

        if device:
            sig = await self._devices.sign_transaction(
                w["kind"], int(w["account_index"]), index, raw, address
            )
            sig = sig[:64] + bytes([sig[64] - 27 if sig[64] >= 27 else sig[64]])
        else:
            sig = await self._keys.sign_digest(secret_id(w["_id"], index), tx.txid, address)
        resp = self._tx_response(req, tx, sig, address)
        record = self._tx_record(request_key, fp, req, w, address, tx, pol, resp)
        if counted is not None and claim is not None:  # store the record against the link it already has
            totals = counted.get("totals", {})  # none on a link stored before the upgrade
            record.update(spend_key=claim.key, spend_seq=counted["seq"], spend_totals=totals)
            claim = None
        result = await self._log.write(record, claim)
        if result == DUPLICATE:
            return await self._replay(request_key, fp, pb.SignTransactionResponse)
        if result == OVER_LIMIT:  # lost the race for the day's remaining allowance: the signature is dropped
            raise self._over_limit(None, w["_id"])
        return resp

    async def _deployed_by_owner(
        self, tx: ParsedTransaction, contract: str, pol: vpolicy.WalletPolicy
    ) -> bool:
        """A wallet that may deploy contracts may call those its account deployed (their origin on chain)."""
        return pol.allow_contract_creation and await self._chain.contract_origin(contract) == tx.owner

    async def _check_permission_key(self, wallet_id: str, tx: ParsedTransaction, address: str) -> None:
        """The signing address must be a key of the transaction's permission of its owner, on chain now."""
        keys = await self._chain.permission_keys(tx.owner, tx.permission_id)
        if not keys or keys.get(address, 0) <= 0:
            raise _refusal(
                vpolicy.NOT_A_PERMISSION_KEY,
                f"the wallet's address is no key of permission {tx.permission_id} of the owner on chain",
                wallet_id,
            )

    def _spend_claim(
        self, wallet_id: str, tx: ParsedTransaction, pol: vpolicy.WalletPolicy
    ) -> SpendClaim | None:
        """The daily-limited part of what the transaction can cost (TRX with its worst-case fee)."""
        costs = vpolicy.costs(tx, pol)
        limits = {a: lim.daily for a, lim in pol.limits.items() if a in costs and lim.daily is not None}
        if not limits:
            return None
        return SpendClaim(day_key(wallet_id, now()), {a: costs[a] for a in limits}, limits)

    @staticmethod
    def _over_limit(asset: str | None, wallet_id: str) -> errors.DomainError:
        what = f"{asset} amount" if asset else "the amount"
        return _refusal(vpolicy.OVER_DAILY_LIMIT, f"{what} would exceed the daily limit", wallet_id)

    def _tx_response(
        self, req: pb.SignTransactionRequest, tx: ParsedTransaction, sig: bytes, address: str
    ) -> pb.SignTransactionResponse:
        signed = pb.SignTransactionResponse(txid=tx.txid_hex, signature=sig, signer_address=address)
        t = signed.signed_transaction
        t.CopyFrom(req.transaction)
        t.txid = tx.txid_hex
        t.signatures.append(sig)
        t.owner_address = tx.owner
        t.contract_type = CONTRACT_ENUMS.get(tx.contract_type_name, 0)  # type: ignore[assignment]
        t.fee_limit_sun = tx.fee_limit
        t.permission_id = tx.permission_id
        if tx.expiration:
            t.expiration_time.FromMilliseconds(tx.expiration)
        return signed

    def _tx_record(
        self,
        request_key: str,
        fp: str,
        req: pb.SignTransactionRequest,
        w: Mapping[str, Any],
        address: str,
        tx: ParsedTransaction,
        pol: vpolicy.WalletPolicy,
        resp: pb.SignTransactionResponse,
    ) -> dict[str, Any]:
        # What the transaction moves (the token first); fees are not an amount moved.
        moved, amount = next(iter(vpolicy.spends(tx, pol).items()), (None, 0))
        asset, token = asset_of(moved, self._usdt)
        # An arbitrary call goes to the contract, whatever its data looks like.
        call = tx.contract_type_name == "TriggerSmartContract" and not vpolicy.is_token_call(tx, pol)
        return {
            **self._record("KIND_TRANSACTION", request_key, fp, req, w, address),
            "txid": tx.txid_hex,
            "contract_type": CONTRACT_ENUMS.get(tx.contract_type_name, 0),
            "contract_name": tx.contract_type_name,
            "permission_id": tx.permission_id,
            "asset": asset,
            "token_address": token,
            "to_address": (tx.contract_address if call else tx.destination) or "",
            # uint256 token amounts do not fit BSON int64; the exact value is kept as text.
            "amount": amount if amount <= INT64_MAX else str(amount),
            "response": resp.SerializeToString(),
        }

    # -- personal messages -------------------------------------------------------------------------------

    async def sign_message(self, req: pb.SignMessageRequest) -> pb.SignMessageResponse:
        # No state refusals here: nothing falls back to a stored answer.
        return await self._sign_message(req, f"SignMessage:{req.request_id}", fingerprint(req))

    async def _sign_message(
        self, req: pb.SignMessageRequest, request_key: str, fp: str
    ) -> pb.SignMessageResponse:
        w = await self._wallet(req.wallet_id)
        self._check_signer_kind(w)
        await self._check_policy_tag(w)
        policy_bytes: bytes = w.get("policy") or b""
        self._check_caller(w, policy_bytes)
        address, index = await self._signer(w, req.address)
        if not vault_policy(policy_bytes, self._usdt, self._tokens).allow_sign_message:
            raise _refusal(vpolicy.MESSAGE_NOT_ALLOWED, "the policy does not allow messages", w["_id"])
        msg = bytes(req.message)
        if w["kind"] in DEVICE_KINDS:
            if await self._store.find_log_record(request_key) is not None:
                return await self._replay(request_key, fp, pb.SignMessageResponse)
            sig = await self._devices.sign_message(w["kind"], int(w["account_index"]), index, msg, address)
        else:
            sig = await self._keys.sign_digest(secret_id(w["_id"], index), hash_message_v2(msg), address)
        # TronWeb signMessageV2 / TronLink produce v = 27/28; so do we, whatever the signer returned.
        sig = sig[:64] + bytes([sig[64] + 27 if sig[64] < 27 else sig[64]])
        resp = pb.SignMessageResponse(signature=sig, signer_address=address)
        doc = {
            **self._record("KIND_MESSAGE", request_key, fp, req, w, address),
            "message_sha256": hashlib.sha256(msg).hexdigest(),
            "response": resp.SerializeToString(),
        }
        if await self._log.write(doc) == DUPLICATE:
            return await self._replay(request_key, fp, pb.SignMessageResponse)
        return resp
