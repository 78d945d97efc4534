"""Versioned store, overlays and resource math (no chain)."""

import pytest

from devnet.params import Params
from devnet.resources import ResourceInsufficient, consume_bandwidth, increase, recovered
from devnet.state import AccountState, Overlay, VersionedStore, World


def test_versions_rollback_compact() -> None:
    store = VersionedStore()
    store.commit(0, {("k",): 1})
    store.commit(1, {("k",): 2, ("j",): 5})
    store.commit(2, {("k",): 3})
    assert store.get(("k",)) == 3
    assert store.get(("k",), at=1) == 2
    assert store.get(("j",), at=0) is None
    store.rollback(1)
    assert store.get(("k",)) == 2 and store.height == 1
    store.commit(2, {("k",): 7})
    store.compact(1)
    assert store.get(("k",), at=1) == 2 and store.get(("k",)) == 7
    store.compact(2)
    assert store.get(("k",), at=2) == 7


def test_overlay_layers_and_world() -> None:
    store = VersionedStore()
    store.commit(0, {("a", b"\x41" + b"\x01" * 20): AccountState(address=b"\x41" + b"\x01" * 20, balance=10)})
    pending = Overlay(store.at())
    tx = Overlay(pending)
    w = World(tx)
    w.set_balance(b"\x01" * 20, 4)
    w.set_storage(b"\x01" * 20, 7, 9)
    assert World(pending).balance(b"\x01" * 20) == 10  # not merged yet
    tx.merge()
    assert World(pending).balance(b"\x01" * 20) == 4 and World(pending).storage(b"\x01" * 20, 7) == 9
    assert World(store.at()).balance(b"\x01" * 20) == 10  # store untouched until commit


def test_usage_recovers_linearly_over_a_day() -> None:
    assert increase(0, 300, 0, 0) == 300
    assert recovered(28800, 0, 14400) == 14400
    assert recovered(300, 0, 28800) == 0


def test_bandwidth_free_then_burn_then_error() -> None:
    params = Params()
    store = VersionedStore()
    store.commit(0, {})
    w = World(Overlay(store.at()))
    acc = AccountState(address=b"\x41" + b"\x02" * 20, balance=300_000)
    bill = consume_bandwidth(w, params, acc, 268, False, 3000)
    assert bill.net_usage == 268 and bill.net_fee == 0
    consume_bandwidth(w, params, acc, 268, False, 3000)
    bill = consume_bandwidth(w, params, acc, 268, False, 3000)  # 536 used of 600 → burn
    assert bill.net_fee == 268_000 and acc.balance == 32_000
    with pytest.raises(ResourceInsufficient):
        consume_bandwidth(w, params, acc, 268, False, 3000)
    bill = consume_bandwidth(w, params, AccountState(address=acc.address, balance=100_000), 268, True, 3000)
    assert bill.net_fee == 100_000
