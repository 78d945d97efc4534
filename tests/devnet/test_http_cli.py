"""`python -m devnet`: accounts file, graceful SIGTERM/SIGINT, state kept across restarts in --data-dir."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.harness.devnet import ROOT, Devnet, DevnetFactory
from tests.harness.net import free_port, wait_for_port


def test_restart_keeps_state_and_accounts_file(devnet_factory: DevnetFactory) -> None:
    node: Devnet = devnet_factory(manual=True, solidity_lag=1)
    mode = stat.S_IMODE(node.accounts_file.stat().st_mode)
    assert mode == 0o600  # the file holds private keys
    doc = node.accounts
    assert doc["tokens"]["USDT"] == "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    assert len(doc["accounts"]) >= 3 and doc["witness"]["address"].startswith("T")
    assert node.get("devnet/accounts") == doc

    to = node.new_account()
    tx = node.transfer_tx(node.funded[0], to["hex"], 7_000_000)
    assert node.broadcast(tx)["result"] is True
    node.mine(3)
    head = node.status()["head"]
    head_id = node.post("wallet/getblockbynum", {"num": head})["blockID"]

    assert node.stop() == 0  # SIGTERM is a clean shutdown
    node.start()
    assert node.status()["head"] >= head
    assert node.post("wallet/getblockbynum", {"num": head})["blockID"] == head_id
    assert node.post("wallet/getaccount", {"address": to["hex"]})["balance"] == 7_000_000
    assert node.post("wallet/gettransactioninfobyid", {"value": tx["txID"]})["blockNumber"] <= head
    assert node.broadcast(tx)["code"] == "DUP_TRANSACTION_ERROR"


def test_sigint_stops_and_accounts_printed(tmp_path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "devnet", "--port", str(port), "--manual"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=90)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0
    text = out.decode()
    doc = json.loads(text[: text.rindex("}") + 1])
    assert doc["url"] == f"http://127.0.0.1:{port}" and doc["accounts"][0]["private_key"]
    assert "devnet listening on" in text


def test_bad_options_rejected() -> None:
    for args in (["--block-time", "0"], ["--solidity-lag", "-1"], ["--port", "x"]):
        proc = subprocess.run(
            [sys.executable, "-m", "devnet", *args], cwd=ROOT, capture_output=True, timeout=60
        )
        assert proc.returncode == 2 and b"usage" in proc.stderr


def test_sigterm_does_not_wait_for_held_requests(devnet_factory: DevnetFactory) -> None:
    node: Devnet = devnet_factory(manual=True)
    node.set_faults(hang_rate=1.0, hang_seconds=60)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(httpx.post, node.url + "/wallet/getnowblock", timeout=30)
        time.sleep(0.5)
        t0 = time.monotonic()
        assert node.stop() == 0
        assert time.monotonic() - t0 < 8
        with pytest.raises(httpx.TransportError):
            held.result(timeout=30)
