"""The energy broker on the devnet: a hot address without energy gets just enough delegated and its USDT
transfer, built by tron-client and signed by wallet-manager, burns no TRX; concurrent requests on two
replicas delegate once; the per-address limit and the budget refuse with their reasons; an idle delegation
is taken back, but not before its lock expires. The chain is read directly from the devnet."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.trx_staking.v1 import trx_staking_pb2 as pb
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm

from services.common.chain_ops import operation_id
from services.common.tron.abi import encode_args
from tests.harness.services import ServiceProcess
from tests.trx_staking.conftest import Rig
from tests.trx_staking.support import (
    OP,
    TRX,
    Wallet,
    add_staking,
    confirmed,
    hot_policy,
    new_key,
    new_wallet,
    rid,
    wait_until,
)

ANSWER = pb.RequestEnergyResponse
USDT = 1_000_000
TRANSFER_ENERGY = 40_000  # a devnet USDT transfer to a new holder needs about 28,000


def ask(rig: Rig, address: str, energy: int, name: str = "trx_staking") -> pb.RequestEnergyResponse:
    req = pb.RequestEnergyRequest(request_id=rid(), address=address, energy=energy)
    return rig.stubs.broker(name).RequestEnergy(req, timeout=60)


def hot_wallet(rig: Rig, index: int, usdt: int = 0) -> Wallet:
    return new_wallet(
        rig.devnet, rig.stubs.wallets(), hot_policy(), trx=20 * TRX, usdt=usdt, key=rig.hot[index]
    )


def energy_delegated(rig: Rig, address: str) -> int:
    return sum(
        int(r.get("frozen_balance_for_energy", 0)) for r in rig.node.delegated(rig.staking.address, address)
    )


def test_a_hot_address_gets_just_enough_energy_and_its_transfer_burns_no_trx(rig: Rig) -> None:
    hot = hot_wallet(rig, 0, usdt=100 * USDT)
    assert int(rig.node.resource(hot.address).get("EnergyLimit", 0)) == 0
    got = ask(rig, hot.address, TRANSFER_ENERGY)
    assert got.outcome == ANSWER.OUTCOME_DELEGATED and got.refusal_reason == ""
    assert got.delegated_sun == TRX == got.held_sun  # 1 TRX yields far more than that on the devnet
    assert got.energy_available >= TRANSFER_ENERGY
    assert energy_delegated(rig, hot.address) == TRX
    assert int(rig.node.resource(hot.address)["EnergyLimit"]) == got.energy_available
    op = confirmed(rig.stubs.staking_operator(), got.operation_id)
    assert (op.kind, op.origin, op.receiver_address, op.owner_address) == (
        OP.KIND_DELEGATE, "broker", hot.address, rig.staking.address,
    )  # fmt: skip

    # The transfer: built by tron-client, signed by wallet-manager, broadcast by tron-client.
    tron, to = rig.stubs.tron(), new_key()[1]
    build = tc.BuildTransactionRequest(
        owner_address=hot.address,
        trigger_smart_contract=tc.TriggerSmartContractParams(
            contract_address=rig.devnet.usdt, function_selector="transfer(address,uint256)",
            parameter=encode_args(["address", "uint256"], [to, 5 * USDT]), fee_limit_sun=50 * TRX,
        ),
    )  # fmt: skip
    tx = tron.BuildTransaction(build, timeout=30).transaction
    signed = rig.stubs.signer().SignTransaction(
        wm.SignTransactionRequest(request_id=rid(), wallet_id=hot.wallet_id, transaction=tx, purpose="test"),
        timeout=30,
    )
    sent = common_pb2.Transaction(raw_data=tx.raw_data, signatures=[signed.signature])
    tron.BroadcastTransaction(tc.BroadcastTransactionRequest(request_id=rid(), transaction=sent), timeout=30)
    receipt = rig.node.tx_info(tx.txid)["receipt"]
    assert receipt["result"] == "SUCCESS" and receipt["energy_usage_total"] > 0
    assert (
        receipt.get("energy_fee", 0) == 0 and receipt.get("energy_usage", 0) == receipt["energy_usage_total"]
    )

    # It still has enough for another transfer: nothing more is delegated.
    again = ask(rig, hot.address, 10_000)
    assert again.outcome == ANSWER.OUTCOME_AVAILABLE and again.delegated_sun == 0 and again.held_sun == TRX
    assert energy_delegated(rig, hot.address) == TRX
    own = ask(rig, rig.staking.address, 10_000)
    assert own.outcome == ANSWER.OUTCOME_REFUSED and own.refusal_reason == "STAKING_ADDRESS"

    metrics = urllib.request.urlopen(
        f"http://127.0.0.1:{rig.cluster['trx_staking'].env['METRICS_PORT']}/metrics", timeout=5
    ).read().decode()  # fmt: skip
    assert 'tronpay_staking_broker_requests_total{outcome="OUTCOME_DELEGATED",reason=""}' in metrics
    assert "tronpay_staking_broker_energy_delegated_bucket" in metrics


@pytest.fixture(scope="module")
def replica(rig: Rig) -> Iterator[ServiceProcess]:
    proc = add_staking(rig.cluster, rig.log_dir, "replica", **_main_env(rig))
    yield proc
    proc.stop()


def _main_env(rig: Rig) -> dict[str, str]:
    main = rig.cluster["trx_staking"].env
    return {k: main[k] for k in ("STAKING_WALLET_ID", "STAKING_BROKER_IDLE_SECONDS")}


def test_twenty_concurrent_requests_on_two_replicas_delegate_once(rig: Rig, replica: ServiceProcess) -> None:
    hot = hot_wallet(rig, 1)
    names = ["trx_staking", "replica"] * 10
    with ThreadPoolExecutor(len(names)) as pool:
        answers = list(pool.map(lambda n: ask(rig, hot.address, TRANSFER_ENERGY, n), names))
    outcomes = {a.outcome for a in answers}
    assert outcomes <= {ANSWER.OUTCOME_DELEGATED, ANSWER.OUTCOME_AVAILABLE}, answers
    delegating = [a for a in answers if a.delegated_sun]
    assert len(delegating) == 1 and delegating[0].delegated_sun == TRX, answers
    assert {a.operation_id for a in answers if a.operation_id} == {delegating[0].operation_id}
    assert energy_delegated(rig, hot.address) == TRX
    assert all(a.energy_available >= TRANSFER_ENERGY for a in answers)


def test_limits_refuse_with_their_reason_and_idle_energy_comes_back_after_the_lock(rig: Rig) -> None:
    """A broker of its own (own database): budget 1 TRX, at most 1 TRX per address, 4-block locks (12 s of
    chain time), idle after 1 s."""
    tight = add_staking(
        rig.cluster, rig.log_dir, "tight", PAYMENT_DB_NAME=rig.cluster.env["PAYMENT_DB_NAME"] + "_tight",
        STAKING_WALLET_ID=rig.staking.wallet_id, STAKING_BROKER_BUDGET_SUN=str(TRX),
        STAKING_BROKER_MAX_PER_ADDRESS_SUN=str(TRX), STAKING_BROKER_LOCK_BLOCKS="4",
        STAKING_BROKER_IDLE_SECONDS="1", STAKING_BROKER_MAX_BURN_SUN=str(7 * TRX),
    )  # fmt: skip
    try:
        first, second = hot_wallet(rig, 2), hot_wallet(rig, 3)
        got = ask(rig, first.address, TRANSFER_ENERGY, "tight")
        assert got.outcome == ANSWER.OUTCOME_DELEGATED and got.delegated_sun == TRX
        (record,) = rig.node.delegated(rig.staking.address, first.address)
        lock_until = int(record["expire_time_for_energy"])
        assert lock_until > rig.node.head_ms()

        per_rate = int(rig.node.resource(first.address)["EnergyLimit"])
        more = ask(rig, first.address, 3 * per_rate, "tight")
        assert (more.outcome, more.refusal_reason) == (ANSWER.OUTCOME_REFUSED, "ADDRESS_LIMIT_REACHED")
        assert more.burn_allowed and more.max_burn_sun == 7 * TRX
        other = ask(rig, second.address, TRANSFER_ENERGY, "tight")
        assert (other.outcome, other.refusal_reason) == (ANSWER.OUTCOME_REFUSED, "BUDGET_EXHAUSTED")
        assert energy_delegated(rig, second.address) == 0

        # Idle after a second, but locked for 12 s: taken back only once the lock expired.
        reclaim = operation_id("bru", f"{first.address}:2")
        wait_until(lambda: energy_delegated(rig, first.address), lambda n: n == 0, timeout=60)
        op = confirmed(rig.stubs.staking_operator("tight"), reclaim)
        assert op.kind == OP.KIND_UNDELEGATE and op.amount_sun == TRX
        assert int(rig.node.tx_info(op.txid)["blockTimeStamp"]) >= lock_until
        # The budget is free again.
        again = ask(rig, second.address, TRANSFER_ENERGY, "tight")
        assert again.outcome == ANSWER.OUTCOME_DELEGATED and again.delegated_sun == TRX
    finally:
        tight.stop()
