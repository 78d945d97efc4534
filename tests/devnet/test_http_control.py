"""/devnet/* control endpoints: faucet, mine, pause/resume, params, status."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.harness.devnet import Devnet, DevnetError


def test_faucet_trx_and_usdt(devnet_manual: Devnet) -> None:
    node = devnet_manual
    who = node.new_account()
    txids = node.faucet(who["address"], trx=25_000_000, usdt=3_000_000, mine=True)
    assert len(txids) == 2
    for txid in txids:
        assert node.wait_for_tx(txid)["id"] == txid
    assert node.post("wallet/getaccount", {"address": who["hex"]})["balance"] == 25_000_000
    param = who["hex"][2:].rjust(64, "0")
    call = {"owner_address": who["hex"], "contract_address": node.usdt_hex, "parameter": param}
    out = node.post("wallet/triggerconstantcontract", {**call, "function_selector": "balanceOf(address)"})
    assert int(out["constant_result"][0], 16) == 3_000_000
    for bad in (
        {"address": "nope", "trx": 1},
        {"address": who["address"]},
        {"address": who["hex"], "trx": -5},
    ):
        resp = httpx.post(node.url + "/devnet/faucet", json=bad)
        assert resp.status_code == 400 and "error" in resp.json()


def test_pause_resume_and_status(devnet: Devnet) -> None:
    try:
        st = devnet.pause()
        assert st["paused"] is True
        time.sleep(3 * devnet.block_time)
        head = devnet.status()["head"]
        time.sleep(3 * devnet.block_time)
        assert devnet.status()["head"] == head  # no timed blocks while paused
        assert devnet.mine(2)["head"] == head + 2  # mining still works
    finally:
        assert devnet.resume()["paused"] is False
    devnet.wait_for_block(head + 4, timeout=10)
    st = devnet.status()
    assert st["solid"] == st["head"] - devnet.solidity_lag and st["block_time_ms"] == 500


def test_set_params(devnet_manual: Devnet) -> None:
    node = devnet_manual
    fee = {p["key"]: p.get("value", 0) for p in node.post("wallet/getchainparameters")["chainParameter"]}
    try:
        got = node.set_params(getEnergyFee=210)
        assert got["getEnergyFee"] == 210
        params = {
            p["key"]: p.get("value", 0) for p in node.post("wallet/getchainparameters")["chainParameter"]
        }
        assert params["getEnergyFee"] == 210
        assert node.post("wallet/getenergyprices")["prices"].endswith(":210")
    finally:
        node.set_params(getEnergyFee=fee["getEnergyFee"])
    with pytest.raises(DevnetError, match="400"):
        node.set_params(getNoSuchThing=1)
    with pytest.raises(DevnetError, match="400"):
        node._control("params", {"getEnergyFee": "cheap"})
    assert httpx.get(node.url + "/devnet/params").json()["params"]["getEnergyFee"] == fee["getEnergyFee"]
