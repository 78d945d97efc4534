"""The rig most usdt-manager tests share: tron-client, wallet-manager and usdt-manager on the session's devnet
and FerretDB, an Envoy edge in front of them, and a TetherToken of our own (listed in USDT_TRC20_TOKENS) whose
blacklist and pause the tests may change without touching the devnet's USDT."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.common.tron.address import private_key_to_address
from tests.harness.devnet import Devnet
from tests.harness.envoy import Edge, start_edge
from tests.harness.ferretdb import FerretDB
from tests.harness.services import Cluster, ServiceFactory
from tests.usdt_manager.support import TRX, Chain, Stubs, start


@dataclass
class Rig:
    devnet: Devnet
    cluster: Cluster
    edge: Edge
    stubs: Stubs
    chain: Chain
    token: str  # our own TetherToken
    token_owner_key: str


@pytest.fixture(scope="package")
def rig(
    ferretdb: FerretDB, devnet: Devnet, envoy_descriptor: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("usdt-rig")
    owner_key = secrets.token_hex(32)
    for txid in devnet.faucet(private_key_to_address(bytes.fromhex(owner_key)), trx=5_000 * TRX):
        devnet.wait_for_tx(txid)
    (tmp / "services").mkdir()
    factory = ServiceFactory(ferretdb, tmp / "services")
    chain = Chain(devnet)
    try:
        token = chain.deploy_token(owner_key)
        cluster = start(
            factory, devnet, USDT_TRC20_TOKENS=token, TRON_SYNC_TOKENS=token, WALLET_TRC20_TOKENS=token
        )
        ports = {name: cluster[name].port for name in ("tron_client", "wallet_manager", "usdt_manager")}
        with start_edge(ports, tmp / "edge", descriptor=envoy_descriptor, wait_healthy=tuple(ports)) as edge:
            stubs = Stubs(cluster)
            try:
                yield Rig(devnet, cluster, edge, stubs, chain, token, owner_key)
            finally:
                stubs.close()
    finally:
        chain.close()
        factory.close()
