"""Genesis profiles: the devnet's deliberate shortcuts and the `mainnet` profile that removes them
(unfreeze delay, maintenance interval, network-wide stake, USDT's dynamic-energy factor)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devnet import genesis
from devnet.node import Node, NodeConfig
from devnet.pb import tron_pb2
from tests.devnet.test_actuators import run_ok, selector, system, trigger, word
from tests.devnet.test_chain import ADDRS, KEYS, fresh_key
from tests.harness.devnet import DevnetFactory

TRANSFER = selector("transfer(address,uint256)")
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
    for node in (devnet_node, mainnet_node):
        _, holder = fresh_key("profile-usdt-holder")
        run_ok(node, trigger(node, KEYS[1], TRANSFER + word(holder) + word(7)))  # new holder slot
        infos.append(run_ok(node, trigger(node, KEYS[1], TRANSFER + word(holder) + word(7))))
    base, mainnet = infos[0].receipt, infos[1].receipt
    assert base.result == mainnet.result == tron_pb2.Transaction.Result.SUCCESS
    assert base.energy_penalty_total == 0
    assert mainnet.energy_usage_total == base.energy_usage_total * 44_000 // 10_000
    assert mainnet.energy_penalty_total == mainnet.energy_usage_total - base.energy_usage_total
    assert mainnet.energy_fee == mainnet.energy_usage_total * 100
    # constant calls and estimates see the same factor
    call = TRANSFER + word(ADDRS[2]) + word(1)
    plain = devnet_node.trigger_constant(ADDRS[1], genesis.USDT_ADDRESS, call)
    scaled = mainnet_node.trigger_constant(ADDRS[1], genesis.USDT_ADDRESS, call)
    assert scaled.energy_used == plain.energy_used * 44_000 // 10_000
    assert scaled.energy_penalty == scaled.energy_used - plain.energy_used
    assert mainnet_node.estimate_energy(ADDRS[1], genesis.USDT_ADDRESS, call) > devnet_node.estimate_energy(
        ADDRS[1], genesis.USDT_ADDRESS, call
    )


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
