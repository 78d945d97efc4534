"""Wallet lifecycle: create (per kind), read, list, update, soft delete, deposit-address derivation,
public keys and TronLink ownership challenges."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import coincurve
from pymongo.errors import DuplicateKeyError
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from services.common import context, errors
from services.common.errors import FieldViolation
from services.common.logging import get_logger
from services.common.pagination import Page
from services.common.tron.address import from_base58 as decode_tron_address
from services.common.tron.address import private_key_to_address
from services.wallet_manager import devices as dev
from services.wallet_manager import integrity
from services.wallet_manager.chain import MAX_BALANCE_ADDRESSES, Chain
from services.wallet_manager.convert import KIND_NAMES
from services.wallet_manager.keys import KeyVault, secret_id
from services.wallet_manager.settings import WalletManagerSettings
from services.wallet_manager.store import ACTIVE, Store, hd_key, now
from services.wallet_manager.tenancy import creating_tenant, in_scope, shown
from services.wallet_manager.vault import hd, tronlink
from services.wallet_manager.vault.errors import VaultError

log = get_logger("services.wallet_manager.wallets")

CHALLENGE_TTL_SECONDS = 300
UPDATABLE = ("display_name", "labels", "policy")
WATCHER_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


def new_wallet_id() -> str:
    """Time-ordered (list order = creation order), unguessable suffix."""
    return f"wal_{int(time.time() * 1000):012x}{secrets.token_hex(5)}"


def not_found(wallet_id: str) -> errors.NotFound:
    return errors.NotFound("wallet not found", reason="WALLET_NOT_FOUND", metadata={"wallet_id": wallet_id})


def _address_violations(field: str, values: Iterable[str]) -> list[FieldViolation]:
    out = []
    for i, v in enumerate(values):
        if v:
            try:
                decode_tron_address(v)
            except ValueError as exc:
                out.append(FieldViolation(field.format(i=i), str(exc), "INVALID_ADDRESS"))
    return out


ADDRESS_LISTS = (
    "allowed_destinations",
    "allowed_call_contracts",
    "allowed_spenders",
    "allowed_resource_receivers",
    "allowed_witnesses",
    "allowed_permission_keys",
    "allowed_multisig_accounts",
)


def policy_violations(p: pb.SigningPolicy, prefix: str) -> list[FieldViolation]:
    out = []
    for name in ADDRESS_LISTS:
        out += _address_violations(f"{prefix}.{name}[{{i}}]", getattr(p, name))
    for i, lim in enumerate(p.limits):
        f = f"{prefix}.limits[{i}]"
        if lim.asset == common_pb2.ASSET_TRC20 and not lim.token_address:
            out.append(FieldViolation(f + ".token_address", "required for ASSET_TRC20", "REQUIRED"))
        elif lim.asset != common_pb2.ASSET_TRC20 and lim.token_address:
            out.append(FieldViolation(f + ".token_address", "only for ASSET_TRC20", "NOT_ALLOWED"))
        out += _address_violations(f + ".token_address", [lim.token_address])
    return out


@dataclass
class NewAccount:
    """What a kind-specific create step yields for the wallet's primary address."""

    address: str
    public_key: bytes = b""
    xpub: str = ""
    account_index: int = 0
    derivation_path: str = ""
    private_key: bytes = field(default=b"", repr=False)  # an IMPORTED or HD key on its way to be sealed


