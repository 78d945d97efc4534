"""Genesis profiles: the devnet's deliberate shortcuts and the `mainnet` profile that removes them
(unfreeze delay, maintenance interval, network-wide stake, USDT's dynamic-energy factor)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devnet import crypto, genesis
from devnet.node import Node, NodeConfig
from devnet.pb import contract_pb2, tron_pb2
from tests.devnet.test_actuators import run_ok, selector, system, trigger, word
from tests.devnet.test_chain import ADDRS, KEYS, build, fresh_key, sign
from tests.harness.devnet import DevnetFactory

TRANSFER = selector("transfer(address,uint256)")
DISBURSE = selector("disburse(bytes32,address,uint256)")
TRONPY_DEFAULT_FEE_LIMIT = 10_000_000  # 10 TRX


@pytest.fixture(scope="module")
def devnet_node() -> Node:
    return Node.open(NodeConfig(solidity_lag=1))


@pytest.fixture(scope="module")
def mainnet_node() -> Node:
    return Node.open(NodeConfig(solidity_lag=1, profile="mainnet"))


def test_profiles_set_the_documented_values(devnet_node: Node, mainnet_node: Node) -> None:
    assert devnet_node.params.unfreeze_delay_ms == 9_000
    assert devnet_node.params["getMaintenanceTimeInterval"] == 60_000
    assert mainnet_node.params.unfreeze_delay_ms == 14 * 86_400_000
    assert mainnet_node.params["getMaintenanceTimeInterval"] == 21_600_000
    assert "TotalEnergyWeight" not in (devnet_node.account_resource(ADDRS[1]) or {})
    res = mainnet_node.account_resource(ADDRS[1])
    assert res is not None and res["TotalEnergyWeight"] == 19_000_000_000
    assert res["TotalNetWeight"] == 43_000_000_000
    info = mainnet_node.contract_info(genesis.USDT_ADDRESS)
    assert info is not None and info["contract_state"]["energy_factor"] == 34_000


def test_staking_yields_mainnet_like_energy(devnet_node: Node, mainnet_node: Node) -> None:
    """On the devnet profile the first staker owns the whole energy limit; on mainnet 1 000 TRX ≈ 9 500."""
    for node in (devnet_node, mainnet_node):
        run_ok(
            node, system(node, KEYS[5], "FreezeBalanceV2Contract", frozen_balance=1_000_000_000, resource=1)
        )
    assert devnet_node.account_resource(ADDRS[5])["EnergyLimit"] == 180_000_000_000  # type: ignore[index]
    limit = mainnet_node.account_resource(ADDRS[5])["EnergyLimit"]  # type: ignore[index]
    assert limit == 1_000 * 180_000_000_000 // (19_000_000_000 + 1_000)


def test_usdt_energy_factor_charges_the_penalty(devnet_node: Node, mainnet_node: Node) -> None:
    infos = []
    _, holder = fresh_key("profile-usdt-holder")
    transfer = TRANSFER + word(holder) + word(7)
    for node in (devnet_node, mainnet_node):
        run_ok(node, trigger(node, KEYS[1], transfer))  # new holder slot
        infos.append(run_ok(node, trigger(node, KEYS[1], transfer)))
    base, mainnet = infos[0].receipt, infos[1].receipt
    assert base.result == mainnet.result == tron_pb2.Transaction.Result.SUCCESS
    assert base.energy_penalty_total == 0
    assert mainnet.energy_penalty_total == mainnet.energy_usage_total - base.energy_usage_total
    # TIP-491 charges floor(energy * 3.4) per opcode: below the whole call scaled by at most one unit for
    # each of the 327 opcodes a transfer runs.
    whole = base.energy_usage_total * 34_000 // 10_000
    assert whole - 327 <= mainnet.energy_penalty_total < whole
    assert mainnet.energy_fee == mainnet.energy_usage_total * 100
    # constant calls and estimates see the same penalties as the transaction
    plain = devnet_node.trigger_constant(ADDRS[1], genesis.USDT_ADDRESS, transfer)
    scaled = mainnet_node.trigger_constant(ADDRS[1], genesis.USDT_ADDRESS, transfer)
    assert (plain.energy_used, plain.energy_penalty) == (base.energy_usage_total, 0)
    assert scaled.energy_used == mainnet.energy_usage_total
    assert scaled.energy_penalty == mainnet.energy_penalty_total
    estimates = [
        node.estimate_energy(ADDRS[1], genesis.USDT_ADDRESS, transfer) for node in (devnet_node, mainnet_node)
    ]
    assert estimates[1] >= scaled.energy_used > estimates[0]


def disburse(node: Node, payout: str, to: bytes, amount: int) -> tron_pb2.TransactionInfo:
    """PayoutRouterV0.disburse by the genesis disburser."""
    key = genesis.PAYOUT_ROLE_KEYS["payout_disburser"]
    c = contract_pb2.TriggerSmartContract(
        owner_address=crypto.address_from_private_key(key),
        contract_address=genesis.PAYOUT_ROUTER_V0_ADDRESS,
        data=DISBURSE + crypto.sha256(payout.encode()) + word(to) + word(amount),
    )
    return run_ok(node, sign(build(node, "TriggerSmartContract", c, fee_limit=1_000_000_000), key))


def test_router_pays_the_usdt_factor_inside_usdt_only(devnet_node: Node, mainnet_node: Node) -> None:
    """payout-router.md: internal calls into USDT count USDT's factor on the energy spent inside USDT."""
    _, to = fresh_key("profile-router-recipient")
    receipts = []
    for node in (devnet_node, mainnet_node):
        disburse(node, "profile-payout-1", to, 5)  # new holder, the day's first payout
        info = disburse(node, "profile-payout-2", to, 5)
        assert info.receipt.result == tron_pb2.Transaction.Result.SUCCESS
        assert len(info.log) == 2  # Transfer, Paid
        receipts.append(info.receipt)
    base, mainnet = receipts
    assert base.energy_penalty_total == 0
    assert mainnet.energy_usage_total == base.energy_usage_total + mainnet.energy_penalty_total
    # The router's USDT frames (balanceOf once, isBlackListed, transfer) run as they do when called directly
    # from the router's address; their penalties add up to the receipt's: the router's own opcodes pay none.
    router = genesis.PAYOUT_ROUTER_V0_ADDRESS
    usdt_calls = [
        selector("balanceOf(address)") + word(router),
        selector("isBlackListed(address)") + word(to),
        TRANSFER + word(to) + word(5),
    ]
    inside = [mainnet_node.trigger_constant(router, genesis.USDT_ADDRESS, data) for data in usdt_calls]
    assert mainnet.energy_penalty_total == sum(r.energy_penalty for r in inside)
    # About 3.4 times the energy spent inside USDT (one floor per opcode, fewer than 500 opcodes there);
    # the router's own ~30k would add ~100k more if it were charged.
    usdt_base = sum(r.energy_used - r.energy_penalty for r in inside)
    assert usdt_base * 34_000 // 10_000 - 500 <= mainnet.energy_penalty_total <= usdt_base * 34_000 // 10_000


