"""Actuators through the Node: TRC20 via the TVM (success, revert, out of energy), Stake 2.0, votes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devnet import crypto
from devnet.actuators import contract_address_for
from devnet.genesis import ARTIFACT, USDT_ADDRESS
from devnet.node import ContractExeError, ContractValidateError, Node, NodeConfig
from devnet.pb import contract_pb2, tron_pb2
from tests.devnet.test_chain import (
    ADDRS,
    KEYS,
    balance,
    build,
    fresh_key,
    mined_info,
    present,
    send_ok,
    sign,
)

ZERO = b"\x41" + bytes(20)
SUCCESS = tron_pb2.Transaction.Result.SUCCESS


def selector(sig: str) -> bytes:
    return crypto.keccak256(sig.encode())[:4]


def word(x: int | bytes) -> bytes:
    if isinstance(x, bytes):
        return bytes(12) + x[-20:]
    return x.to_bytes(32, "big")


def usdt_balance(node: Node, addr: bytes) -> int:
    r = node.trigger_constant(ZERO, USDT_ADDRESS, selector("balanceOf(address)") + word(addr))
    assert r.result == "SUCCESS"
    return int.from_bytes(r.return_data, "big")


def trigger(node: Node, key: bytes, data: bytes, fee_limit: int = 100_000_000) -> tron_pb2.Transaction:
    c = contract_pb2.TriggerSmartContract(
        owner_address=crypto.address_from_private_key(key), contract_address=USDT_ADDRESS, data=data
    )
    return sign(build(node, "TriggerSmartContract", c, fee_limit=fee_limit), key)


def system(node: Node, key: bytes, type_name: str, **fields: Any) -> tron_pb2.Transaction:
    cls = getattr(contract_pb2, type_name)
    c = cls(owner_address=crypto.address_from_private_key(key), **fields)
    return sign(build(node, type_name, c), key)


def run_ok(node: Node, tx: tron_pb2.Transaction) -> tron_pb2.TransactionInfo:
    return mined_info(node, send_ok(node, tx))


def rejected(node: Node, tx: tron_pb2.Transaction) -> str:
    r = node.broadcast(tx)
    assert r.code == "CONTRACT_VALIDATE_ERROR", (r.code, r.message)
    return r.message.removeprefix("Contract validate error : ")


@pytest.fixture
def node() -> Node:
    return Node.open(NodeConfig(solidity_lag=1))


def test_trc20_transfer_receipt_and_logs(node: Node) -> None:
    _, new = fresh_key("trc20-recipient")
    before_trx = balance(node, ADDRS[1])
    tx = trigger(node, KEYS[1], selector("transfer(address,uint256)") + word(new) + word(5_000_000))
    info = run_ok(node, tx)
    assert info.receipt.result == SUCCESS and info.result == 0  # SUCESS (sic)
    assert info.contractResult[0] == word(1)
    assert info.contract_address == USDT_ADDRESS
    used = info.receipt.energy_usage_total
    assert 10_000 < used < 100_000 and info.receipt.energy_fee == used * 100
    assert info.fee == info.receipt.energy_fee + info.receipt.net_fee
    assert balance(node, ADDRS[1]) == before_trx - info.fee
    (log,) = info.log
    assert log.address == USDT_ADDRESS[1:]
    assert log.topics[0].hex() == "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
    assert log.topics[2] == word(new) and int.from_bytes(log.data, "big") == 5_000_000
    assert usdt_balance(node, new) == 5_000_000
    assert present(node.transaction(codec_id(tx))).ret[0].contractRet == SUCCESS


def codec_id(tx: tron_pb2.Transaction) -> bytes:
    from devnet import codec

    return codec.tx_id(tx)


def test_blacklisted_sender_reverts_and_pays_used_energy(node: Node) -> None:
    run_ok(node, trigger(node, KEYS[0], selector("addBlackList(address)") + word(ADDRS[2])))
    r = node.trigger_constant(ZERO, USDT_ADDRESS, selector("isBlackListed(address)") + word(ADDRS[2]))
    assert int.from_bytes(r.return_data, "big") == 1
    before = usdt_balance(node, ADDRS[2])
    trx_before = balance(node, ADDRS[2])
    data = selector("transfer(address,uint256)") + word(ADDRS[3]) + word(1)
    info = run_ok(node, trigger(node, KEYS[2], data))
    assert info.receipt.result == tron_pb2.Transaction.Result.REVERT
    assert info.result == tron_pb2.TransactionInfo.FAILED and info.resMessage == b"REVERT opcode executed"
    assert info.contractResult[0][:4].hex() == "08c379a0" and not info.log
    assert 0 < info.receipt.energy_usage_total < 100_000_000 // 100
    assert balance(node, ADDRS[2]) == trx_before - info.fee
    assert usdt_balance(node, ADDRS[2]) == before


def test_out_of_energy_burns_the_fee_limit(node: Node) -> None:
    before = balance(node, ADDRS[3])
    data = selector("transfer(address,uint256)") + word(ADDRS[4]) + word(1)
    info = run_ok(node, trigger(node, KEYS[3], data, fee_limit=500_000))
    assert info.receipt.result == tron_pb2.Transaction.Result.OUT_OF_ENERGY
    assert info.receipt.energy_usage_total == 5_000 and info.receipt.energy_fee == 500_000
    assert balance(node, ADDRS[3]) == before - info.fee
    assert info.resMessage.startswith(b"Not enough energy")


def test_fee_limit_caps_staked_energy_too(node: Node) -> None:
    """getAccountEnergyLimitWithFixRatio: fee_limit / price bounds the whole energy limit, staked energy
    included — plenty of stake does not save a transfer whose fee_limit is too low."""
    run_ok(node, system(node, KEYS[6], "FreezeBalanceV2Contract", frozen_balance=10_000_000_000, resource=1))
    assert present(node.account_resource(ADDRS[6]))["EnergyLimit"] > 1_000_000
    data = selector("transfer(address,uint256)") + word(ADDRS[4]) + word(1)
    info = run_ok(node, trigger(node, KEYS[6], data, fee_limit=300_000))
    assert info.receipt.result == tron_pb2.Transaction.Result.OUT_OF_ENERGY
    assert info.receipt.energy_usage_total == 3_000 == info.receipt.energy_usage  # all of it from stake
    assert info.receipt.energy_fee == 0


def test_fee_limit_above_maximum_is_rejected(node: Node) -> None:
    msg = rejected(node, trigger(node, KEYS[3], selector("decimals()"), fee_limit=15_000_000_001))
    assert msg == "feeLimit must be >= 0 and <= 15000000000"


def test_constant_call_estimate_and_unknown_contract(node: Node) -> None:
    r = node.trigger_constant(ZERO, USDT_ADDRESS, selector("decimals()"))
    assert int.from_bytes(r.return_data, "big") == 6
    data = selector("transfer(address,uint256)") + word(ADDRS[5]) + word(1)
    energy = node.estimate_energy(ADDRS[1], USDT_ADDRESS, data)
    used = node.trigger_constant(ADDRS[1], USDT_ADDRESS, data).energy_used
    assert used <= energy <= 2 * used + 10_000  # java-tron's search overshoots small calls (~2x)
    with pytest.raises(ContractExeError):
        node.estimate_energy(
            ADDRS[1], USDT_ADDRESS, selector("transfer(address,uint256)") + word(ADDRS[5]) + word(10**30)
        )
    with pytest.raises(ContractValidateError):
        node.trigger_constant(ZERO, b"\x41" + b"\x09" * 20, selector("decimals()"))


def test_create_smart_contract_address_and_getcontract(node: Node) -> None:
    art = json.loads(ARTIFACT.read_text())
    init = bytes.fromhex(art["bytecode"].removeprefix("0x")) + word(ADDRS[6]) + word(10**12)
    nc = contract_pb2.SmartContract(
        origin_address=ADDRS[6],
        bytecode=init,
        name="Tok",
        consume_user_resource_percent=100,
        origin_energy_limit=10_000_000,
    )
    c = contract_pb2.CreateSmartContract(owner_address=ADDRS[6], new_contract=nc)
    tx = sign(build(node, "CreateSmartContract", c, fee_limit=5_000_000_000), KEYS[6])
    txid = send_ok(node, tx)
    info = mined_info(node, txid)
    expected = contract_address_for(txid, ADDRS[6])
    assert info.contract_address == expected and info.receipt.result == SUCCESS
    sc = node.contract(expected)
    assert (
        sc is not None
        and sc.name == "Tok"
        and sc.code_hash == crypto.keccak256(present(node.contract_info(expected))["runtimecode"])
    )
    assert present(node.account(expected)).type == tron_pb2.Contract
    r = node.trigger_constant(ZERO, expected, selector("balanceOf(address)") + word(ADDRS[6]))
    assert int.from_bytes(r.return_data, "big") == 10**12


def test_freeze_unfreeze_withdraw_cancel(node: Node) -> None:
    node.set_params({"devnetUnfreezeDelayMs": 6_000})
    key, addr = KEYS[5], ADDRS[5]
    assert rejected(node, system(node, key, "FreezeBalanceV2Contract", frozen_balance=10)) == (
        "frozenBalance must be greater than or equal to 1 TRX"
    )
    start = balance(node, addr)
    run_ok(node, system(node, key, "FreezeBalanceV2Contract", frozen_balance=100_000_000, resource=1))
    res = present(node.account_resource(addr))
    assert res["EnergyLimit"] == 180_000_000_000 and res["TotalEnergyWeight"] == 100
    assert res["tronPowerLimit"] == 100
    too_much = system(node, key, "UnfreezeBalanceV2Contract", unfreeze_balance=10**9, resource=1)
    assert rejected(node, too_much) == "Invalid unfreeze_balance, [1000000000] is error"
    run_ok(node, system(node, key, "UnfreezeBalanceV2Contract", unfreeze_balance=40_000_000, resource=1))
    acc = present(node.account(addr))
    assert acc.unfrozenV2[0].unfreeze_amount == 40_000_000 and node.available_unfreeze_count(addr) == 31
    early = system(node, key, "WithdrawExpireUnfreezeContract")
    assert rejected(node, early) == "no unFreeze balance to withdraw "
    node.mine(2, spacing_ms=3000)  # let the 6 s unfreeze delay pass
    info = run_ok(node, system(node, key, "WithdrawExpireUnfreezeContract"))
    assert info.withdraw_expire_amount == 40_000_000
    # cancel: a fresh unfreeze goes back to stake
    run_ok(node, system(node, key, "UnfreezeBalanceV2Contract", unfreeze_balance=10_000_000, resource=1))
    info = run_ok(node, system(node, key, "CancelAllUnfreezeV2Contract"))
    assert dict(info.cancel_unfreezeV2_amount)["ENERGY"] == 10_000_000
    assert present(node.account(addr)).frozenV2[1].amount == 60_000_000
    fees = start - balance(node, addr) - 60_000_000
    assert fees >= 0


def test_delegate_and_undelegate_with_lock(node: Node) -> None:
    key, owner, recv = KEYS[6], ADDRS[6], ADDRS[7]
    run_ok(node, system(node, key, "FreezeBalanceV2Contract", frozen_balance=50_000_000, resource=1))
    assert node.can_delegate_max(owner, 1) == 50_000_000
    assert rejected(
        node,
        system(node, key, "DelegateResourceContract", resource=1, balance=60_000_000, receiver_address=recv),
    ) == ("delegateBalance must be less than or equal to available FreezeEnergyV2 balance")
    run_ok(
        node,
        system(node, key, "DelegateResourceContract", resource=1, balance=20_000_000, receiver_address=recv),
    )
    run_ok(
        node,
        system(
            node,
            key,
            "DelegateResourceContract",
            resource=1,
            balance=10_000_000,
            receiver_address=recv,
            lock=True,
            lock_period=100,
        ),
    )
    assert present(node.account_resource(recv))["EnergyLimit"] > 0
    entries = node.delegated_resource(owner, recv)
    assert [e["frozen_balance_for_energy"] for e in entries] == [20_000_000, 10_000_000]
    assert "expire_time_for_energy" in entries[1]
    assert node.delegated_resource_index(owner) == ([], [recv])
    # the receiver pays a TRC20 transfer with the delegated energy, nothing burned
    data = selector("transfer(address,uint256)") + word(ADDRS[1]) + word(1)
    info = run_ok(node, trigger(node, KEYS[7], data))
    assert info.receipt.energy_usage == info.receipt.energy_usage_total > 0 and info.receipt.energy_fee == 0
    used = present(node.account_resource(recv))["EnergyUsed"]
    msg = rejected(
        node,
        system(
            node, key, "UnDelegateResourceContract", resource=1, balance=25_000_000, receiver_address=recv
        ),
    )
    assert msg == "insufficient delegateFrozenBalance(Energy), request=25000000, unlock_balance=20000000"
    run_ok(
        node,
        system(
            node, key, "UnDelegateResourceContract", resource=1, balance=20_000_000, receiver_address=recv
        ),
    )
    # two thirds of the stake went back, and with it two thirds of the receiver's usage (±2 for the
    # linear recovery between the slots the values are read at)
    assert abs(present(node.account_resource(owner))["EnergyUsed"] - used * 2 // 3) <= 2
    assert abs(present(node.account_resource(recv))["EnergyUsed"] - (used - used * 2 // 3)) <= 2
    acc = present(node.account(owner))
    assert acc.frozenV2[1].amount == 40_000_000
    assert acc.account_resource.delegated_frozenV2_balance_for_energy == 10_000_000
    assert (
        present(node.account(recv)).account_resource.acquired_delegated_frozenV2_balance_for_energy
        == 10_000_000
    )


def test_vote_reward_and_withdraw(node: Node) -> None:
    witness = next(a.address for a in node.genesis_accounts() if a.is_witness)
    key, voter = KEYS[8], ADDRS[8]
    assert rejected(
        node,
        system(
            node,
            key,
            "VoteWitnessContract",
            votes=[contract_pb2.VoteWitnessContract.Vote(vote_address=witness, vote_count=5)],
        ),
    ) == ("The total number of votes[5000000] is greater than the tronPower[0]")
    run_ok(node, system(node, key, "FreezeBalanceV2Contract", frozen_balance=20_000_000, resource=0))
    assert rejected(
        node,
        system(
            node,
            key,
            "VoteWitnessContract",
            votes=[contract_pb2.VoteWitnessContract.Vote(vote_address=ADDRS[1], vote_count=5)],
        ),
    ) == (f"Witness[{ADDRS[1].hex()}] not exists")
    run_ok(
        node,
        system(
            node,
            key,
            "VoteWitnessContract",
            votes=[contract_pb2.VoteWitnessContract.Vote(vote_address=witness, vote_count=20)],
        ),
    )
    assert present(node.account(voter)).votes[0].vote_count == 20
    assert present(node.account_resource(voter))["tronPowerUsed"] == 20
    node.mine(3)
    reward = node.reward(voter)
    # all votes are ours: 80 % of (16 + 160) TRX for the vote's own block and each of the 3 after it
    assert reward == 4 * (16_000_000 + 160_000_000) * 80 // 100
    before = balance(node, voter)
    info = run_ok(node, system(node, key, "WithdrawBalanceContract"))
    assert info.withdraw_amount >= reward
    assert balance(node, voter) == before + info.withdraw_amount - info.fee
    msg = rejected(node, system(node, key, "WithdrawBalanceContract"))
    assert msg.endswith("less than 24 hours")
    node.set_params({"devnetWithdrawIntervalMs": 0})
    run_ok(node, system(node, key, "WithdrawBalanceContract"))
    assert node.witnesses()[0].voteCount in (0, 20)  # tallied at the next maintenance


def test_account_create(node: Node) -> None:
    _, new = fresh_key("created")
    info = run_ok(node, system(node, KEYS[1], "AccountCreateContract", account_address=new))
    assert info.fee == 1_000_000 + info.receipt.net_fee and info.receipt.net_fee == 100_000
    assert node.account(new) is not None
    assert rejected(node, system(node, KEYS[1], "AccountCreateContract", account_address=new)) == (
        "Account has existed"
    )


def test_unfreezing_tron_power_scales_votes_down(node: Node) -> None:
    witness = next(a.address for a in node.genesis_accounts() if a.is_witness)
    key, voter = KEYS[9], ADDRS[9]
    run_ok(node, system(node, key, "FreezeBalanceV2Contract", frozen_balance=10_000_000, resource=2))
    run_ok(
        node,
        system(
            node,
            key,
            "VoteWitnessContract",
            votes=[contract_pb2.VoteWitnessContract.Vote(vote_address=witness, vote_count=10)],
        ),
    )
    run_ok(node, system(node, key, "UnfreezeBalanceV2Contract", unfreeze_balance=4_000_000, resource=2))
    acc = present(node.account(voter))
    assert [v.vote_count for v in acc.votes] == [6]
    assert present(node.account_resource(voter))["tronPowerLimit"] == 6
