"""A TRON multi-signature disburser: an account whose active permission (id 2) has three keys and threshold
2, held by three wallets in wallet-manager, the account itself a watch-only wallet there. payout-router
builds its payouts with Permission_id 2 and has two signer wallets sign each (wallet-manager checks on chain
that each key is in the permission); tronpy sees the recipients paid by transactions carrying two
signatures. With one signature the chain refuses the same kind of transaction; too few signer wallets is
refused by the router before anything is signed."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.payout_router.v1 import payout_router_pb2 as pb
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as wm_grpc
from tronpy.keys import PrivateKey

from services.common.tron.address import private_key_to_address
from services.common.tron.tx import txid_digest
from services.wallet_manager.vault.ecdsa import recover_address
from tests.harness.services import ServiceProcess
from tests.payout_router.conftest import SERVICES, Rig, env
from tests.payout_router.support import (
    DISBURSER_ROLE,
    STATE,
    TRX,
    USDT,
    WAIT,
    Actor,
    Wallet,
    fresh_address,
    payout_of,
    reason,
    rid,
    wait_final,
    wait_until,
)
from tests.payout_router.test_crash import kill9

PERMISSION_ID = 2


def _operations(*types: int) -> str:
    bits = bytearray(32)
    for t in types:
        bits[t // 8] |= 1 << (t % 8)
    return bits.hex()


@dataclass
class Multisig:
    account: Actor  # the owner key administers the account; payouts go through the active permission
    wallet: Wallet  # the account as a watch-only wallet: what payout requests name
    signers: list[Wallet]
    outsider: Wallet  # lists the account in its policy but holds no key of the permission


def signer_wallet(rig: Rig, account: str, router: str, key: str) -> Wallet:
    """An IMPORTED wallet that may sign, for payout-router, the account's calls to the router and its TRX
    transfers under permission 2."""
    policy = wm.SigningPolicy(
        allowed_contract_types=[
            common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT,
            common_pb2.CONTRACT_TYPE_TRANSFER,
        ],
        allow_unlisted_assets=True,
        allowed_callers=["payout-router"],
        allowed_call_contracts=[router],
        allowed_permission_ids=[PERMISSION_ID],
        allowed_multisig_accounts=[account],
    )
    created = (
        rig.stubs.wallets()
        .CreateWallet(
            wm.CreateWalletRequest(
                request_id=rid(),
                wallet=wm.Wallet(owner_id="multisig-tests", kind=wm.Wallet.KIND_IMPORTED, policy=policy),
                private_key=key,
            ),
            timeout=20,
        )
        .wallet
    )
    return Wallet(created.wallet_id, created.address)


@pytest.fixture(scope="module")
def multisig(rig: Rig) -> Multisig:
    router = rig.router.contract_address
    account = Actor(PrivateKey.random())
    for txid in rig.devnet.faucet(account.address, trx=3_000 * TRX):
        rig.devnet.wait_for_tx(txid, solid=True)
    keys = [secrets.token_hex(32) for _ in range(4)]
    wallets = [signer_wallet(rig, account.address, router, k) for k in keys]
    signers, outsider = wallets[:3], wallets[3]
    perm = {
        "owner": {"type": "Owner", "permission_name": "owner", "threshold": 1,
                  "keys": [{"address": account.address, "weight": 1}]},
        "actives": [{"type": "Active", "permission_name": "payouts", "threshold": 2,
                     "operations": _operations(1, 31),  # TransferContract, TriggerSmartContract
                     "keys": [{"address": w.address, "weight": 1} for w in signers]}],
    }  # fmt: skip
    client = rig.chain.client
    client.trx.account_permission_update(account.address, perm).build().sign(account.key).broadcast().wait(
        **WAIT
    )
    watched = (
        rig.stubs.wallets()
        .CreateWallet(
            wm.CreateWalletRequest(
                request_id=rid(),
                wallet=wm.Wallet(
                    owner_id="multisig-tests", kind=wm.Wallet.KIND_WATCH_ONLY, address=account.address
                ),
            ),
            timeout=20,
        )
        .wallet
    )
    rig.chain.send(rig.router, rig.admin, "grantRole", DISBURSER_ROLE, account.address)
    return Multisig(account, Wallet(watched.wallet_id, account.address), signers, outsider)


def start_router(rig: Rig, multisig: Multisig, signers: list[Wallet]) -> ServiceProcess:
    ports = {f"{n.upper()}_PORT": str(rig.cluster[n].port) for n in SERVICES if n != "payout_router"}
    settings = env(
        rig.devnet,
        rig.router.contract_address,
        PAYOUT_MULTISIG_ADDRESS=multisig.account.address,
        PAYOUT_MULTISIG_PERMISSION_ID=str(PERMISSION_ID),
        PAYOUT_MULTISIG_SIGNER_WALLETS=",".join(w.wallet_id for w in signers),
        **ports,
    )
    return rig.factory.start("payout_router", node_url=rig.devnet.url, env=settings)["payout_router"]


@pytest.fixture(scope="module")
def multisig_router(rig: Rig, multisig: Multisig) -> Iterator[ServiceProcess]:
    # Passed over: a wallet that does not exist, and the outsider (its key is no key of the permission).
    proc = start_router(rig, multisig, [Wallet("no-such-wallet", ""), multisig.outsider, *multisig.signers])
    yield proc
    proc.stop()


def test_a_2_of_3_multisig_disburser_pays(
    rig: Rig, multisig: Multisig, multisig_router: ServiceProcess
) -> None:
    stub = rig.stubs.payouts(multisig_router)
    usdt_to, trx_to = fresh_address(), fresh_address()
    payouts = ((usdt_to, common_pb2.ASSET_USDT, 7 * USDT), (trx_to, common_pb2.ASSET_TRX, 3 * TRX))
    ids = [
        stub.InitiatePayout(
            pb.InitiatePayoutRequest(
                request_id=rid(), wallet_id=multisig.wallet.wallet_id, recipient_address=to, asset=asset,
                amount=amount,
            ),
            timeout=30,
        ).payout.payout_id
        for to, asset, amount in payouts
    ]  # fmt: skip
    done = wait_final(stub, ids)
    assert [done[i].state for i in ids] == [STATE.STATE_CONFIRMED] * 2, done
    assert rig.chain.balance(usdt_to) == 7 * USDT and rig.chain.trx(trx_to) == 3 * TRX
    first_two = {w.address for w in multisig.signers[:2]}
    for pid in ids:
        tx = rig.chain.client.get_transaction(done[pid].txid)
        assert tx["raw_data"]["contract"][0]["Permission_id"] == PERMISSION_ID
        signers = {
            recover_address(bytes.fromhex(done[pid].txid), bytes.fromhex(sig)) for sig in tx["signature"]
        }
        assert signers == first_two  # the fewest signatures: the first two keys of the permission


def test_one_signature_is_refused_by_the_chain(rig: Rig, multisig: Multisig) -> None:
    """What wallet-manager and the chain do with a multi-signature transaction, signature by signature."""
    s0, s1, _ = multisig.signers
    to = fresh_address()
    with (
        rig.cluster["tron_client"].channel("payout-router") as tch,
        rig.cluster["wallet_manager"].channel("payout-router") as wch,
    ):
        tron, wallets = tc_grpc.TronClientServiceStub(tch), wm_grpc.WalletManagerServiceStub(wch)
        tx = tron.BuildTransaction(
            tc.BuildTransactionRequest(
                owner_address=multisig.account.address,
                transfer=tc.TransferParams(to_address=to, amount_sun=TRX),
                permission_id=PERMISSION_ID,
            ),
            timeout=15,
        ).transaction

        def sign(wallet: Wallet, unsigned: common_pb2.Transaction) -> common_pb2.Transaction:
            req = wm.SignTransactionRequest(
                request_id=rid(), wallet_id=wallet.wallet_id, transaction=unsigned, purpose="multisig test"
            )
            return wallets.SignTransaction(req, timeout=15).signed_transaction

        def broadcast(signed: common_pb2.Transaction) -> tc.BroadcastTransactionResponse:
            req = tc.BroadcastTransactionRequest(request_id=rid(), transaction=signed)
            return tron.BroadcastTransaction(req, timeout=15)

        one = sign(s0, tx)
        with pytest.raises(grpc.RpcError) as refused:
            broadcast(one)
        assert (
            refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            and reason(refused.value) == "SIGERROR"
        )

        # wallet-manager: the same key twice, or a key the permission does not hold, is not signed.
        for wallet, tx_in, why in (
            (s0, one, "ALREADY_SIGNED"),
            (multisig.outsider, tx, "NOT_A_PERMISSION_KEY"),
        ):
            with pytest.raises(grpc.RpcError) as denied:
                sign(wallet, tx_in)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED and reason(denied.value) == why

        two = sign(s1, one)  # appended to the first
        assert [recover_address(txid_digest(two.raw_data), bytes(s)) for s in two.signatures] == [
            s0.address,
            s1.address,
        ]
        assert broadcast(two).result == tc.BROADCAST_RESULT_ACCEPTED
    rig.devnet.wait_for_tx(two.txid)
    assert rig.chain.trx(to) == TRX  # tronpy, an independent client


def test_too_few_signer_wallets_are_refused_before_signing(rig: Rig, multisig: Multisig) -> None:
    proc = start_router(rig, multisig, [multisig.signers[2], multisig.outsider])
    try:
        with pytest.raises(grpc.RpcError) as refused:
            rig.stubs.payouts(proc).InitiatePayout(
                pb.InitiatePayoutRequest(
                    request_id=rid(), wallet_id=multisig.wallet.wallet_id, recipient_address=fresh_address(),
                    asset=common_pb2.ASSET_USDT, amount=USDT,
                ),
                timeout=30,
            )  # fmt: skip
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(refused.value) == "MULTISIG_THRESHOLD_NOT_MET"
    finally:
        proc.stop()


def test_a_watch_only_wallet_that_is_not_the_multisig_cannot_pay(
    rig: Rig, multisig_router: ServiceProcess
) -> None:
    other = private_key_to_address(secrets.token_bytes(32))
    watched = (
        rig.stubs.wallets()
        .CreateWallet(
            wm.CreateWalletRequest(
                request_id=rid(),
                wallet=wm.Wallet(owner_id="multisig-tests", kind=wm.Wallet.KIND_WATCH_ONLY, address=other),
            ),
            timeout=20,
        )
        .wallet
    )
    with pytest.raises(grpc.RpcError) as refused:
        rig.stubs.payouts(multisig_router).InitiatePayout(
            pb.InitiatePayoutRequest(
                request_id=rid(), wallet_id=watched.wallet_id, recipient_address=fresh_address(),
                asset=common_pb2.ASSET_TRX, amount=TRX,
            ),
            timeout=30,
        )  # fmt: skip
    assert reason(refused.value) == "WALLET_CANNOT_SIGN"


def test_kill_9_while_signatures_are_collected_pays_each_once(rig: Rig, multisig: Multisig) -> None:
    """kill -9 at once (the first batch's signatures being collected) and again once payouts are on their
    way: every payout CONFIRMED, each recipient credited exactly once (tronpy)."""
    proc = start_router(rig, multisig, multisig.signers)
    try:
        recipients = [fresh_address() for _ in range(30)]
        items = [pb.PayoutItem(recipient_address=to, amount=USDT + i) for i, to in enumerate(recipients)]
        req = pb.CreatePayoutBatchRequest(
            request_id=rid(), wallet_id=multisig.wallet.wallet_id, asset=common_pb2.ASSET_USDT, items=items
        )
        ids = [p.payout_id for p in rig.stubs.payouts(proc).CreatePayoutBatch(req, timeout=60).payouts]
        kill9(proc)
        proc.start()
        stub = rig.stubs.payouts(proc)
        on_its_way = (STATE.STATE_SUBMITTED, STATE.STATE_CONFIRMED)
        wait_until(lambda: payout_of(stub, ids[0]).state, lambda state: state in on_its_way)
        kill9(proc)
        proc.start()
        done = wait_final(rig.stubs.payouts(proc), ids, timeout=240)
        assert {p.state for p in done.values()} == {STATE.STATE_CONFIRMED}, done
        for to, item in zip(recipients, items, strict=True):
            assert rig.chain.balance(to) == item.amount
    finally:
        proc.stop()
