"""Signing-policy bypasses through the running service (gRPC, FerretDB, devnet): each case is a transaction
the devnet would accept that the policy must refuse for what it does on chain, next to its allowed
counterpart, which the service signs and the devnet executes (so a refusal is the policy's doing, not a
malformed transaction). Then SignMessage's own permission, and the signing log's replay path, which never
hands a stored signature to a request the policy refuses now."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from devnet.genesis import ARTIFACT
from devnet.params import ACTIVE_DEFAULT_OPERATIONS
from devnet.pb import common_pb2 as tron_common_pb2
from devnet.pb import contract_pb2, tron_pb2
from services.common.tron.abi import encode_args, encode_call
from services.common.tron.address import to_base58
from services.common.tron.tx import encode_transaction
from services.wallet_manager.vault import policy as vpolicy
from services.wallet_manager.vault.messages import verify_message_v2
from tests.harness.devnet import Devnet
from tests.harness.ferretdb import FerretDB
from tests.wallet_manager import txs
from tests.wallet_manager.service_support import KIND, Client, error_reason, policy, rid, started

TRX = 1_000_000
CT = common_pb2
STAKE = 10 * TRX


@dataclass(frozen=True)
class Env:
    """The rig, and per case the wallet's address `w`."""

    devnet: Devnet
    wm: Client
    usdt: str  # USDT_CONTRACT_ADDRESS
    tok2: str  # a configured token (WALLET_TRC20_TOKENS)
    fake: str  # the same contract code, not configured
    callee: str  # the same again, for allowed_call_contracts
    witness: str
    recv: str  # existing accounts (delegation needs one)
    other: str
    spender: str
    w: str = ""


