"""Fault injection (/devnet/faults): 5xx, 429 + Retry-After, slow, hang-then-close, dropped broadcasts."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.harness.devnet import Devnet, DevnetError


@pytest.fixture
def node(devnet_manual: Devnet) -> Iterator[Devnet]:
    devnet_manual.clear_faults()
    yield devnet_manual
    devnet_manual.clear_faults()


def _within(count: int, n: int, p: float) -> bool:
    """count is within 5 standard deviations of n*p (false alarm odds ~1e-6)."""
    sigma = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= 5 * sigma + 1


def test_error_and_rate_limit_fractions(node: Devnet) -> None:
    node.set_faults(error_rate=0.3, rate_limit_rate=0.2, retry_after=7, seed=42)
    n = 400
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=node.url, timeout=5) as c:
        for _ in range(n):
            r = c.post("/wallet/getnowblock")
            statuses[r.status_code] += 1
            if r.status_code == 429:
                assert r.headers["Retry-After"] == "7"
            elif r.status_code == 200:
                assert "blockID" in r.json()
            else:
                assert r.status_code == 503
    assert sum(statuses.values()) == n
    assert _within(statuses[503], n, 0.3), statuses
    assert _within(statuses[429], n, 0.2), statuses
    counts = node.get("devnet/faults")["counts"]
    assert counts["error"] == statuses[503] and counts["rate_limit"] == statuses[429]
    assert counts["requests"] == n  # /devnet/* itself is never counted nor disturbed


def test_same_seed_same_sequence(node: Devnet) -> None:
    def run() -> list[int]:
        node.set_faults(error_rate=0.5, seed=7)
        with httpx.Client(base_url=node.url, timeout=5) as c:
            return [c.post("/wallet/getnowblock").status_code for _ in range(40)]

    assert run() == run()


def test_control_endpoints_never_faulted(node: Devnet) -> None:
    node.set_faults(error_rate=1.0, seed=1)
    for _ in range(5):
        assert node.status()["faults"]["config"]["error_rate"] == 1.0
    assert httpx.post(node.url + "/wallet/getnowblock").status_code == 503


def test_paths_filter(node: Devnet) -> None:
    node.set_faults(error_rate=1.0, paths=["/wallet/getaccount"])
    assert httpx.post(node.url + "/wallet/getnowblock").status_code == 200
    assert httpx.post(node.url + "/wallet/getaccount", json={}).status_code == 503


def test_slow_and_hang(node: Devnet) -> None:
    node.set_faults(slow_rate=1.0, slow_seconds=0.4)
    t0 = time.monotonic()
    assert httpx.post(node.url + "/wallet/getnowblock").status_code == 200
    assert time.monotonic() - t0 >= 0.4
    node.set_faults(hang_rate=1.0, hang_seconds=0.4)
    t0 = time.monotonic()
    with pytest.raises(httpx.TransportError):
        httpx.post(node.url + "/wallet/getnowblock", timeout=5)
    assert 0.35 <= time.monotonic() - t0 < 4.5
    # a client timeout shorter than the hang sees a timeout, not an answer
    with pytest.raises(httpx.TimeoutException):
        httpx.post(node.url + "/wallet/getnowblock", timeout=0.1)
    node.clear_faults()
    assert httpx.post(node.url + "/wallet/getnowblock").status_code == 200


def test_dropped_broadcast_never_lands(node: Devnet) -> None:
    owner, to = node.funded[0], node.new_account()
    node.set_faults(drop_broadcast_rate=1.0, seed=3)
    tx = node.transfer_tx(owner, to["hex"], 1_000_000)
    out = node.broadcast(tx)
    assert out == {"result": True, "txid": tx["txID"]}
    node.clear_faults()
    node.mine(2)
    assert node.post("wallet/gettransactioninfobyid", {"value": tx["txID"]}) == {}
    assert node.post("wallet/getaccount", {"address": to["hex"]}) == {}
    # the same signed transaction still goes through once faults are off: it never reached the pool
    assert node.broadcast(tx) == {"result": True, "txid": tx["txID"]}
    info = node.wait_for_tx(tx["txID"])
    assert info["id"] == tx["txID"]


def test_bad_fault_config_rejected(node: Devnet) -> None:
    for bad in ({"error_rate": 2}, {"error_rate": 0.6, "slow_rate": 0.6}, {"nope": 1}, {"error_status": 404}):
        with pytest.raises(DevnetError, match="400"):
            node.set_faults(**bad)
