"""TronWeb 6.5.1 (npm, unchanged) against the devnet, driven through a node script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness.devnet import Devnet

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "js" / "transfers.mjs"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_tronweb_trx_and_trc20_transfers(devnet: Devnet) -> None:
    sender = devnet.funded[4]
    to = devnet.new_account()
    env = {**os.environ, "DEVNET_URL": devnet.url, "PRIVATE_KEY": sender["private_key"], "USDT": devnet.usdt,
           "TO": to["address"]}  # fmt: skip
    proc = subprocess.run(
        ["node", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["connected"]["fullNode"] and out["connected"]["solidityNode"]
    assert out["from"] == sender["address"]
    # TRX: sendTrx, then sign + sendHexTransaction (v = 27/28 signatures), both seen by getBalance (solid)
    assert out["balance_after_trx"] == 1_500_000
    assert out["balance_after_hex"] == 1_750_000
    assert out["trx_info"]["id"] == out["trx_txid"]
    # TRC20: contract().at() + transfer().send(), confirmed by balanceOf and by our own view of the chain
    assert out["decimals"] == 6
    assert out["token_balance"] == "4321"
    info = out["trc20_info"]
    assert info["receipt"]["result"] == "SUCCESS"
    assert info["log"][0]["topics"][0] == "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
    for txid in (out["trx_txid"], out["hex_txid"], out["trc20_txid"]):
        tx = devnet.post("walletsolidity/gettransactionbyid", {"value": txid})
        assert tx["txID"] == txid and tx["ret"][0]["contractRet"] == "SUCCESS"
    acc = devnet.post("wallet/getaccount", {"address": to["address"], "visible": True})
    assert acc["balance"] == 1_750_000
    # read paths TronWeb parses itself
    assert out["current_block"] > 0 and out["block_range"] == [1, 2, 3] and out["block_by_hash"] is True
    assert out["chain_params"] > 20 and out["srs"] >= 1
    assert out["resources"]["freeNetLimit"] == 600 and out["bandwidth"] >= 0
    assert out["reward"] == 0 and out["energy_prices"].endswith(":100")
    assert out["confirmed"] == out["trx_txid"] and out["contract_abi"] > 10 and out["node_version"]