def test_tronpy_default_fee_limit_fails_for_a_new_usdt_holder_only_on_mainnet(
    devnet_node: Node, mainnet_node: Node
) -> None:
    """The trap the mainnet profile exists for: 10 TRX covers a USDT transfer to a new holder on the devnet
    profile but not on mainnet (≈ 124k energy * 100 sun), where the whole limit burns."""
    results = []
    for node in (devnet_node, mainnet_node):
        _, newcomer = fresh_key("profile-newcomer")
        data = TRANSFER + word(newcomer) + word(1)
        results.append(run_ok(node, trigger(node, KEYS[3], data, fee_limit=TRONPY_DEFAULT_FEE_LIMIT)))
    ok, out = results
    assert ok.receipt.result == tron_pb2.Transaction.Result.SUCCESS
    assert out.receipt.result == tron_pb2.Transaction.Result.OUT_OF_ENERGY
    assert out.receipt.energy_usage_total == TRONPY_DEFAULT_FEE_LIMIT // 100
    assert out.receipt.energy_fee == TRONPY_DEFAULT_FEE_LIMIT


def test_genesis_file_picks_a_profile_and_overrides_single_settings(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text(
        json.dumps({"profile": "mainnet", "usdt_energy_factor": 0, "params": {"getEnergyFee": 210}})
    )
    node = Node.open(NodeConfig(genesis_file=path))
    assert node.params.unfreeze_delay_ms == 14 * 86_400_000 and node.params.energy_fee == 210
    info = node.contract_info(genesis.USDT_ADDRESS)
    assert info is not None and info["contract_state"]["energy_factor"] == 0
    with pytest.raises(ValueError, match="unknown genesis profile"):
        genesis.GenesisSpec.load(None, profile="testnet")


def test_cli_mainnet_flag(devnet_factory: DevnetFactory) -> None:
    d = devnet_factory(manual=True, extra_args=["--mainnet"])
    params = {p["key"]: p.get("value", 0) for p in d.post("wallet/getchainparameters")["chainParameter"]}
    assert params["getMaintenanceTimeInterval"] == 21_600_000
    info = d.get("wallet/getcontractinfo", value=d.usdt_hex)
    assert info["contract_state"]["energy_factor"] == 34_000
    res = d.post("wallet/getaccountresource", {"address": d.funded[1]["hex"]})
    assert res["TotalEnergyWeight"] == 19_000_000_000
