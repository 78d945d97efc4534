"""Forks (/devnet/fork): included transfers vanish from the replaced branch; solid blocks never change."""

from __future__ import annotations

import pytest

from tests.harness.devnet import Devnet, DevnetError


def test_fork_removes_included_transfer(devnet_manual: Devnet) -> None:
    node = devnet_manual
    owner, to = node.funded[0], node.new_account()
    node.mine(1)
    tx = node.transfer_tx(owner, to["hex"], 2_000_000)
    assert node.broadcast(tx)["result"] is True
    mined = node.mine(1)
    info = node.post("wallet/gettransactioninfobyid", {"value": tx["txID"]})
    assert info["blockNumber"] == mined["head"]
    assert node.post("wallet/getaccount", {"address": to["hex"]})["balance"] == 2_000_000
    old_block = node.post("wallet/getblockbynum", {"num": mined["head"]})

    forked = node.fork(1)
    assert forked["head"] == mined["head"] + 1  # the new branch is one block longer
    assert node.post("wallet/getblockbynum", {"num": mined["head"]})["blockID"] != old_block["blockID"]
    assert node.post("wallet/gettransactioninfobyid", {"value": tx["txID"]}) == {}
    assert node.post("wallet/gettransactionbyid", {"value": tx["txID"]}) == {}
    assert node.post("wallet/getaccount", {"address": to["hex"]}) == {}
    # parent links of the new branch are consistent
    new_top = node.post("wallet/getnowblock")
    parent = node.post("wallet/getblockbynum", {"num": new_top["block_header"]["raw_data"]["number"] - 1})
    assert new_top["block_header"]["raw_data"]["parentHash"] == parent["blockID"]


def test_fork_reinclude_moves_transfer(devnet_manual: Devnet) -> None:
    node = devnet_manual
    owner, to = node.funded[1], node.new_account()
    tx = node.transfer_tx(owner, to["hex"], 3_000_000)
    assert node.broadcast(tx)["result"] is True
    first = node.mine(1)["head"]
    node.fork(1, reinclude=True)
    info = node.wait_for_tx(tx["txID"], timeout=10)
    assert info["blockNumber"] >= first
    assert node.post("wallet/getaccount", {"address": to["hex"]})["balance"] == 3_000_000


def test_solid_blocks_never_change(devnet_manual: Devnet) -> None:
    node = devnet_manual
    node.mine(node.solidity_lag + 2)
    st = node.status()
    solid = {
        n: node.post("walletsolidity/getblockbynum", {"num": n})
        for n in range(max(0, st["solid"] - 2), st["solid"] + 1)
    }
    assert all(b for b in solid.values())
    depth = st["head"] - st["solid"]
    with pytest.raises(DevnetError, match="400"):
        node.fork(depth + 1)  # would replace the solid block
    node.fork(depth)  # replaces everything above solid, allowed
    for n, block in solid.items():
        assert node.post("wallet/getblockbynum", {"num": n})["blockID"] == block["blockID"]
        assert node.post("walletsolidity/getblockbynum", {"num": n})["blockID"] == block["blockID"]


def test_mine_time_travel(devnet_manual: Devnet) -> None:
    node = devnet_manual
    before = node.status()["head_timestamp"]
    node.mine(2, spacing_ms=5_000)  # small: the node is shared, wall-clock expirations must stay valid
    assert node.status()["head_timestamp"] == before + 2 * 5_000


def test_walletsolidity_lags_until_solid(devnet_manual: Devnet) -> None:
    node = devnet_manual
    to = node.new_account()
    tx = node.transfer_tx(node.funded[2], to["hex"], 4_000_000)
    assert node.broadcast(tx)["result"] is True
    node.mine(1)
    assert node.post("wallet/getaccount", {"address": to["hex"]})["balance"] == 4_000_000
    assert node.post("walletsolidity/getaccount", {"address": to["hex"]}) == {}
    assert node.post("walletsolidity/gettransactioninfobyid", {"value": tx["txID"]}) == {}
    assert node.post("walletsolidity/gettransactionbyid", {"value": tx["txID"]}) == {}
    node.mine(node.solidity_lag)
    assert node.post("walletsolidity/getaccount", {"address": to["hex"]})["balance"] == 4_000_000
    assert node.post("walletsolidity/gettransactioninfobyid", {"value": tx["txID"]})["id"] == tx["txID"]
    assert node.post("walletsolidity/gettransactionbyid", {"value": tx["txID"]})["txID"] == tx["txID"]


def test_walletsolidity_contract_calls_run_on_the_solid_state(devnet_manual: Devnet) -> None:
    """walletsolidity/triggerconstantcontract and estimateenergy execute against the solid block's state."""
    node = devnet_manual
    holder = node.new_account()
    tx = node.trc20_transfer_tx(node.funded[3], node.usdt_hex, holder["hex"], 4_321)
    assert node.broadcast(tx)["result"] is True
    node.mine(1)
    call = {
        "owner_address": node.funded[3]["hex"],
        "contract_address": node.usdt_hex,
        "function_selector": "balanceOf(address)",
        "parameter": holder["hex"][2:].rjust(64, "0"),
    }

    def balance_of(prefix: str) -> int:
        return int(node.post(f"{prefix}/triggerconstantcontract", call)["constant_result"][0], 16)

    assert balance_of("wallet") == 4_321 and balance_of("walletsolidity") == 0
    node.mine(node.solidity_lag)
    assert balance_of("walletsolidity") == 4_321
    assert node.post("walletsolidity/estimateenergy", call)["energy_required"] > 0
