"""The rig the trx-staking tests share: tron-client and wallet-manager on the session's devnet and FerretDB,
the cluster's staking wallet (100,000 TRX staked for energy through the service itself) and trx-staking with
that wallet as its energy broker's source."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tronpay.trx_staking.v1 import trx_staking_pb2 as pb

from tests.harness.devnet import Devnet
from tests.harness.ferretdb import FerretDB
from tests.harness.services import Cluster, ServiceFactory
from tests.trx_staking.support import (
    ENERGY,
    TRX,
    Node,
    Stubs,
    Wallet,
    add_staking,
    confirmed,
    env,
    new_key,
    new_wallet,
    rid,
    staking_policy,
)

HOT_ADDRESSES = 7  # the staking wallet may delegate to them; 0-3 are the broker tests', 4-6 the others'
STAKED = 100_000 * TRX


@dataclass
class Rig:
    devnet: Devnet
    cluster: Cluster
    stubs: Stubs
    node: Node
    staking: Wallet  # the cluster's staking wallet (STAKING_WALLET_ID)
    hot: list[tuple[str, str]]  # (key, address) the staking wallet may delegate to
    witness: str
    log_dir: Path


@pytest.fixture(scope="package")
def rig(ferretdb: FerretDB, devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("staking-rig")
    factory = ServiceFactory(ferretdb, tmp)
    try:
        cluster = factory.start("tron_client", "wallet_manager", node_url=devnet.url, env=env(devnet))
        stubs = Stubs(cluster)
        try:
            witness = devnet.witness["address"]
            hot = [new_key() for _ in range(HOT_ADDRESSES)]
            policy = staking_policy([a for _, a in hot], [witness])
            staking = new_wallet(devnet, stubs.wallets(), policy, trx=STAKED + 50_000 * TRX)
            add_staking(cluster, tmp, "trx_staking", STAKING_WALLET_ID=staking.wallet_id,
                        STAKING_BROKER_IDLE_SECONDS="3600")  # fmt: skip
            req = pb.StakeRequest(
                request_id=rid(), wallet_id=staking.wallet_id, amount_sun=STAKED, resource=ENERGY
            )
            stake = stubs.staking().Stake(req, timeout=30)
            confirmed(stubs.staking_operator(), stake.operation.operation_id)
            yield Rig(devnet, cluster, stubs, Node(devnet), staking, hot, witness, tmp)
        finally:
            stubs.close()
    finally:
        factory.close()
