"""kill -9 of payout-router while it stores, claims and sends a batch, then a restart on the same database:
every payout ends CONFIRMED exactly once. tronpy (an independent client) counts the router's Paid events per
payout id across every transaction the payouts name and reads each recipient's balance."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from tronpay.common.v1 import common_pb2
from tronpay.payout_router.v1 import payout_router_pb2 as pb

from services.payout_router.chain import onchain_id
from tests.harness.services import ServiceProcess
from tests.payout_router.conftest import SERVICES, Rig, env
from tests.payout_router.support import STATE, USDT, fresh_address, rid, wait_final, wait_until


@pytest.fixture
def router_process(rig: Rig) -> Iterator[ServiceProcess]:
    """A payout-router of its own (own database) on the rig's tron-client and wallet-manager."""
    ports = {f"{n.upper()}_PORT": str(rig.cluster[n].port) for n in SERVICES if n != "payout_router"}
    cluster = rig.factory.start(
        "payout_router", node_url=rig.devnet.url, env=env(rig.devnet, rig.router.contract_address, **ports)
    )
    yield cluster["payout_router"]
    cluster.stop()


def kill9(proc: ServiceProcess) -> None:
    assert proc.process is not None
    proc.process.kill()
    proc.process.wait(timeout=10)
    proc.process = None


def test_kill_9_mid_batch_pays_every_payout_exactly_once(rig: Rig, router_process: ServiceProcess) -> None:
    recipients = [fresh_address() for _ in range(150)]
    items = [pb.PayoutItem(recipient_address=to, amount=USDT + i) for i, to in enumerate(recipients)]
    req = pb.CreatePayoutBatchRequest(
        request_id=rid(), wallet_id=rig.disburser.wallet_id, asset=common_pb2.ASSET_USDT, items=items
    )
    created = rig.stubs.payouts(router_process).CreatePayoutBatch(req, timeout=60)
    ids = [p.payout_id for p in created.payouts]

    # 1: at once, while the dispatcher claims the first on-chain batch and has it signed.
    kill9(router_process)
    router_process.start()
    # 2: once some payouts are on their way (claimed, signed, maybe broadcast or included).
    stub = rig.stubs.payouts(router_process)
    wait_until(
        lambda: stub.ListPayouts(pb.ListPayoutsRequest(state=STATE.STATE_SUBMITTED, page_size=1), timeout=10),
        lambda r: len(r.payouts) > 0,
    )
    kill9(router_process)
    router_process.start()
    # 3: the same request again after the restarts names the same payouts.
    again = rig.stubs.payouts(router_process).CreatePayoutBatch(req, timeout=60)
    assert [p.payout_id for p in again.payouts] == ids

    done = wait_final(rig.stubs.payouts(router_process), ids, timeout=240)
    assert {p.state for p in done.values()} == {STATE.STATE_CONFIRMED}, {
        p.payout_id: p.failure_reason for p in done.values() if p.state != STATE.STATE_CONFIRMED
    }
    for to, item in zip(recipients, items, strict=True):
        assert rig.chain.balance(to) == item.amount
    paid = rig.chain.paid_events(rig.router.contract_address, {p.txid for p in done.values() if p.txid})
    assert {onchain_id(pid).hex(): paid.get(onchain_id(pid).hex(), 0) for pid in ids} == {
        onchain_id(pid).hex(): 1 for pid in ids
    }


def metric(proc: ServiceProcess, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{proc.env['METRICS_PORT']}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    return values[0] if values else 0.0


def test_a_payout_not_confirmed_within_payout_timeout_fails_with_an_alert(rig: Rig) -> None:
    """Every broadcast is dropped: once the first transaction provably expired, no new one is built after
    PAYOUT_TIMEOUT; the router's record is read (never paid) and the payout FAILS with the reason, counted."""
    ports = {f"{n.upper()}_PORT": str(rig.cluster[n].port) for n in SERVICES if n != "payout_router"}
    settings = env(
        rig.devnet, rig.router.contract_address, PAYOUT_TIMEOUT="1", PAYOUT_TX_EXPIRATION_SECONDS="3", **ports
    )
    proc = rig.factory.start("payout_router", node_url=rig.devnet.url, env=settings)["payout_router"]
    to = fresh_address()
    rig.devnet.set_faults(drop_broadcast_rate=1.0)
    try:
        req = pb.InitiatePayoutRequest(
            request_id=rid(),
            wallet_id=rig.disburser.wallet_id,
            recipient_address=to,
            asset=common_pb2.ASSET_USDT,
            amount=USDT,
        )
        pid = rig.stubs.payouts(proc).InitiatePayout(req, timeout=30).payout.payout_id
        done = wait_final(rig.stubs.payouts(proc), [pid], timeout=120)[pid]
    finally:
        rig.devnet.clear_faults()
    assert done.state == STATE.STATE_FAILED and done.failure_reason.startswith("PAYOUT_TIMEOUT"), done
    assert metric(proc, "tronpay_payout_timeouts_total") == 1.0
    assert rig.chain.balance(to) == 0
    proc.stop()
