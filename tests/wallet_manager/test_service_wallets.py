"""wallet-manager as a real process (gRPC, FerretDB): wallet kinds, idempotent creates, listing, updates,
signing with policy refusals and daily limits, the signing log, personal messages, TronLink proofs,
watch-only wallets."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from bip_utils import Bip32Secp256k1
from pymongo.database import Database
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from services.common.tron.address import private_key_to_address
from services.wallet_manager import integrity
from services.wallet_manager.vault import hd
from services.wallet_manager.vault.ecdsa import recover_address
from services.wallet_manager.vault.messages import hash_message_v2, sign_message_v2, verify_message_v2
from tests.harness.ferretdb import FerretDB
from tests.wallet_manager import txs
from tests.wallet_manager.service_support import (
    KIND,
    Client,
    db_of,
    error_reason,
    policy,
    rid,
    service_tag,
    started,
    trx_cost,
)

KEY_A = bytes.fromhex("1f" * 31 + "01")
KEY_B = bytes.fromhex("2e" * 31 + "02")
ADDR_A = private_key_to_address(KEY_A)
ADDR_B = private_key_to_address(KEY_B)
TRX = 1_000_000


@pytest.fixture(scope="module")
def svc(
    ferretdb: FerretDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Client, Database[Any]]]:
    with started(ferretdb, tmp_path_factory.mktemp("wm")) as cluster:
        client = Client(cluster["wallet_manager"].target)
        try:
            yield client, db_of(ferretdb, cluster)
        finally:
            client.close()


@pytest.fixture
def wm(svc: tuple[Client, Database[Any]]) -> Client:
    return svc[0]


def create(
    wm: Client,
    kind: pb.Wallet.Kind.ValueType,
    owner: str = "acme",
    request_id: str = "",
    subject: str = "",
    **kw: Any,
) -> pb.Wallet:
    wallet_fields = {k: kw.pop(k) for k in ("address", "xpub", "policy", "labels", "display_name") if k in kw}
    req = pb.CreateWalletRequest(
        request_id=request_id or rid(), wallet=pb.Wallet(owner_id=owner, kind=kind, **wallet_fields), **kw
    )
    return wm.call("CreateWallet", req, subject=subject).wallet


def imported(wm: Client, key: bytes, owner: str = "acme", **kw: Any) -> pb.Wallet:
    return create(wm, KIND.KIND_IMPORTED, owner, private_key=key.hex(), **kw)


def sign(wm: Client, wallet: pb.Wallet, raw: bytes, caller: str = "usdt-manager", **kw: Any) -> Any:
    req = pb.SignTransactionRequest(
        request_id=kw.pop("request_id", rid()),
        wallet_id=wallet.wallet_id,
        transaction=common_pb2.Transaction(raw_data=raw, txid=kw.pop("txid", "")),
        **kw,
    )
    return wm.call("SignTransaction", req, caller=caller)


def refused(fn: Any, code: grpc.StatusCode, reason: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        fn()
    assert err.value.code() == code, err.value.details()
    assert error_reason(err.value) == reason, err.value.details()


# -- wallets -------------------------------------------------------------------------------------------


def test_hd_wallet_one_account_per_owner_and_idempotent_create(wm: Client) -> None:
    key = rid()
    w = create(wm, KIND.KIND_HD, "hd-owner-1", request_id=key, display_name="ops")
    assert w.wallet_id and w.state == pb.Wallet.STATE_ACTIVE and w.address_count == 1
    assert w.derivation_path == f"m/44'/195'/{w.account_index}'/0/0"
    # The account xpub derives the primary address (m/.../0/0) by public derivation.
    assert hd.WatchOnlyAccount(w.xpub).address(0) == w.address
    again = create(wm, KIND.KIND_HD, "hd-owner-1", request_id=key, display_name="ops")
    assert again == w  # same request_id: the first result
    refused(
        lambda: create(wm, KIND.KIND_HD, "hd-owner-1", request_id=key, display_name="other"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "REQUEST_ID_REUSED",
    )
    refused(
        lambda: create(wm, KIND.KIND_HD, "hd-owner-1"), grpc.StatusCode.ALREADY_EXISTS, "HD_WALLET_EXISTS"
    )
    other = create(wm, KIND.KIND_HD, "hd-owner-2")
    assert other.account_index != w.account_index and other.address != w.address


def test_imported_wallet_and_address_uniqueness(wm: Client) -> None:
    key = bytes.fromhex("3c" * 32)
    w = imported(wm, key, "imp-owner")
    assert w.address == private_key_to_address(key) and not w.xpub
    refused(lambda: imported(wm, key, "someone-else"), grpc.StatusCode.ALREADY_EXISTS, "ADDRESS_IN_USE")
    refused(
        lambda: create(wm, KIND.KIND_WATCH_ONLY, "x", address=w.address),
        grpc.StatusCode.ALREADY_EXISTS,
        "ADDRESS_IN_USE",
    )


@pytest.mark.parametrize(
    ("kind", "kw", "field"),
    [
        (KIND.KIND_IMPORTED, {}, "private_key"),
        (KIND.KIND_HD, {"private_key": "11" * 32}, "private_key"),
        (KIND.KIND_WATCH_ONLY, {}, "wallet.address"),
        (KIND.KIND_TRONLINK, {"address": ADDR_A}, "tronlink_proof"),
        (KIND.KIND_WATCH_ONLY, {"xpub": "xpub-not-really"}, "wallet.xpub"),
        (KIND.KIND_IMPORTED, {"private_key": "00" * 32}, "private_key"),
        (KIND.KIND_WATCH_ONLY, {"address": "T" + "1" * 33}, "wallet.address"),
    ],
)
def test_create_rejects_bad_input_with_field_violations(
    wm: Client, kind: pb.Wallet.Kind.ValueType, kw: dict[str, Any], field: str
) -> None:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    with pytest.raises(grpc.RpcError) as err:
        create(wm, kind, "bad-input", **kw)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    if "private_key" in kw:  # a rejected key is never echoed
        assert kw["private_key"] not in (err.value.details() or "")
    status = rpc_status.from_call(err.value)
    fields = []
    for d in status.details:
        if d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            d.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    assert field in fields, fields


def test_list_filters_and_pagination(wm: Client) -> None:
    owner = "list-" + rid()[-8:]
    made = [
        imported(
            wm, bytes([7, i + 1]) + owner.encode()[:30].ljust(30, b"x"), owner, labels=["l" + str(i % 2)]
        )
        for i in range(5)
    ]
    made.append(create(wm, KIND.KIND_WATCH_ONLY, owner, address=txs.DEST))
    seen: list[str] = []
    token = ""
    for _ in range(10):
        page = wm.call("ListWallets", pb.ListWalletsRequest(owner_id=owner, page_size=2, page_token=token))
        assert len(page.wallets) <= 2
        seen += [w.wallet_id for w in page.wallets]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(w.wallet_id for w in made)  # creation order, each once
    by_kind = wm.call("ListWallets", pb.ListWalletsRequest(owner_id=owner, kind=KIND.KIND_WATCH_ONLY)).wallets
    assert [w.address for w in by_kind] == [txs.DEST]
    by_label = wm.call("ListWallets", pb.ListWalletsRequest(owner_id=owner, label="l1")).wallets
    assert sorted(w.wallet_id for w in by_label) == sorted(made[i].wallet_id for i in (1, 3))
    refused(
        lambda: wm.call("ListWallets", pb.ListWalletsRequest(page_token="%%%")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )
    # A token is bound to the filters it was issued with (AIP-158); the page size may change.
    first = wm.call("ListWallets", pb.ListWalletsRequest(owner_id=owner, page_size=2))
    refused(
        lambda: wm.call(
            "ListWallets", pb.ListWalletsRequest(owner_id=owner, label="l1", page_token=first.next_page_token)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )
    second = wm.call(
        "ListWallets", pb.ListWalletsRequest(owner_id=owner, page_size=3, page_token=first.next_page_token)
    )
    assert [w.wallet_id for w in second.wallets] == seen[2:5]


def test_update_name_labels_policy_and_immutable_fields(wm: Client) -> None:
    w = imported(wm, bytes.fromhex("4d" * 32), "upd", display_name="before")
    new_policy = policy(trx_per_tx=5 * TRX)
    upd = pb.UpdateWalletRequest(
        request_id=rid(),
        wallet_id=w.wallet_id,
        wallet=pb.Wallet(display_name="after", labels=["hot"], policy=new_policy),
    )
    out = wm.call("UpdateWallet", upd).wallet
    assert (out.display_name, list(out.labels), out.policy) == ("after", ["hot"], new_policy)
    masked = pb.UpdateWalletRequest(
        request_id=rid(), wallet_id=w.wallet_id, wallet=pb.Wallet(display_name="only-name")
    )
    masked.update_mask.paths.append("display_name")
    out = wm.call("UpdateWallet", masked).wallet
    assert out.display_name == "only-name" and out.policy == new_policy and list(out.labels) == ["hot"]
    bad_mask = pb.UpdateWalletRequest(
        request_id=rid(), wallet_id=w.wallet_id, wallet=pb.Wallet(address=ADDR_A)
    )
    bad_mask.update_mask.paths.append("address")
    refused(lambda: wm.call("UpdateWallet", bad_mask), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    owner_change = pb.UpdateWalletRequest(
        request_id=rid(), wallet_id=w.wallet_id, wallet=pb.Wallet(owner_id="thief")
    )
    refused(
        lambda: wm.call("UpdateWallet", owner_change), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"
    )
    refused(
        lambda: wm.call("GetWallet", pb.GetWalletRequest(wallet_id="wal_nope")),
        grpc.StatusCode.NOT_FOUND,
        "WALLET_NOT_FOUND",
    )


def test_force_delete_needs_an_operator(wm: Client) -> None:
    w = imported(wm, bytes.fromhex("5e" * 32), "del")
    req = pb.DeleteWalletRequest(request_id=rid(), wallet_id=w.wallet_id, force=True)
    refused(
        lambda: wm.call("DeleteWallet", req, subject="mallory"),
        grpc.StatusCode.PERMISSION_DENIED,
        "OPERATOR_REQUIRED",
    )
    out = wm.call(
        "DeleteWallet",
        pb.DeleteWalletRequest(request_id=rid(), wallet_id=w.wallet_id, force=True),
        subject="ops-alice",
    )
    assert out.wallet.state == pb.Wallet.STATE_DELETED and out.wallet.HasField("delete_time")
    listed = wm.call("ListWallets", pb.ListWalletsRequest(owner_id="del")).wallets
    assert w.wallet_id not in [x.wallet_id for x in listed]
    refused(
        lambda: sign(wm, w, txs.transfer(w.address, txs.DEST, 1)),
        grpc.StatusCode.NOT_FOUND,
        "WALLET_NOT_FOUND",
    )
    # The address is free again for a new wallet.
    assert imported(wm, bytes.fromhex("5e" * 32), "del").wallet_id != w.wallet_id


# -- signing -------------------------------------------------------------------------------------------


def test_signature_recovers_to_the_wallet_and_is_logged_once(svc: tuple[Client, Database[Any]]) -> None:
    wm, db = svc
    w = imported(wm, KEY_A, "signer", policy=policy(trx_per_tx=10 * TRX))
    raw = txs.transfer(ADDR_A, txs.DEST, 2 * TRX)
    txid = hashlib.sha256(raw).hexdigest()
    key = rid()
    resp = sign(wm, w, raw, request_id=key, txid=txid, purpose="payout po_1")
    assert resp.txid == txid and resp.signer_address == ADDR_A and len(resp.signature) == 65
    assert recover_address(bytes.fromhex(txid), resp.signature) == ADDR_A
    assert list(resp.signed_transaction.signatures) == [resp.signature]
    assert resp.signed_transaction.owner_address == ADDR_A
    assert resp.signed_transaction.contract_type == common_pb2.CONTRACT_TYPE_TRANSFER
    again = sign(wm, w, raw, request_id=key, txid=txid, purpose="payout po_1")
    assert again == resp
    records = wm.call("ListSignatures", pb.ListSignaturesRequest(wallet_id=w.wallet_id)).records
    assert len(records) == 1
    r = records[0]
    assert (r.caller, r.purpose, r.txid, r.amount, r.to_address) == (
        "usdt-manager",
        "payout po_1",
        txid,
        2 * TRX,
        txs.DEST,
    )
    assert (r.contract_type, r.asset, r.kind) == (
        common_pb2.CONTRACT_TYPE_TRANSFER,
        common_pb2.ASSET_TRX,
        pb.SigningRecord.KIND_TRANSACTION,
    )
    assert db["wallet_manager_signing_log"].count_documents({"wallet_id": w.wallet_id}) == 1


def test_bad_raw_data_and_txid_mismatch_are_invalid_argument(wm: Client) -> None:
    w = imported(wm, bytes.fromhex("6a" * 32), "badtx", policy=policy())
    refused(lambda: sign(wm, w, b"\x01\x02\x03"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    raw = txs.transfer(w.address, txs.DEST, 1)
    refused(lambda: sign(wm, w, raw, txid="00" * 32), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


def test_policy_refusals_carry_reasons(wm: Client) -> None:
    w = imported(
        wm,
        KEY_B,
        "policy",
        policy=policy(
            [common_pb2.CONTRACT_TYPE_TRANSFER],
            trx_per_tx=3 * TRX,
            destinations=[txs.DEST],
            callers=["payout-router"],
        ),
    )
    pd, fp = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION
    ok = txs.transfer(ADDR_B, txs.DEST, TRX)
    assert sign(wm, w, ok, caller="payout-router").signer_address == ADDR_B
    refused(lambda: sign(wm, w, ok, caller="usdt-manager"), pd, "CALLER_NOT_ALLOWED")
    refused(
        lambda: sign(wm, w, txs.transfer(ADDR_A, txs.DEST, TRX), caller="payout-router"), pd, "WRONG_OWNER"
    )
    usdt = txs.trc20_transfer(ADDR_B, txs.USDT, txs.DEST, 5)
    refused(lambda: sign(wm, w, usdt, caller="payout-router"), pd, "CONTRACT_NOT_ALLOWED")
    refused(
        lambda: sign(wm, w, txs.transfer(ADDR_B, ADDR_A, TRX), caller="payout-router"),
        pd,
        "DESTINATION_NOT_ALLOWED",
    )
    refused(
        lambda: sign(wm, w, txs.transfer(ADDR_B, txs.DEST, 4 * TRX), caller="payout-router"),
        pd,
        "OVER_TX_LIMIT",
    )
    expired = txs.transfer(ADDR_B, txs.DEST, TRX, expiration_ms=1_000)
    refused(lambda: sign(wm, w, expired, caller="payout-router"), fp, "EXPIRED")
    memo = txs.transfer(ADDR_B, txs.DEST, TRX, memo=b"hello")
    refused(lambda: sign(wm, w, memo, caller="payout-router"), pd, "MEMO_NOT_ALLOWED")
    refused(lambda: sign(wm, w, ok, caller="payout-router", address=ADDR_A), pd, "ADDRESS_NOT_IN_WALLET")
    # A wallet without a policy may sign nothing (empty allowed_contract_types allows none).
    bare = imported(wm, bytes.fromhex("7b" * 32), "policy")
    refused(lambda: sign(wm, bare, txs.transfer(bare.address, txs.DEST, 1)), pd, "CONTRACT_NOT_ALLOWED")


def test_daily_limit_holds_under_concurrent_signing(svc: tuple[Client, Database[Any]]) -> None:
    wm, db = svc
    key = bytes.fromhex("8c" * 32)
    address = private_key_to_address(key)
    # TRX counts each transaction's worst-case fee: a USDT transfer's bandwidth (fee_limit 0 here), then
    # per TRX transfer 1 TRX + i sun + its fee. Room for 4 of the 12 (i sums to at most 38), never 5.
    usdt_fee = trx_cost(txs.trc20_transfer(address, txs.USDT, txs.DEST, 10, fee_limit=0))
    daily = usdt_fee + 4 * trx_cost(txs.transfer(address, txs.DEST, TRX)) + 38
    w = imported(wm, key, "daily", policy=policy(trx_per_tx=2 * TRX, trx_daily=daily, usdt_daily=10))
    # Another asset has its own daily total, in the same chain.
    usdt = txs.trc20_transfer(w.address, txs.USDT, txs.DEST, 10, fee_limit=0)
    assert sign(wm, w, usdt).signer_address == w.address
    refused(
        lambda: sign(wm, w, txs.trc20_transfer(w.address, txs.USDT, txs.DEST, 1, fee_limit=0)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "OVER_DAILY_LIMIT",
    )
    results: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        raw = txs.transfer(w.address, txs.DEST, TRX + i)  # distinct transactions, 1 TRX each (+i sun)
        try:
            sign(wm, w, raw)
            outcome = "ok"
        except grpc.RpcError as err:
            outcome = f"{err.code().name}:{error_reason(err)}"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results.count("ok") == 4, results
    assert set(results) - {"ok"} == {"FAILED_PRECONDITION:OVER_DAILY_LIMIT"}, results
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    # The wallet's signatures of the day form one spend chain: each link's running totals build on the
    # one before, none passes a limit, and each link names the signing-log record it counted.
    spend_key = f"{w.wallet_id}:{day}"
    chain = list(db["wallet_manager_daily_spend"].find({"key": spend_key}).sort("seq", 1))
    assert [e["seq"] for e in chain] == [1, 2, 3, 4, 5]
    running: dict[str, int] = {}
    for e in chain:
        running = {**running, **{a: running.get(a, 0) + n for a, n in e["amounts"].items()}}
        assert e["totals"] == running and running["TRX"] <= daily and running[txs.USDT] == 10
        record = db["wallet_manager_signing_log"].find_one({"_id": e["record_id"]})
        assert record is not None and record["spend_totals"] == e["totals"]
        assert record["amount"] < e["amounts"]["TRX"]  # the value, without the fee counted with it
    logged = db["wallet_manager_signing_log"].count_documents({"wallet_id": w.wallet_id})
    assert logged == 5


def test_sign_message_tip191_v2(wm: Client) -> None:
    key = bytes.fromhex("9d" * 32)
    w = imported(wm, key, "msg", policy=pb.SigningPolicy(allow_sign_message=True))
    msg = "login nonce 123 — ünïcode".encode()
    resp = wm.call("SignMessage", pb.SignMessageRequest(request_id=rid(), wallet_id=w.wallet_id, message=msg))
    assert resp.signature == sign_message_v2(key, msg)  # byte-identical to TronWeb signMessageV2
    assert resp.signature[64] in (27, 28) and verify_message_v2(msg, resp.signature, w.address)
    assert recover_address(hash_message_v2(msg), resp.signature) == w.address
    v = wm.call(
        "VerifyMessage", pb.VerifyMessageRequest(address=w.address, message=msg, signature=resp.signature)
    )
    assert v.valid and v.recovered_address == w.address
    v = wm.call(
        "VerifyMessage", pb.VerifyMessageRequest(address=ADDR_A, message=msg, signature=resp.signature)
    )
    assert not v.valid and v.recovered_address == w.address
    records = wm.call("ListSignatures", pb.ListSignaturesRequest(wallet_id=w.wallet_id)).records
    assert [(r.kind, r.message_sha256) for r in records] == [
        (pb.SigningRecord.KIND_MESSAGE, hashlib.sha256(msg).hexdigest())
    ]
    # A retry gets the first answer; the same request_id for another message signs nothing (and logs nothing).
    first = pb.SignMessageRequest(request_id=rid(), wallet_id=w.wallet_id, message=b"first")
    assert wm.call("SignMessage", first) == wm.call("SignMessage", first)
    reused = pb.SignMessageRequest(request_id=first.request_id, wallet_id=w.wallet_id, message=b"second")
    refused(lambda: wm.call("SignMessage", reused), grpc.StatusCode.FAILED_PRECONDITION, "REQUEST_ID_REUSED")
    records = wm.call("ListSignatures", pb.ListSignaturesRequest(wallet_id=w.wallet_id)).records
    assert len(records) == 2


# -- watch-only and TronLink -----------------------------------------------------------------------------

XPUB_ALL12 = (
    "xpub6DCWphzD1URX6NLY4bzJQoNz3Ja14ueGphAz3c7XdzyfR3hbsv4XybKuXVPSGFiASvcugTyiJrQyw5u33izp6rB1W9fgZM4ugKQJQBcEFo8"
)  # fmt: skip


def test_watch_only_wallets_never_sign(wm: Client) -> None:
    by_xpub = create(wm, KIND.KIND_WATCH_ONLY, "watcher", xpub=XPUB_ALL12, policy=policy())
    assert by_xpub.address == "TY72iA3SBtrds3QLYsS7LwYfkzXwAXCRWT"  # Trezor fixture m/44'/195'/0'/0/0
    by_addr = create(
        wm, KIND.KIND_WATCH_ONLY, "watcher", address="TFz2CJn9CJb8C4i1Gke3jmZX2fRMJxniH2", policy=policy()
    )
    for w in (by_xpub, by_addr):
        raw = txs.transfer(w.address, txs.DEST, 1)
        refused(lambda w=w, raw=raw: sign(wm, w, raw), grpc.StatusCode.PERMISSION_DENIED, "WATCH_ONLY")
        msg = pb.SignMessageRequest(request_id=rid(), wallet_id=w.wallet_id, message=b"x")
        refused(lambda msg=msg: wm.call("SignMessage", msg), grpc.StatusCode.PERMISSION_DENIED, "WATCH_ONLY")
    pk = wm.call("GetPublicKey", pb.GetPublicKeyRequest(wallet_id=by_xpub.wallet_id))
    assert pk.xpub == XPUB_ALL12 and len(pk.public_key) == 33
    # An xprv would put a private key into a watch-only wallet.
    xprv = Bip32Secp256k1.FromSeed(b"\x01" * 32).PrivateKey().ToExtended()
    refused(
        lambda: create(wm, KIND.KIND_WATCH_ONLY, "watcher", xpub=xprv),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )


def challenge(
    wm: Client, address: str, owner: str = "tl", subject: str = ""
) -> pb.CreateTronLinkChallengeResponse:
    req = pb.CreateTronLinkChallengeRequest(request_id=rid(), address=address, owner_id=owner)
    return wm.call("CreateTronLinkChallenge", req, subject=subject)


def tronlink(
    wm: Client, address: str, challenge_id: str, signature: bytes, owner: str = "tl", subject: str = ""
) -> pb.Wallet:
    proof = pb.TronLinkProof(challenge_id=challenge_id, signature="0x" + signature.hex())
    return create(wm, KIND.KIND_TRONLINK, owner, address=address, tronlink_proof=proof, subject=subject)


def test_tronlink_proof_accepted_once(svc: tuple[Client, Database[Any]]) -> None:
    wm, db = svc
    key = bytes.fromhex("ae" * 32)
    address = private_key_to_address(key)
    ch = challenge(wm, address)
    assert address in ch.message and ch.expire_time.ToDatetime(UTC) > datetime.now(UTC)
    # The signed text names the owner, the cluster and the chain the proof is for.
    assert {"owner: tl", "cluster: tronpay", "chain: tron-devnet"} <= set(ch.message.splitlines())
    sig = sign_message_v2(key, ch.message)  # what TronLink's signMessageV2 returns
    w = tronlink(wm, address, ch.challenge_id, sig)
    assert w.kind == KIND.KIND_TRONLINK and w.address == address
    refused(
        lambda: sign(wm, w, txs.transfer(address, txs.DEST, 1)),
        grpc.StatusCode.PERMISSION_DENIED,
        "EXTERNAL_SIGNER",
    )
    # Replayed proof: the challenge is single use.
    wm.call(
        "DeleteWallet",
        pb.DeleteWalletRequest(request_id=rid(), wallet_id=w.wallet_id, force=True),
        subject="ops-alice",
    )
    refused(
        lambda: tronlink(wm, address, ch.challenge_id, sig),
        grpc.StatusCode.PERMISSION_DENIED,
        "CHALLENGE_USED",
    )
    used = db["wallet_manager_challenges"].find_one({"_id": ch.challenge_id})
    assert used is not None and used["used"] is True


def test_tronlink_wrong_address_and_expired_proofs_refused(svc: tuple[Client, Database[Any]]) -> None:
    wm, db = svc
    key = bytes.fromhex("bf" * 32)
    address = private_key_to_address(key)
    pd = grpc.StatusCode.PERMISSION_DENIED
    # Signed by another key than the claimed address's.
    ch = challenge(wm, address)
    refused(
        lambda: tronlink(wm, address, ch.challenge_id, sign_message_v2(KEY_A, ch.message)),
        pd,
        "SIGNATURE_MISMATCH",
    )
    # A challenge issued for another address.
    other = challenge(wm, ADDR_A)
    refused(
        lambda: tronlink(wm, address, other.challenge_id, sign_message_v2(key, other.message)),
        pd,
        "CHALLENGE_ADDRESS_MISMATCH",
    )
    # A signature over a different message.
    refused(
        lambda: tronlink(wm, address, ch.challenge_id, sign_message_v2(key, "something else")),
        pd,
        "SIGNATURE_MISMATCH",
    )
    # Expired: move the expiry into the past.
    db["wallet_manager_challenges"].update_one(
        {"_id": ch.challenge_id}, {"$set": {"expire_time": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    refused(
        lambda: tronlink(wm, address, ch.challenge_id, sign_message_v2(key, ch.message)),
        pd,
        "CHALLENGE_EXPIRED",
    )
    refused(
        lambda: tronlink(wm, address, "tlc_unknown", sign_message_v2(key, ch.message)),
        pd,
        "CHALLENGE_NOT_FOUND",
    )
    # An address of the right shape whose checksum fails is bad input, not an internal error.
    bad_checksum = address[:-1] + ("2" if address[-1] != "2" else "3")
    refused(lambda: challenge(wm, bad_checksum), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    # The failed attempts did not consume a fresh, valid challenge.
    fresh = challenge(wm, address)
    assert tronlink(wm, address, fresh.challenge_id, sign_message_v2(key, fresh.message)).address == address


def test_tronlink_proof_for_another_owner_refused(svc: tuple[Client, Database[Any]]) -> None:
    wm, db = svc
    key = bytes.fromhex("b7" * 32)
    address = private_key_to_address(key)
    pd = grpc.StatusCode.PERMISSION_DENIED
    ch = challenge(wm, address, owner="alice")
    sig = sign_message_v2(key, ch.message)  # alice's valid proof, in someone else's hands
    refused(
        lambda: tronlink(wm, address, ch.challenge_id, sig, owner="mallory"), pd, "CHALLENGE_OWNER_MISMATCH"
    )
    # A challenge requested for an end user (owner = the token's subject) is usable by that user only.
    mine = challenge(wm, address, owner="", subject="alice")
    assert "owner: alice" in mine.message.splitlines()
    sig = sign_message_v2(key, mine.message)
    refused(
        lambda: tronlink(wm, address, mine.challenge_id, sig, owner="alice", subject="mallory"),
        pd,
        "CHALLENGE_OWNER_MISMATCH",
    )
    # A challenge stored before owners were bound (none recorded) is refused like another owner's.
    old = challenge(wm, address, owner="alice")
    db["wallet_manager_challenges"].update_one({"_id": old.challenge_id}, {"$unset": {"owner_id": ""}})
    refused(
        lambda: tronlink(wm, address, old.challenge_id, sign_message_v2(key, old.message), owner="alice"),
        pd,
        "CHALLENGE_OWNER_MISMATCH",
    )
    refused(lambda: challenge(wm, address, owner=""), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    # None of the refusals used up the challenge: the rightful owner still proves the address, and the end
    # user's own challenge works for them.
    assert tronlink(
        wm, address, ch.challenge_id, sign_message_v2(key, ch.message), owner="alice"
    ).owner_id == ("alice")
    bob_key = bytes.fromhex("b8" * 32)
    bobs = challenge(wm, private_key_to_address(bob_key), owner="", subject="bob")
    proof = sign_message_v2(bob_key, bobs.message)
    w = tronlink(wm, private_key_to_address(bob_key), bobs.challenge_id, proof, owner="bob", subject="bob")
    assert w.owner_id == "bob"


@pytest.mark.parametrize("kind", [KIND.KIND_LEDGER, KIND.KIND_TREZOR])
def test_device_wallets_need_their_flags(wm: Client, kind: pb.Wallet.Kind.ValueType) -> None:
    # This service runs without HARDWARE_WALLET_ENABLED / LEDGER_ENABLED / TREZOR_ENABLED.
    refused(lambda: create(wm, kind, "dev"), grpc.StatusCode.FAILED_PRECONDITION, "HARDWARE_WALLET_DISABLED")


def _concurrently(n: int, fn: Any) -> list[str]:
    """Run fn(i) on n threads at once; each outcome is "ok" or "<CODE>:<REASON>"."""
    out: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait(10)
        try:
            fn(i)
            outcome = "ok"
        except grpc.RpcError as err:
            outcome = f"{err.code().name}:{error_reason(err)}"
        with lock:
            out.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_concurrent_tronlink_proofs_use_a_challenge_once(wm: Client) -> None:
    key = bytes.fromhex("c4" * 32)
    address = private_key_to_address(key)
    ch = challenge(wm, address)
    sig = sign_message_v2(key, ch.message)
    results = _concurrently(6, lambda i: tronlink(wm, address, ch.challenge_id, sig))
    assert results.count("ok") == 1, results
    assert set(results) - {"ok"} == {"PERMISSION_DENIED:CHALLENGE_USED"}, results


def test_concurrent_hd_wallets_get_distinct_accounts(wm: Client) -> None:
    made: list[pb.Wallet] = []
    results = _concurrently(6, lambda i: made.append(create(wm, KIND.KIND_HD, f"race-hd-{rid()[-6:]}-{i}")))
    assert results == ["ok"] * 6
    assert len({w.account_index for w in made}) == 6 and len({w.address for w in made}) == 6
    same_owner = _concurrently(4, lambda i: create(wm, KIND.KIND_HD, "race-hd-same"))
    assert sorted(same_owner) == ["ALREADY_EXISTS:HD_WALLET_EXISTS"] * 3 + ["ok"], same_owner


def test_a_replayed_signature_counts_once_against_the_daily_limit(svc: tuple[Client, Database[Any]]) -> None:
    wm, db = svc
    key = bytes.fromhex("d5" * 32)
    raw = txs.transfer(private_key_to_address(key), txs.DEST, 2 * TRX)
    cost = trx_cost(raw)  # 2 TRX and the worst-case fee
    w = imported(wm, key, "daily-replay", policy=policy(trx_daily=cost + TRX))
    request_id = rid()
    first = sign(wm, w, raw, request_id=request_id)
    assert sign(wm, w, raw, request_id=request_id) == first
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    links = list(db["wallet_manager_daily_spend"].find({"key": f"{w.wallet_id}:{day}"}))
    assert [(e["seq"], e["totals"]) for e in links] == [(1, {"TRX": cost})]
    # 2 x cost > cost + 1 TRX: a new request for the same transaction is refused.
    refused(lambda: sign(wm, w, raw), grpc.StatusCode.FAILED_PRECONDITION, "OVER_DAILY_LIMIT")


def test_unlimited_trc20_approve_is_logged_without_overflow(svc: tuple[Client, Database[Any]]) -> None:
    wm, db = svc
    approvals = policy(allowed_spenders=[txs.DEST], allow_unlimited_approvals=True)
    w = imported(wm, bytes.fromhex("e8" * 32), "approve", policy=approvals)
    max_uint = 2**256 - 1
    raw = txs.trc20_call(w.address, txs.USDT, txs.abi_call("095ea7b3", txs.DEST, max_uint))
    assert sign(wm, w, raw).signer_address == w.address
    (record,) = wm.call("ListSignatures", pb.ListSignaturesRequest(wallet_id=w.wallet_id)).records
    assert record.amount == 2**63 - 1 and record.asset == common_pb2.ASSET_USDT
    stored = db["wallet_manager_signing_log"].find_one({"wallet_id": w.wallet_id})
    assert stored is not None and stored["amount"] == str(max_uint)  # exact value kept as text


def test_a_spend_link_left_by_a_crashed_attempt_is_adopted_not_counted_twice(
    svc: tuple[Client, Database[Any]],
) -> None:
    from services.common.idempotency import fingerprint

    wm, db = svc
    raw = txs.transfer(private_key_to_address(bytes.fromhex("f9" * 32)), txs.DEST, 2 * TRX)
    cost = trx_cost(raw)
    w = imported(wm, bytes.fromhex("f9" * 32), "crash", policy=policy(trx_daily=cost + TRX))
    req = pb.SignTransactionRequest(
        request_id=rid(), wallet_id=w.wallet_id, transaction=common_pb2.Transaction(raw_data=raw)
    )
    key = f"{w.wallet_id}:{datetime.now(UTC).strftime('%Y-%m-%d')}"
    # What an attempt that died after claiming its spend link (and before its log record) leaves behind.
    link = {
        "_id": f"spend:SignTransaction:{req.request_id}",
        "key": key,
        "seq": 1,
        "amounts": {"TRX": cost},
        "totals": {"TRX": cost},
        "record_id": "sig_lost",
        "fingerprint": fingerprint(req),
        "time": datetime.now(UTC),
    }
    db["wallet_manager_daily_spend"].insert_one({**link, "tag": service_tag(db, *integrity.link_parts(link))})
    resp = wm.call("SignTransaction", req, caller="usdt-manager")
    assert recover_address(hashlib.sha256(req.transaction.raw_data).digest(), resp.signature) == w.address
    assert [e["seq"] for e in db["wallet_manager_daily_spend"].find({"key": key})] == [1]
    (record,) = db["wallet_manager_signing_log"].find({"wallet_id": w.wallet_id})
    assert (record["spend_seq"], record["spend_totals"]) == (1, {"TRX": cost})
    assert wm.call("SignTransaction", req, caller="usdt-manager") == resp
