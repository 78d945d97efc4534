"""With USDT_ENERGY_BROKER, usdt-manager asks trx-staking's energy broker for each transfer's estimated energy
before signing: the cluster's stake delegates it, the transfer burns no TRX for energy, and the transfer
records where its energy came from. (Without it, every other test burns: energy_source "burn".)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from tronpay.common.v1 import common_pb2
from tronpay.trx_staking.v1 import trx_staking_pb2 as ts
from tronpay.trx_staking.v1 import trx_staking_pb2_grpc as ts_grpc
from tronpay.usdt_manager.v1 import usdt_manager_pb2 as pb

from tests.harness.devnet import Devnet
from tests.harness.ferretdb import FerretDB
from tests.harness.services import Cluster, ServiceFactory
from tests.trx_staking.support import add_staking, confirmed, staking_policy
from tests.usdt_manager.support import (
    STATE,
    TRX,
    USDT,
    Chain,
    Stubs,
    Wallet,
    env,
    fresh_address,
    new_wallet,
    rid,
    wait_transfers,
)

STAKED = 10_000 * TRX


@dataclass
class Brokered:
    cluster: Cluster
    stubs: Stubs
    chain: Chain
    sender: Wallet


@pytest.fixture(scope="module")
def brokered(
    ferretdb: FerretDB, devnet: Devnet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Brokered]:
    tmp = tmp_path_factory.mktemp("usdt-broker")
    factory = ServiceFactory(ferretdb, tmp)
    chain = Chain(devnet)
    try:
        cluster = factory.start("tron_client", "wallet_manager", node_url=devnet.url, env=env(devnet))
        stubs = Stubs(cluster)
        try:
            # The sender holds USDT and a little TRX (bandwidth), no stake: energy must come from the broker.
            sender = new_wallet(devnet, stubs.wallets(), trx=5 * TRX, usdt=100 * USDT)
            staking = new_wallet(devnet, stubs.wallets(), trx=STAKED + 1_000 * TRX, usdt=0,
                                 signing=staking_policy([sender.address]))  # fmt: skip
            broker = add_staking(cluster, tmp, "trx_staking", STAKING_WALLET_ID=staking.wallet_id,
                                 STAKING_POLL_SECONDS="0.25", STAKING_BROKER_WAIT_SECONDS="15")  # fmt: skip
            with broker.channel() as ch, broker.channel(identity="operator", roles=()) as op_ch:
                stake = ts_grpc.TrxStakingServiceStub(ch).Stake(
                    ts.StakeRequest(request_id=rid(), wallet_id=staking.wallet_id, amount_sun=STAKED,
                                    resource=common_pb2.RESOURCE_TYPE_ENERGY),
                    timeout=30,
                )  # fmt: skip
                confirmed(ts_grpc.TrxStakingServiceStub(op_ch), stake.operation.operation_id)
            peers = {k: cluster.env[k] for k in ("TRON_CLIENT_PORT", "WALLET_MANAGER_PORT")}
            peers["TRX_STAKING_PORT"] = str(broker.port)
            usdt = factory.start(
                "usdt_manager", node_url=devnet.url, db_name=cluster.env["PAYMENT_DB_NAME"],
                env={**env(devnet), **peers, "USDT_ENERGY_BROKER": "true"},
            )  # fmt: skip
            cluster.processes["usdt_manager"] = usdt["usdt_manager"]
            yield Brokered(cluster, stubs, chain, sender)
        finally:
            stubs.close()
    finally:
        chain.close()
        factory.close()


def test_the_broker_delegates_the_energy_and_nothing_burns_for_it(brokered: Brokered) -> None:
    sender, chain = brokered.sender, brokered.chain
    trx_before = chain.trx(sender.address)
    to = fresh_address()
    t = (
        brokered.stubs.usdt()
        .CreateTransfer(
            pb.CreateTransferRequest(
                request_id=rid(), wallet_id=sender.wallet_id, to_address=to, amount=9 * USDT
            ),
            timeout=60,
        )
        .transfer
    )
    assert t.energy_source == "broker"  # asked before signing: attempt 1 is signed with the energy there
    done = wait_transfers(brokered.stubs.usdt_internal(), [t.transfer_id], timeout=60)[t.transfer_id]
    assert done.state == STATE.OPERATION_STATE_CONFIRMED, done
    assert done.energy_used > 0 and done.energy_fee_sun == 0 and done.attempts[0].energy_source == "broker"
    assert chain.trx(sender.address) == trx_before - done.fee_sun  # bandwidth at most, never energy
    assert chain.balance(chain.devnet.usdt, to) == 9 * USDT