class Wallets:
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
        self._operators = {s.strip() for s in settings.WALLET_OPERATORS.split(",") if s.strip()}

    # -- read ----------------------------------------------------------------------------------------

    async def get_doc(self, wallet_id: str, active: bool = False) -> dict[str, Any]:
        """The wallet, if it exists and the call may see it (another tenant's is NOT_FOUND, like none)."""
        w = await self._store.get_wallet(wallet_id)
        if w is None or (active and w["state"] != ACTIVE) or not in_scope(w):
            raise not_found(wallet_id)
        return w

    async def get(self, wallet_id: str) -> pb.Wallet:
        return shown(await self.get_doc(wallet_id))

    async def list_wallets(self, req: pb.ListWalletsRequest) -> pb.ListWalletsResponse:
        page = Page.of(req)
        docs = await self._store.list_wallets(
            tenant=context.tenant_scope(),
            owner_id=req.owner_id,
            kind=KIND_NAMES.get(req.kind, ""),
            label=req.label,
            show_deleted=req.show_deleted,
            after=str(page.after or ""),
            limit=page.fetch_limit,
        )
        wallets, token = page.finish(docs, key=lambda d: d["_id"])
        return pb.ListWalletsResponse(wallets=[shown(d) for d in wallets], next_page_token=token)

    # -- create --------------------------------------------------------------------------------------

    def _create_violations(self, req: pb.CreateWalletRequest, kind: str) -> list[FieldViolation]:
        w = req.wallet
        v: list[FieldViolation] = []

        def bad(field: str, text: str, reason: str = "NOT_ALLOWED") -> None:
            v.append(FieldViolation(field, text, reason))

        if req.private_key and kind != "IMPORTED":
            bad("private_key", "only for KIND_IMPORTED")
        if kind == "IMPORTED" and not req.private_key:
            bad("private_key", "required for KIND_IMPORTED", "REQUIRED")
        if req.HasField("tronlink_proof") and kind != "TRONLINK":
            bad("tronlink_proof", "only for KIND_TRONLINK")
        if kind == "TRONLINK":
            if not w.address:
                bad("wallet.address", "required for KIND_TRONLINK", "REQUIRED")
            if not req.HasField("tronlink_proof"):
                bad("tronlink_proof", "required for KIND_TRONLINK", "REQUIRED")
        if kind == "WATCH_ONLY" and not (w.address or w.xpub):
            bad("wallet.address", "an address or an xpub is required for KIND_WATCH_ONLY", "REQUIRED")
        if w.address and kind in ("HD", "LEDGER", "TREZOR"):
            bad("wallet.address", "output only for this kind")
        if w.xpub and kind != "WATCH_ONLY":
            bad("wallet.xpub", "input only for KIND_WATCH_ONLY")
        if req.account_index and kind not in (dev.LEDGER, dev.TREZOR):
            bad("account_index", "only for KIND_LEDGER and KIND_TREZOR")
        v += _address_violations("wallet.address", [w.address])
        v += policy_violations(w.policy, "wallet.policy")
        return v

    async def create(self, req: pb.CreateWalletRequest) -> pb.CreateWalletResponse:
        kind = KIND_NAMES[req.wallet.kind]
        found = self._create_violations(req, kind)
        if found:
            raise errors.InvalidArgument(
                "invalid request: " + "; ".join(f"{f.field}: {f.description}" for f in found[:5]), found
            )
        wallet_id = new_wallet_id()
        if kind == "HD":
            return pb.CreateWalletResponse(wallet=await self._create_hd(req.wallet, wallet_id))
        acct = await self._new_account(req, kind)
        doc = await self._insert(wallet_id, req.wallet, kind, acct)
        return pb.CreateWalletResponse(wallet=shown(doc))

    async def _new_account(self, req: pb.CreateWalletRequest, kind: str) -> NewAccount:
        w = req.wallet
        if kind == "IMPORTED":
            key = bytes.fromhex(req.private_key)
            try:
                address = private_key_to_address(key)
            except Exception:  # coincurve: zero or >= curve order; never echo the key
                raise errors.InvalidArgument(
                    "private_key is not a valid secp256k1 key",
                    [FieldViolation("private_key", "not a valid secp256k1 private key", "INVALID_KEY")],
                ) from None
            if w.address and w.address != address:
                raise errors.InvalidArgument(
                    "address does not match private_key",
                    [FieldViolation("wallet.address", "does not match the private key", "ADDRESS_MISMATCH")],
                )
            pub = coincurve.PrivateKey(key).public_key.format(compressed=True)
            return NewAccount(address, pub, private_key=key)
        if kind == "WATCH_ONLY":
            if not w.xpub:
                return NewAccount(w.address)
            try:
                acct = hd.WatchOnlyAccount(w.xpub)
            except VaultError as exc:
                raise errors.InvalidArgument(
                    str(exc), [FieldViolation("wallet.xpub", str(exc), "INVALID_XPUB")]
                ) from None
            address = acct.address(0)
            if w.address and w.address != address:
                raise errors.InvalidArgument(
                    "address is not index 0 of the xpub",
                    [FieldViolation("wallet.address", "is not the xpub's address 0", "ADDRESS_MISMATCH")],
                )
            return NewAccount(address, hd.compress_pubkey(acct.public_key(0)), xpub=w.xpub)
        if kind in (dev.LEDGER, dev.TREZOR):
            d = await self._devices.account(kind, req.account_index)
            return NewAccount(
                d.address, d.public_key, d.xpub, req.account_index, hd.tron_path(req.account_index, 0)
            )
        # TRONLINK
        await self._verify_tronlink(w.address, w.owner_id, req.tronlink_proof)
        return NewAccount(w.address)

    async def _create_hd(self, w: pb.Wallet, wallet_id: str) -> pb.Wallet:
        if await self._store.find_hd_wallet(creating_tenant(), w.owner_id) is not None:
            raise errors.AlreadyExists(
                "the owner has an HD wallet already",
                reason="HD_WALLET_EXISTS",
                metadata={"owner_id": w.owner_id},
            )
        account = await self._store.next_counter("hd_account")
        key, xpub = await self._keys.with_seed(
            lambda s: (hd.derive_key(s, account, 0), hd.account_xpub(s, account))
        )
        acct = NewAccount(
            key.address, hd.compress_pubkey(key.public_key), xpub, account, key.path, key.private_key
        )
        return shown(await self._insert(wallet_id, w, "HD", acct))

    async def _insert(self, wallet_id: str, w: pb.Wallet, kind: str, acct: NewAccount) -> dict[str, Any]:
        t = now()
        policy = w.policy.SerializeToString(deterministic=True)
        policy_tag = await self._keys.tag(*integrity.policy_parts(wallet_id, policy))  # before any claim
        try:
            await self._store.insert_address(
                {
                    "_id": secret_id(wallet_id, 0),
                    "wallet_id": wallet_id,
                    "index": 0,
                    "address": acct.address,
                    "address_key": acct.address,
                    "public_key": acct.public_key,
                    "derivation_path": acct.derivation_path,
                    "label": "",
                    "create_time": t,
                }
            )
        except DuplicateKeyError:
            raise errors.AlreadyExists(
                "the address belongs to a wallet already",
                reason="ADDRESS_IN_USE",
                metadata={"address": acct.address},
            ) from None
        doc = {
            "_id": wallet_id,
            "tenant": creating_tenant(),
            "owner_id": w.owner_id,
            "kind": kind,
            "state": ACTIVE,
            "display_name": w.display_name,
            "labels": list(w.labels),
            "policy": policy,
            integrity.POLICY_TAG: policy_tag,
            "address": acct.address,
            "xpub": acct.xpub,
            "account_index": acct.account_index,
            "derivation_path": acct.derivation_path,
            "address_count": 1,
            "hd_owner": hd_key(creating_tenant(), w.owner_id) if kind == "HD" else f"#{wallet_id}",
            "create_time": t,
            "update_time": t,
        }
        try:
            if acct.private_key:
                await self._keys.seal_key(secret_id(wallet_id, 0), wallet_id, acct.private_key)
            await self._store.insert_wallet(doc)
        except BaseException as exc:
            # No transactions on FerretDB: undo the claims this attempt made.
            await self._store.delete_addresses(wallet_id)
            await self._store.delete_secrets(wallet_id)
            if isinstance(exc, DuplicateKeyError):
                raise errors.AlreadyExists(
                    "the owner has an HD wallet already",
                    reason="HD_WALLET_EXISTS",
                    metadata={"owner_id": w.owner_id},
                ) from None
            raise
        await self._watch_best_effort(acct.address, wallet_id)
        return doc

    async def _watch_best_effort(self, address: str, label: str) -> None:
        # History comes from tron-client's watched addresses; a wallet is still usable while it is down.
        try:
            await self._chain.watch([address], label)
        except errors.DomainError as exc:
            log.warning(
                "address not registered on the watch list: %s",
                exc.message,
                extra={"fields": {"wallet": label}},
            )

    # -- TronLink ------------------------------------------------------------------------------------

    async def create_challenge(
        self, req: pb.CreateTronLinkChallengeRequest
    ) -> pb.CreateTronLinkChallengeResponse:
        found = _address_violations("address", [req.address])
        if found:  # the proto pattern admits a bad checksum
            raise errors.InvalidArgument("address is not a valid TRON address", found)
        call = context.current()
        subject = call.subject if call else ""
        owner = req.owner_id or subject
        if not owner:
            raise errors.InvalidArgument(
                "owner_id is required when no end user is authenticated",
                [FieldViolation("owner_id", "required without an authenticated subject", "REQUIRED")],
            )
        ch = tronlink.new_challenge(
            req.address,
            owner=owner,
            cluster=self._settings.CLUSTER_NAME,
            chain=f"tron-{self._settings.TRON_NETWORK.value}",
            ttl_seconds=CHALLENGE_TTL_SECONDS,
        )
        challenge_id = "tlc_" + secrets.token_hex(12)
        expires = datetime.fromtimestamp(ch.expires_at, UTC)
        await self._store.insert_challenge(
            {
                "_id": challenge_id,
                "address": ch.address,
                "owner_id": owner,
                "subject": subject,  # who asked for it; only they may use it
                "nonce": ch.nonce,
                "message": ch.message,
                "create_time": now(),
                "expire_time": expires,
                "used": False,
            }
        )
        resp = pb.CreateTronLinkChallengeResponse(challenge_id=challenge_id, message=ch.message)
        resp.expire_time.FromDatetime(expires)
        return resp

    async def _verify_tronlink(self, address: str, owner: str, proof: pb.TronLinkProof) -> None:
        def refuse(reason: str, text: str) -> errors.PermissionDenied:
            return errors.PermissionDenied(
                f"TronLink proof refused: {text}",
                reason=reason,
                metadata={"challenge_id": proof.challenge_id},
            )

        ch = await self._store.get_challenge(proof.challenge_id)
        at = now()
        if ch is None:
            raise refuse("CHALLENGE_NOT_FOUND", "unknown challenge")
        if ch["address"] != address:
            raise refuse("CHALLENGE_ADDRESS_MISMATCH", "the challenge was issued for another address")
        if ch["used"]:
            raise refuse("CHALLENGE_USED", "the challenge was used already")
        call = context.current()
        if ch.get("subject") and ch["subject"] != (call.subject if call else ""):
            raise refuse("CHALLENGE_OWNER_MISMATCH", "the challenge was issued to another user")
        # A challenge from before owners were bound has none, and is refused like another owner's.
        challenge = tronlink.Challenge(
            address, ch.get("owner_id", ""), ch["nonce"], ch["expire_time"].timestamp(), ch["message"]
        )
        result = tronlink.verify_proof(challenge, proof.signature, owner=owner, now=at.timestamp())
        if result.reason == tronlink.CHALLENGE_EXPIRED:
            raise refuse("CHALLENGE_EXPIRED", "the challenge has expired")
        if result.reason == tronlink.WRONG_OWNER:
            raise refuse("CHALLENGE_OWNER_MISMATCH", "the challenge was issued for another owner")
        if not result.ok:
            raise refuse("SIGNATURE_MISMATCH", "the signature was not made by the address's key")
        if not await self._store.consume_challenge(proof.challenge_id, at, call.request_id if call else ""):
            raise refuse("CHALLENGE_USED", "the challenge was used already")

    # -- update / delete -----------------------------------------------------------------------------

    async def update(self, req: pb.UpdateWalletRequest) -> pb.UpdateWalletResponse:
        paths = list(req.update_mask.paths) or list(UPDATABLE)
        bad = [p for p in paths if p not in UPDATABLE]
        if bad:
            raise errors.InvalidArgument(
                f"cannot update {', '.join(bad)}",
                [FieldViolation("update_mask", f"{p} cannot be updated", "NOT_UPDATABLE") for p in bad],
            )
        current = await self.get_doc(req.wallet_id, active=True)
        w = req.wallet
        found = []
        if w.owner_id and w.owner_id != current["owner_id"]:
            found.append(FieldViolation("wallet.owner_id", "immutable", "IMMUTABLE"))
        if w.kind and KIND_NAMES[w.kind] != current["kind"]:
            found.append(FieldViolation("wallet.kind", "immutable", "IMMUTABLE"))
        if "policy" in paths:
            found += policy_violations(w.policy, "wallet.policy")
        if found:
            raise errors.InvalidArgument("invalid update: " + "; ".join(f.field for f in found), found)
        fields: dict[str, Any] = {}
        if "display_name" in paths:
            fields["display_name"] = w.display_name
        if "labels" in paths:
            fields["labels"] = list(w.labels)
        if "policy" in paths:
            fields["policy"] = w.policy.SerializeToString(deterministic=True)
            fields[integrity.POLICY_TAG] = await self._keys.tag(
                *integrity.policy_parts(req.wallet_id, fields["policy"])
            )
        doc = await self._store.update_wallet(req.wallet_id, fields)
        if doc is None:
            raise not_found(req.wallet_id)
        return pb.UpdateWalletResponse(wallet=shown(doc))

    def _is_operator(self) -> bool:
        call = context.current()
        return bool(call and call.subject and call.subject in self._operators)

    async def delete(self, req: pb.DeleteWalletRequest) -> pb.DeleteWalletResponse:
        w = await self.get_doc(req.wallet_id)
        if w["state"] != ACTIVE:
            return pb.DeleteWalletResponse(wallet=shown(w))
        if req.force:
            if not self._is_operator():
                raise errors.PermissionDenied(
                    "only an operator may force-delete a wallet", reason="OPERATOR_REQUIRED"
                )
            log.warning("wallet force-deleted", extra={"fields": {"wallet_id": w["_id"]}})
        else:
            await self._refuse_if_funded(w)
        doc = await self._store.mark_deleted(w)
        if doc is None:  # deleted concurrently
            doc = await self.get_doc(req.wallet_id)
        return pb.DeleteWalletResponse(wallet=shown(doc))

    async def _refuse_if_funded(self, w: dict[str, Any]) -> None:
        """Every address of the wallet is checked, not only the first MAX_BALANCE_ADDRESSES a balance sums:
        funds on a later deposit address would otherwise be left behind in a deleted wallet."""
        addrs = [a["address"] for a in await self._store.wallet_addresses(w["_id"], 0)] or [w["address"]]
        for i in range(0, len(addrs), MAX_BALANCE_ADDRESSES):
            bal = await self._chain.balance(w["_id"], w["address"], addrs[i : i + MAX_BALANCE_ADDRESSES])
            if self._chain.holds_funds(bal):
                raise errors.FailedPrecondition(
                    "the wallet holds funds; an operator may delete it with force",
                    reason="WALLET_HOLDS_FUNDS",
                    metadata={"wallet_id": w["_id"], "trx_balance_sun": str(bal.trx_balance_sun)},
                )

    # -- balances and history ------------------------------------------------------------------------

    async def balance(self, wallet_id: str) -> pb.GetWalletBalanceResponse:
        w = await self.get_doc(wallet_id)
        addrs = [a["address"] for a in await self._store.wallet_addresses(wallet_id, MAX_BALANCE_ADDRESSES)]
        return await self._chain.balance(wallet_id, w["address"], addrs)

    async def transactions(self, req: pb.ListWalletTransactionsRequest) -> pb.ListWalletTransactionsResponse:
        page = Page.of(req)  # its position is tron-client's own page token for the same listing
        w = await self.get_doc(req.wallet_id)
        resp = await self._chain.transfers(
            w["address"], page.size, str(page.after or ""), req.asset, req.direction
        )
        if resp.next_page_token:
            resp.next_page_token = page.token_after(resp.next_page_token)
        return resp

    # -- deposit addresses and public keys -----------------------------------------------------------

    async def derive(self, req: pb.DeriveAddressRequest) -> pb.DeriveAddressResponse:
        if req.watcher and (not req.watcher[0].isalpha() or not set(req.watcher) <= WATCHER_CHARS):
            raise errors.InvalidArgument(
                "invalid watcher",
                [FieldViolation("watcher", "must match ^[a-z][a-z0-9_-]{0,63}$", "PATTERN")],
            )
        if req.WhichOneof("target") == "owner_id":
            w = await self._store.find_hd_wallet(creating_tenant(), req.owner_id)
            if w is None:
                with contextlib.suppress(errors.AlreadyExists):  # created concurrently
                    await self._create_hd(
                        pb.Wallet(owner_id=req.owner_id, display_name=req.owner_id), new_wallet_id()
                    )
                w = await self._store.find_hd_wallet(creating_tenant(), req.owner_id)
                if w is None:
                    raise errors.Aborted("the owner's HD wallet is being created", reason="CONCURRENT_CREATE")
        else:
            w = await self.get_doc(req.wallet_id, active=True)
        if not (w["kind"] == "HD" or w.get("xpub")):
            raise errors.FailedPrecondition(
                "this wallet cannot derive addresses (no seed or xpub)",
                reason="CANNOT_DERIVE",
                metadata={"wallet_id": w["_id"], "kind": w["kind"]},
            )
        index = await self._store.next_address_index(w["_id"])
        account = int(w["account_index"])
        private_key = b""
        if w["kind"] == "HD":
            key = await self._keys.with_seed(lambda s: hd.derive_key(s, account, index))
            address, pub, private_key = key.address, hd.compress_pubkey(key.public_key), key.private_key
        else:
            watch = hd.WatchOnlyAccount(w["xpub"])
            address, pub = watch.address(index), hd.compress_pubkey(watch.public_key(index))
        path = hd.tron_path(account, index) if (w["kind"] != "WATCH_ONLY") else f"xpub/0/{index}"
        t = now()
        if private_key:
            await self._keys.seal_key(secret_id(w["_id"], index), w["_id"], private_key)
        try:
            await self._store.insert_address(
                {
                    "_id": secret_id(w["_id"], index),
                    "wallet_id": w["_id"],
                    "index": index,
                    "address": address,
                    "address_key": address,
                    "public_key": pub,
                    "derivation_path": path,
                    "label": req.label,
                    "create_time": t,
                }
            )
        except DuplicateKeyError:
            raise errors.AlreadyExists(
                "the derived address belongs to another wallet",
                reason="ADDRESS_IN_USE",
                metadata={"address": address},
            ) from None
        await self._store.note_address_count(w["_id"], index + 1)
        await self._chain.watch([address], req.label or w["_id"], req.watcher)
        d = pb.DerivedAddress(
            address=address, wallet_id=w["_id"], index=index, derivation_path=path, label=req.label
        )
        d.create_time.FromDatetime(t)
        return pb.DeriveAddressResponse(derived_address=d)

    async def public_key(self, req: pb.GetPublicKeyRequest) -> pb.GetPublicKeyResponse:
        w = await self.get_doc(req.wallet_id)
        address = req.address or w["address"]
        a = await self._store.get_address(w["_id"], address)
        if a is None:
            raise errors.NotFound(
                "the address does not belong to this wallet",
                reason="ADDRESS_NOT_FOUND",
                metadata={"address": address},
            )
        return pb.GetPublicKeyResponse(
            address=address,
            public_key=bytes(a.get("public_key") or b""),
            xpub=w.get("xpub", ""),
            derivation_path=a.get("derivation_path", ""),
        )
