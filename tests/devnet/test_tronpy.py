"""tronpy 0.6.2, unchanged, against the devnet: transfers, TRC20, staking, votes, multisig, rejections."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tronpy import AsyncTron, Tron
from tronpy.contract import Contract
from tronpy.exceptions import BadSignature, TransactionError, TvmError, UnknownError
from tronpy.keys import PrivateKey
from tronpy.providers import AsyncHTTPProvider, HTTPProvider

from devnet.genesis import DEVNET_DEFAULT_PARAMS
from tests.harness.devnet import Devnet

ARTIFACT = Path(__file__).resolve().parents[2] / "contracts" / "artifacts" / "TetherToken.json"
WAIT = {"timeout": 30, "interval": 0.25}
TRX = 1_000_000


@pytest.fixture(scope="module")
def client(devnet: Devnet) -> Iterator[Tron]:
    c = Tron(HTTPProvider(devnet.url, timeout=30))
    yield c
    c.provider.sess.close()


@pytest.fixture(scope="module")
def bank(devnet: Devnet) -> PrivateKey:
    return PrivateKey(bytes.fromhex(devnet.funded[2]["private_key"]))


def funded_key(client: Tron, bank: PrivateKey, amount: int) -> PrivateKey:
    """A brand-new account holding `amount` sun, funded by a tronpy transfer."""
    key = PrivateKey.random()
    addr = key.public_key.to_base58check_address()
    bank_addr = bank.public_key.to_base58check_address()
    client.trx.transfer(bank_addr, addr, amount).build().sign(bank).broadcast().wait(**WAIT)
    return key


def addr_of(key: PrivateKey) -> str:
    return key.public_key.to_base58check_address()


@pytest.fixture(scope="module")
def token(client: Tron, bank: PrivateKey) -> Contract:
    """Our own TetherToken deployed through tronpy by a fresh owner holding 1 000 000 tokens."""
    owner = funded_key(client, bank, 2_000 * TRX)
    art = json.loads(ARTIFACT.read_text())
    proto = Contract(name="TetherToken", bytecode=art["bytecode"], abi=art["abi"])
    params = proto.constructor.encode_parameter(addr_of(owner), 1_000_000 * 10**6)
    cntr = Contract(name="TetherToken", bytecode=art["bytecode"] + params, abi=art["abi"])
    info = client.trx.deploy_contract(addr_of(owner), cntr).fee_limit(1_000 * TRX).build().sign(owner)
    receipt = info.broadcast().wait(**WAIT)
    assert receipt["receipt"]["result"] == "SUCCESS", receipt
    deployed = client.get_contract(receipt["contract_address"])
    deployed.owner_key = owner
    return deployed


def test_trx_transfer_to_new_account_and_back(client: Tron, bank: PrivateKey) -> None:
    key = PrivateKey.random()
    to = addr_of(key)
    before = client.get_account_balance(addr_of(bank))
    ret = client.trx.transfer(addr_of(bank), to, 5 * TRX).build().sign(bank).broadcast()
    assert ret["result"] is True and len(ret.txid) == 64
    info = ret.wait(**WAIT)
    assert info["id"] == ret.txid and info["blockNumber"] > 0
    assert info["fee"] >= 1_000_000  # 1 TRX account-creation fee (+0.1 TRX when no staked bandwidth)
    assert client.get_account_balance(to) * TRX == 5 * TRX
    spent = (before - client.get_account_balance(addr_of(bank))) * TRX
    assert spent == 5 * TRX + info["fee"]
    back = client.trx.transfer(to, addr_of(bank), 1 * TRX).build().sign(key).broadcast().wait(**WAIT)
    assert back["receipt"]["net_usage"] > 0 and "fee" not in back  # paid by free bandwidth
    tx = client.get_transaction(back["id"])
    assert tx["ret"][0]["contractRet"] == "SUCCESS"


def test_trc20_transfer_approve_transfer_from(client: Tron, bank: PrivateKey, token: Contract) -> None:
    owner: PrivateKey = token.owner_key
    alice = funded_key(client, bank, 50 * TRX)
    bob = PrivateKey.random()
    assert token.functions.decimals() == 6
    assert token.functions.balanceOf(addr_of(owner)) == 1_000_000 * 10**6

    ret = (
        token.functions.transfer(addr_of(alice), 1_000)
        .with_owner(addr_of(owner))
        .build()
        .sign(owner)
        .broadcast()
    )
    assert ret.result(**WAIT) is True
    info = client.get_transaction_info(ret.txid)
    assert info["receipt"]["result"] == "SUCCESS" and info["receipt"]["energy_usage_total"] > 0
    events = list(token.events.Transfer.process_receipt(info))
    assert events and events[0]["args"]["value"] == 1_000
    assert token.functions.balanceOf(addr_of(alice)) == 1_000

    approve = token.functions.approve(addr_of(bob), 400).with_owner(addr_of(alice)).build().sign(alice)
    assert approve.broadcast().result(**WAIT) is True
    assert token.functions.allowance(addr_of(alice), addr_of(bob)) == 400
    client.trx.transfer(addr_of(bank), addr_of(bob), 30 * TRX).build().sign(bank).broadcast().wait(**WAIT)
    pull = token.functions.transferFrom(addr_of(alice), addr_of(bob), 300).with_owner(addr_of(bob))
    assert pull.fee_limit(50 * TRX).build().sign(bob).broadcast().result(**WAIT) is True
    assert token.functions.balanceOf(addr_of(bob)) == 300
    assert token.functions.balanceOf(addr_of(alice)) == 700
    assert token.functions.allowance(addr_of(alice), addr_of(bob)) == 100


def test_blacklisted_sender_reverts(client: Tron, bank: PrivateKey, token: Contract) -> None:
    owner: PrivateKey = token.owner_key
    evil = funded_key(client, bank, 50 * TRX)
    token.functions.transfer(addr_of(evil), 500).with_owner(addr_of(owner)).build().sign(
        owner
    ).broadcast().wait(**WAIT)
    added = token.functions.addBlackList(addr_of(evil)).with_owner(addr_of(owner)).build().sign(owner)
    added.broadcast().wait(**WAIT)
    assert token.functions.isBlackListed(addr_of(evil)) is True
    assert token.functions.getBlackListStatus(addr_of(evil)) is True
    ret = token.functions.transfer(addr_of(owner), 1).with_owner(addr_of(evil)).build().sign(evil).broadcast()
    with pytest.raises(TvmError):
        ret.result(**WAIT)
    info = client.get_transaction_info(ret.txid)
    assert info["receipt"]["result"] == "REVERT" and info["result"] == "FAILED"
    assert token.functions.balanceOf(addr_of(evil)) == 500


def test_constant_calls_and_estimate_energy(client: Tron, token: Contract, devnet: Devnet) -> None:
    owner: PrivateKey = token.owner_key
    assert token.functions.name() and token.functions.symbol()
    assert token.functions.totalSupply() >= 1_000_000 * 10**6
    usdt = client.get_contract(devnet.usdt)
    assert usdt.functions.decimals() == 6
    to = PrivateKey.random().public_key.to_hex_address()
    param = to[2:].rjust(64, "0") + format(1, "064x")
    energy = client.get_estimated_energy(
        addr_of(owner), token.contract_address, "transfer(address,uint256)", param
    )
    assert 10_000 < energy < 200_000


def test_fee_limit_too_low_out_of_energy(client: Tron, bank: PrivateKey, token: Contract) -> None:
    owner: PrivateKey = token.owner_key
    payer = funded_key(client, bank, 20 * TRX)
    token.functions.transfer(addr_of(payer), 10).with_owner(addr_of(owner)).build().sign(
        owner
    ).broadcast().wait(**WAIT)
    before = client.get_account_balance(addr_of(payer)) * TRX
    fee_limit = 50_000  # 500 energy at 100 sun: far below a transfer
    call = token.functions.transfer(addr_of(owner), 1).with_owner(addr_of(payer)).fee_limit(fee_limit)
    ret = call.build().sign(payer).broadcast()
    with pytest.raises(TvmError):
        ret.result(**WAIT)
    info = client.get_transaction_info(ret.txid)
    assert info["receipt"]["result"] == "OUT_OF_ENERGY"
    assert info["receipt"]["energy_fee"] == fee_limit  # the whole limit is burned
    after = client.get_account_balance(addr_of(payer)) * TRX
    assert before - after == info["fee"] >= fee_limit
    assert token.functions.balanceOf(addr_of(payer)) == 10


def test_freeze_delegate_unfreeze_withdraw(client: Tron, bank: PrivateKey, devnet: Devnet) -> None:
    key = funded_key(client, bank, 500 * TRX)
    receiver = funded_key(client, bank, 1 * TRX)
    me = addr_of(key)
    client.trx.freeze_balance(me, 100 * TRX, "ENERGY").build().sign(key).broadcast().wait(**WAIT)
    client.trx.freeze_balance(me, 50 * TRX, "BANDWIDTH").build().sign(key).broadcast().wait(**WAIT)
    acc = client.get_account(me)
    frozen = {f.get("type", "BANDWIDTH"): f.get("amount", 0) for f in acc["frozenV2"]}
    assert frozen["ENERGY"] == 100 * TRX and frozen["BANDWIDTH"] == 50 * TRX
    res = client.get_account_resource(me)
    assert res["EnergyLimit"] > 0 and res["tronPowerLimit"] == 150

    assert client.get_can_delegated_max_size(me, "ENERGY")["max_size"] == 100 * TRX
    deleg = client.trx.delegate_resource(me, addr_of(receiver), 40 * TRX, "ENERGY")
    deleg.build().sign(key).broadcast().wait(**WAIT)
    dr = client.get_delegated_resource_v2(me, addr_of(receiver))["delegatedResource"][0]
    assert dr["frozen_balance_for_energy"] == 40 * TRX and dr["to"] == addr_of(receiver)
    assert client.get_account_resource(addr_of(receiver))["EnergyLimit"] > 0
    index = client.get_delegated_resource_account_index_v2(me)
    assert addr_of(receiver) in index["toAccounts"]
    undeleg = client.trx.undelegate_resource(me, addr_of(receiver), 40 * TRX, "ENERGY")
    undeleg.build().sign(key).broadcast().wait(**WAIT)
    assert client.get_delegated_resource_v2(me, addr_of(receiver)) == {}

    devnet.set_params(devnetUnfreezeDelayMs=1_000)
    try:
        unf = client.trx.unfreeze_balance(me, "ENERGY", unfreeze_balance=30 * TRX)
        unf.build().sign(key).broadcast().wait(**WAIT)
        acc = client.get_account(me)
        assert acc["unfrozenV2"][0]["unfreeze_amount"] == 30 * TRX
        time.sleep(1.5)
        devnet.wait_for_block(devnet.status()["head"] + 2)
        before = client.get_account_balance(me) * TRX
        info = client.trx.withdraw_stake_balance(me).build().sign(key).broadcast().wait(**WAIT)
        assert info["withdraw_expire_amount"] == 30 * TRX
        assert client.get_account_balance(me) * TRX - before == 30 * TRX - info.get("fee", 0)
    finally:  # back to the shared devnet's genesis value (not -1: that is 14 days for every later test)
        devnet.set_params(devnetUnfreezeDelayMs=DEVNET_DEFAULT_PARAMS["devnetUnfreezeDelayMs"])


def test_vote_and_reward_withdrawal(client: Tron, bank: PrivateKey, devnet: Devnet) -> None:
    key = funded_key(client, bank, 300 * TRX)
    me = addr_of(key)
    client.trx.freeze_balance(me, 200 * TRX, "BANDWIDTH").build().sign(key).broadcast().wait(**WAIT)
    witnesses = client.list_witnesses()
    assert witnesses
    sr = witnesses[0]["address"]
    client.trx.vote_witness(me, (sr, 150)).build().sign(key).broadcast().wait(**WAIT)
    assert client.get_account(me)["votes"] == [{"vote_address": sr, "vote_count": 150}]
    deadline = time.monotonic() + 30
    reward = 0
    while time.monotonic() < deadline:
        reward = client.provider.make_request("wallet/getReward", {"address": me})["reward"]
        if reward > 0:
            break
        devnet.wait_for_block(devnet.status()["head"] + 1)
    assert reward > 0
    before = client.get_account_balance(me) * TRX
    info = client.trx.withdraw_rewards(me).build().sign(key).broadcast().wait(**WAIT)
    assert info["withdraw_amount"] >= reward
    assert client.get_account_balance(me) * TRX - before == info["withdraw_amount"] - info.get("fee", 0)


def test_multisig_2_of_3_after_permission_update(client: Tron, bank: PrivateKey) -> None:
    key = funded_key(client, bank, 300 * TRX)
    me = addr_of(key)
    k2, k3 = PrivateKey.random(), PrivateKey.random()
    perm = client.get_account_permission(me)
    perm["owner"] = {
        "type": "Owner",
        "permission_name": "owner",
        "threshold": 2,
        "keys": [{"address": addr_of(k), "weight": 1} for k in (key, k2, k3)],
    }
    perm.pop("witness", None)
    info = client.trx.account_permission_update(me, perm).build().sign(key).broadcast().wait(**WAIT)
    assert info.get("fee", 0) >= 100 * TRX  # getUpdateAccountPermissionFee
    acc = client.get_account(me)
    assert acc["owner_permission"]["threshold"] == 2

    dest = PrivateKey.random()
    one_sig = client.trx.transfer(me, addr_of(dest), 2 * TRX).build().sign(key)
    with pytest.raises(BadSignature):
        one_sig.broadcast()
    two_sig = client.trx.transfer(me, addr_of(dest), 2 * TRX).memo("two of three").build().sign(key).sign(k3)
    weight = client.get_sign_weight(two_sig)
    assert weight["current_weight"] == 2 and weight["result"] == {}
    info = two_sig.broadcast().wait(**WAIT)
    assert client.get_account_balance(addr_of(dest)) * TRX == 2 * TRX
    # 1 TRX multi-signature fee + 1 TRX memo fee + 1 TRX new-account fee (+ bandwidth)
    assert info["fee"] >= 3 * TRX


def _operations(*types: int) -> str:
    """An active permission's 32-byte operations bitmap allowing these contract types (hex)."""
    bits = bytearray(32)
    for t in types:
        bits[t // 8] |= 1 << (t % 8)
    return bits.hex()


def test_active_permission_2_of_3_with_permission_id(client: Tron, bank: PrivateKey) -> None:
    """A multi-signature active permission (Permission_id 2) as java-tron checks it: its keys' weights must
    reach the threshold, only keys of that permission count (not the owner's), a key signs once, and the
    operations bitmap limits the contract types."""
    key = funded_key(client, bank, 300 * TRX)
    me = addr_of(key)
    signers = [PrivateKey.random() for _ in range(3)]
    perm = {
        "owner": {"type": "Owner", "permission_name": "owner", "threshold": 1,
                  "keys": [{"address": me, "weight": 1}]},
        "actives": [{"type": "Active", "permission_name": "payouts", "threshold": 2,
                     "operations": _operations(1, 31),  # TransferContract, TriggerSmartContract
                     "keys": [{"address": addr_of(k), "weight": 1} for k in signers]}],
    }  # fmt: skip
    client.trx.account_permission_update(me, perm).build().sign(key).broadcast().wait(**WAIT)
    active = client.get_account(me)["active_permission"]
    assert [(p["id"], p["threshold"], len(p["keys"])) for p in active] == [(2, 2, 3)]

    dest = addr_of(PrivateKey.random())

    def transfer(amount: int) -> Any:
        return client.trx.transfer(me, dest, amount).permission_id(2).build()

    with pytest.raises(BadSignature, match="sig error"):
        transfer(1 * TRX).sign(signers[0]).broadcast()
    with pytest.raises(BadSignature, match="has signed twice"):
        transfer(2 * TRX).sign(signers[0]).sign(signers[0]).broadcast()
    owner_signed = transfer(3 * TRX)
    owner_signed.set_signature([key.sign_msg_hash(bytes.fromhex(owner_signed.txid)).hex()])
    with pytest.raises(BadSignature, match="not contained of permission"):
        owner_signed.broadcast()
    freeze = client.trx.freeze_balance(me, 10 * TRX, "ENERGY").permission_id(2).build()
    with pytest.raises(BadSignature, match="Permission denied"):
        freeze.sign(signers[0]).sign(signers[1]).broadcast()
    with pytest.raises(BadSignature, match="permission isn't exit"):
        client.trx.transfer(me, dest, TRX).permission_id(3).build().sign(signers[0]).broadcast()

    two = transfer(4 * TRX).sign(signers[0]).sign(signers[2])
    assert client.get_sign_weight(two)["current_weight"] == 2
    info = two.broadcast().wait(**WAIT)
    assert client.get_account_balance(dest) * TRX == 4 * TRX
    assert info["fee"] >= 2 * TRX  # 1 TRX multi-signature fee + 1 TRX new-account fee (+ bandwidth)
    # The owner permission still works alone.
    client.trx.transfer(me, dest, TRX).build().sign(key).broadcast().wait(**WAIT)
    assert client.get_account_balance(dest) * TRX == 5 * TRX


def test_rejections_expired_duplicate_bad_signature(client: Tron, bank: PrivateKey) -> None:
    me = addr_of(bank)
    dest = PrivateKey.random().public_key.to_base58check_address()
    ok = client.trx.transfer(me, dest, 1 * TRX).build().sign(bank)
    ok.broadcast().wait(**WAIT)
    with pytest.raises(UnknownError) as dup:
        ok.broadcast()
    assert "DUP_TRANSACTION_ERROR" in str(dup.value.args)

    short = client.trx.transfer(me, dest, 2).expiration(1_000).build().sign(bank)
    time.sleep(2.5)
    with pytest.raises(TransactionError, match=r"(?i)expir"):
        short.broadcast()

    bad = client.trx.transfer(me, dest, 3).build()
    bad.set_signature([PrivateKey.random().sign_msg_hash(bytes.fromhex(bad.txid)).hex()])
    with pytest.raises(BadSignature, match="Validate signature error"):
        bad.broadcast()
    tampered = client.trx.transfer(me, dest, 4).build().sign(bank)
    tampered._raw_data["contract"][0]["parameter"]["value"]["amount"] = 4_000_000  # txID no longer matches
    with pytest.raises(BadSignature):
        tampered.broadcast()


async def test_async_client(devnet: Devnet) -> None:
    bank = PrivateKey(bytes.fromhex(devnet.funded[3]["private_key"]))
    async with AsyncTron(AsyncHTTPProvider(devnet.url, timeout=30)) as client:
        to = PrivateKey.random()
        txb = client.trx.transfer(addr_of(bank), addr_of(to), 3 * TRX)
        txn = await txb.build()
        ret = await txn.sign(bank).broadcast()
        info: dict[str, Any] = await ret.wait(**WAIT)
        assert info["id"] == ret.txid
        assert await client.get_account_balance(addr_of(to)) == 3
        usdt = await client.get_contract(devnet.usdt)
        assert await usdt.functions.decimals() == 6
        balance = await usdt.functions.balanceOf(addr_of(bank))
        call = await usdt.functions.transfer(addr_of(to), 7)
        signed = (await call.with_owner(addr_of(bank)).fee_limit(100 * TRX).build()).sign(bank)
        assert await (await signed.broadcast()).result(**WAIT) is True
        assert await usdt.functions.balanceOf(addr_of(to)) == 7
        assert await usdt.functions.balanceOf(addr_of(bank)) == balance - 7
        block = await client.get_latest_block()
        assert block["block_header"]["raw_data"]["number"] > 0