@pytest.fixture(scope="module")
def rig(ferretdb: FerretDB, devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    deployer = devnet.funded[1]
    tok2, fake, callee = (deploy_token(devnet, deployer) for _ in range(3))
    recv, other = devnet.new_account()["address"], devnet.new_account()["address"]
    for txid in devnet.faucet(recv, trx=TRX) + devnet.faucet(other, trx=TRX):
        devnet.wait_for_tx(txid)
    env = {"USDT_CONTRACT_ADDRESS": devnet.usdt, "WALLET_TRC20_TOKENS": tok2}
    with started(ferretdb, tmp_path_factory.mktemp("wm-policy"), node_url=devnet.url, **env) as c:
        wm = Client(c["wallet_manager"].target)
        try:
            yield Env(
                devnet,
                wm,
                devnet.usdt,
                tok2,
                fake,
                callee,
                devnet.witness["address"],
                recv,
                other,
                devnet.new_account()["address"],
            )
        finally:
            wm.close()


def deploy_token(devnet: Devnet, owner: dict[str, str]) -> str:
    """Another instance of the devnet's TetherToken, deployed by `owner`."""
    bytecode = json.loads(ARTIFACT.read_text())["bytecode"].removeprefix("0x")
    built = devnet.post(
        "wallet/deploycontract",
        {
            "owner_address": owner["hex"],
            "abi": "[]",
            "bytecode": bytecode,
            "parameter": encode_args(["address", "uint256"], [owner["address"], 10**12]).hex(),
            "fee_limit": 1_000 * TRX,
            "consume_user_resource_percent": 100,
            "origin_energy_limit": 10_000_000,
            "name": "TetherToken",
        },
    )
    signed = devnet.sign(built, owner["private_key"])
    assert devnet.broadcast(signed)["result"] is True
    info = devnet.wait_for_tx(signed["txID"])
    assert info.get("receipt", {}).get("result") == "SUCCESS", info
    return to_base58(bytes.fromhex(built["contract_address"]))


# -- transactions, built on the devnet's head block ----------------------------------------------------


def call(e: Env, contract: str, data: bytes, fee_limit: int = 30 * TRX) -> bytes:
    return txs.trc20_call(e.w, contract, data, fee_limit=fee_limit, ref=e.devnet.ref_block())


def token_transfer(e: Env, token: str, fee_limit: int = 30 * TRX) -> bytes:
    return call(e, token, txs.abi_call("a9059cbb", e.recv, 1), fee_limit)


def approve(e: Env, spender: str, amount: int) -> bytes:
    return call(e, e.usdt, txs.abi_call("095ea7b3", spender, amount))


def balance_of(e: Env, contract: str) -> bytes:
    return call(e, contract, encode_call("balanceOf(address)", e.w))


def transfer(e: Env, amount: int, permission_id: int = 0) -> bytes:
    return txs.transfer(e.w, e.other, amount, permission_id=permission_id, ref=e.devnet.ref_block())


def freeze(e: Env) -> bytes:
    msg = contract_pb2.FreezeBalanceV2Contract(
        owner_address=txs.a(e.w), frozen_balance=STAKE, resource=tron_common_pb2.ENERGY
    )
    return txs.raw_tx("FreezeBalanceV2Contract", msg, ref=e.devnet.ref_block())


def delegate(e: Env, receiver: str, lock: bool = False) -> bytes:
    msg = contract_pb2.DelegateResourceContract(
        owner_address=txs.a(e.w),
        resource=tron_common_pb2.ENERGY,
        balance=2 * TRX,
        receiver_address=txs.a(receiver),
        lock=lock,
        lock_period=100 if lock else 0,
    )
    return txs.raw_tx("DelegateResourceContract", msg, ref=e.devnet.ref_block())


def vote(e: Env) -> bytes:
    msg = contract_pb2.VoteWitnessContract(owner_address=txs.a(e.w))
    msg.votes.add(vote_address=txs.a(e.witness), vote_count=STAKE // TRX // 2)
    return txs.raw_tx("VoteWitnessContract", msg, ref=e.devnet.ref_block())


def permission_update(e: Env, *extra_active_keys: str) -> bytes:
    msg = contract_pb2.AccountPermissionUpdateContract(owner_address=txs.a(e.w))
    msg.owner.permission_name, msg.owner.threshold = "owner", 1
    msg.owner.keys.add(address=txs.a(e.w), weight=1)
    active = msg.actives.add(
        type=tron_pb2.Permission.Active,
        id=2,
        permission_name="active",
        threshold=1,
        operations=ACTIVE_DEFAULT_OPERATIONS,
    )
    for addr in (e.w, *extra_active_keys):
        active.keys.add(address=txs.a(addr), weight=1)
    return txs.raw_tx("AccountPermissionUpdateContract", msg, ref=e.devnet.ref_block())


# -- the cases -----------------------------------------------------------------------------------------

Build = Callable[[Env], bytes]
MakePolicy = Callable[[Env], pb.SigningPolicy]


@dataclass(frozen=True)
class Case:
    reason: str
    policy: MakePolicy
    refused: Build
    allowed: Build
    # When set, the same kind of transaction is allowed once the policy says so (else the same policy).
    allowed_policy: MakePolicy | None = None
    setup: Build | None = None  # signed and executed first (a stake to delegate or vote with)


def usdt_only(e: Env) -> pb.SigningPolicy:
    p = pb.SigningPolicy(allowed_contract_types=[CT.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT])
    p.limits.add(asset=CT.ASSET_USDT)
    return p


RESOURCES = (CT.CONTRACT_TYPE_FREEZE_BALANCE_V2, CT.CONTRACT_TYPE_DELEGATE_RESOURCE)
CASES: dict[str, Case] = {
    # The same transfer(address,uint256) call on a contract that is not a configured token is an
    # arbitrary call (it was a "token transfer" of an asset nobody limits).
    "token method on an unconfigured contract": Case(
        vpolicy.CALL_NOT_ALLOWED,
        lambda e: policy(),
        lambda e: token_transfer(e, e.fake),
        lambda e: token_transfer(e, e.usdt),
    ),
    "arbitrary call of a contract not on the allow-list": Case(
        vpolicy.CALL_NOT_ALLOWED,
        lambda e: policy(allowed_call_contracts=[e.callee]),
        lambda e: balance_of(e, e.fake),
        lambda e: balance_of(e, e.callee),
    ),
    "configured token without a listed limit": Case(
        vpolicy.ASSET_NOT_LISTED,
        lambda e: policy(),  # lists TRX and USDT only
        lambda e: token_transfer(e, e.tok2),
        lambda e: token_transfer(e, e.usdt),
    ),
    "fees burn TRX, which must be listed": Case(
        vpolicy.ASSET_NOT_LISTED,
        usdt_only,
        lambda e: token_transfer(e, e.usdt),
        lambda e: token_transfer(e, e.usdt),
        allowed_policy=lambda e: policy(),
    ),
    "fee_limit above the policy's maximum": Case(
        vpolicy.OVER_FEE_LIMIT,
        lambda e: policy(max_fee_limit_sun=50 * TRX),
        lambda e: token_transfer(e, e.usdt, fee_limit=50 * TRX + 1),
        lambda e: token_transfer(e, e.usdt, fee_limit=50 * TRX),
    ),
    "fee_limit counts against the TRX daily limit": Case(
        vpolicy.OVER_DAILY_LIMIT,
        lambda e: policy(trx_daily=40 * TRX),
        lambda e: token_transfer(e, e.usdt, fee_limit=45 * TRX),  # moves no TRX, can burn 45
        lambda e: token_transfer(e, e.usdt, fee_limit=30 * TRX),
    ),
    "a transfer's worst-case fee counts against the TRX daily limit": Case(
        vpolicy.OVER_DAILY_LIMIT,
        lambda e: policy(trx_daily=10 * TRX),
        lambda e: transfer(e, 9_500_000),  # + bandwidth and a possible new account > 0.5 TRX
        lambda e: transfer(e, 8 * TRX),
    ),
    "permission id not allowed": Case(
        vpolicy.PERMISSION_ID_NOT_ALLOWED,
        lambda e: policy(),  # the owner permission (0) only
        lambda e: transfer(e, TRX, permission_id=2),
        lambda e: transfer(e, TRX, permission_id=2),
        allowed_policy=lambda e: policy(allowed_permission_ids=[0, 2]),
    ),
    "approve to a spender not on the allow-list": Case(
        vpolicy.SPENDER_NOT_ALLOWED,
        lambda e: policy(destinations=[e.other], allowed_spenders=[e.spender]),
        lambda e: approve(e, e.other, 5),  # an allowed destination is not an allowed spender
        lambda e: approve(e, e.spender, 5),
    ),
    "unlimited approval": Case(
        vpolicy.UNLIMITED_APPROVAL,
        lambda e: policy(allowed_spenders=[e.spender]),
        lambda e: approve(e, e.spender, 2**256 - 1),
        lambda e: approve(e, e.spender, 10**6),
    ),
    "delegation to a receiver not on the allow-list": Case(
        vpolicy.RECEIVER_NOT_ALLOWED,
        lambda e: policy(RESOURCES, destinations=[e.other], allowed_resource_receivers=[e.recv]),
        lambda e: delegate(e, e.other),
        lambda e: delegate(e, e.recv),
        setup=freeze,
    ),
    "locked delegation": Case(
        vpolicy.LOCK_NOT_ALLOWED,
        lambda e: policy(RESOURCES, allowed_resource_receivers=[e.recv]),
        lambda e: delegate(e, e.recv, lock=True),
        lambda e: delegate(e, e.recv),
        setup=freeze,
    ),
    "vote for a witness not on the allow-list": Case(
        vpolicy.WITNESS_NOT_ALLOWED,
        # A destination allow-list never passes a contract whose counterparty is no destination.
        lambda e: policy((RESOURCES[0], CT.CONTRACT_TYPE_VOTE_WITNESS), destinations=[e.witness]),
        vote,
        vote,
        allowed_policy=lambda e: policy(
            (RESOURCES[0], CT.CONTRACT_TYPE_VOTE_WITNESS), allowed_witnesses=[e.witness]
        ),
        setup=freeze,
    ),
    "permission update giving a key to an address not on the allow-list": Case(
        vpolicy.PERMISSION_KEY_NOT_ALLOWED,
        lambda e: policy(
            [CT.CONTRACT_TYPE_ACCOUNT_PERMISSION_UPDATE],
            destinations=[e.other],
            allowed_permission_keys=[e.w],
        ),
        lambda e: permission_update(e, e.other),
        lambda e: permission_update(e),
    ),
}


def create(e: Env, p: pb.SigningPolicy, key: str) -> pb.Wallet:
    req = pb.CreateWalletRequest(
        request_id=rid(),
        wallet=pb.Wallet(owner_id="policy-cases", kind=KIND.KIND_IMPORTED, policy=p),
        private_key=key,
    )
    return e.wm.call("CreateWallet", req).wallet


def set_policy(e: Env, w: pb.Wallet, p: pb.SigningPolicy) -> None:
    req = pb.UpdateWalletRequest(
        request_id=rid(),
        wallet_id=w.wallet_id,
        wallet=pb.Wallet(policy=p),
        update_mask=FieldMask(paths=["policy"]),
    )
    assert e.wm.call("UpdateWallet", req).wallet.policy == p


def sign(e: Env, w: pb.Wallet, raw: bytes, caller: str = "payout-router", **kw: Any) -> Any:
    req = pb.SignTransactionRequest(
        request_id=kw.pop("request_id", rid()),
        wallet_id=w.wallet_id,
        transaction=common_pb2.Transaction(raw_data=raw),
    )
    return e.wm.call("SignTransaction", req, caller=caller)


def execute(e: Env, w: pb.Wallet, raw: bytes) -> str:
    """Sign through the service, broadcast, and wait for the devnet to execute it successfully."""
    resp = sign(e, w, raw)
    res = e.devnet.post(
        "wallet/broadcasthex", {"transaction": encode_transaction(raw, [resp.signature]).hex()}
    )
    assert res.get("result") is True, res
    info = e.devnet.wait_for_tx(resp.txid)
    assert info.get("receipt", {}).get("result", "SUCCESS") == "SUCCESS", info
    return str(resp.txid)


def refused(fn: Callable[[], Any], code: grpc.StatusCode, reason: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        fn()
    assert (err.value.code(), error_reason(err.value)) == (code, reason), err.value.details()


@pytest.mark.parametrize("name", list(CASES))
def test_bypass_is_refused_and_its_counterpart_allowed(rig: Env, name: str) -> None:
    case = CASES[name]
    account = rig.devnet.new_account()
    e = dataclasses.replace(rig, w=account["address"])
    for txid in e.devnet.faucet(e.w, trx=200 * TRX, usdt=10 * TRX):  # the permission update burns 100 TRX
        e.devnet.wait_for_tx(txid)
    w = create(e, case.policy(e), account["private_key"])
    done = [execute(e, w, case.setup(e))] if case.setup else []

    raw = case.refused(e)
    code = grpc.StatusCode.FAILED_PRECONDITION if case.reason in vpolicy.STATE_REASONS else None
    refused(lambda: sign(e, w, raw), code or grpc.StatusCode.PERMISSION_DENIED, case.reason)
    if case.allowed_policy is not None:
        set_policy(e, w, case.allowed_policy(e))
    allowed = case.allowed(e)
    done.append(execute(e, w, allowed))

    # Only what was signed is in the log, with the permission it was signed for.
    records = e.wm.call("ListSignatures", pb.ListSignaturesRequest(wallet_id=w.wallet_id)).records
    assert sorted(r.txid for r in records) == sorted(done)
    assert hashlib.sha256(raw).hexdigest() not in done
    (last,) = [r for r in records if r.txid == done[-1]]
    assert last.permission_id == tron_pb2.Transaction.raw.FromString(allowed).contract[0].Permission_id


def test_sign_message_needs_its_own_permission(rig: Env) -> None:
    account = rig.devnet.new_account()
    w = create(rig, policy(), account["private_key"])
    req = pb.SignMessageRequest(request_id=rid(), wallet_id=w.wallet_id, message=b"login nonce 7")
    refused(
        lambda: rig.wm.call("SignMessage", req, caller="payout-router"),
        grpc.StatusCode.PERMISSION_DENIED,
        vpolicy.MESSAGE_NOT_ALLOWED,
    )
    assert not rig.wm.call("ListSignatures", pb.ListSignaturesRequest(wallet_id=w.wallet_id)).records
    set_policy(rig, w, policy(allow_sign_message=True))
    resp = rig.wm.call("SignMessage", req, caller="payout-router")
    assert verify_message_v2(b"login nonce 7", resp.signature, w.address)
    (r,) = rig.wm.call("ListSignatures", pb.ListSignaturesRequest(wallet_id=w.wallet_id)).records
    assert (r.kind, r.caller, r.message_sha256, r.txid) == (
        pb.SigningRecord.KIND_MESSAGE,
        "payout-router",
        hashlib.sha256(b"login nonce 7").hexdigest(),
        "",
    )


def test_a_refused_request_never_gets_a_stored_signature(rig: Env) -> None:
    account = rig.devnet.new_account()
    one, both = ["payout-router"], ["payout-router", "usdt-manager"]
    w = create(rig, policy(callers=one), account["private_key"])
    raw = txs.transfer(w.address, txs.DEST, TRX)
    request_id = rid()
    first = sign(rig, w, raw, "payout-router", request_id=request_id)
    pd, fp = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION
    # A caller the policy refuses, sending the identical request, is refused: not handed the signature.
    refused(lambda: sign(rig, w, raw, "usdt-manager", request_id=request_id), pd, "CALLER_NOT_ALLOWED")
    # An allowed caller does not get another caller's answer either: request_ids are the caller's own.
    set_policy(rig, w, policy(callers=both))
    refused(lambda: sign(rig, w, raw, "usdt-manager", request_id=request_id), fp, "REQUEST_ID_REUSED")
    # The first caller's retry, once the policy no longer allows the transaction, is refused as well.
    set_policy(rig, w, policy(callers=both, destinations=[rig.other]))
    refused(lambda: sign(rig, w, raw, "payout-router", request_id=request_id), pd, "DESTINATION_NOT_ALLOWED")
    set_policy(rig, w, policy(callers=both))
    assert sign(rig, w, raw, "payout-router", request_id=request_id) == first

    # A retry refused only for time (the policy allows the transaction) gets the first answer, as
    # promised, and only the caller that asked first does.
    short = txs.transfer(w.address, txs.DEST, 2 * TRX, expiration_ms=int(time.time() * 1000) + 2_000)
    short_id = rid()
    answer = sign(rig, w, short, "payout-router", request_id=short_id)
    time.sleep(2.5)
    refused(lambda: sign(rig, w, short, "payout-router"), fp, "EXPIRED")  # a new request
    assert sign(rig, w, short, "payout-router", request_id=short_id) == answer
    refused(lambda: sign(rig, w, short, "usdt-manager", request_id=short_id), fp, "REQUEST_ID_REUSED")
    records = rig.wm.call("ListSignatures", pb.ListSignaturesRequest(wallet_id=w.wallet_id)).records
    assert [r.caller for r in records] == ["payout-router"] * 2
