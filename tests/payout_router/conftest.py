"""The rig the payout-router tests share: tron-client, wallet-manager and payout-router on the session's
devnet and FerretDB, an Envoy edge in front of them, a PayoutRouterV0 of their own (100 payouts per batch,
funded with USDT by the devnet faucet) and the disburser wallet in wallet-manager holding DISBURSER_ROLE."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tronpy.contract import Contract
from tronpy.keys import PrivateKey

from tests.harness.devnet import Devnet
from tests.harness.envoy import Edge, start_edge
from tests.harness.ferretdb import FerretDB
from tests.harness.services import Cluster, ServiceFactory
from tests.payout_router.support import (
    DISBURSER_ROLE,
    PAUSER_ROLE,
    TRX,
    USDT,
    Actor,
    Chain,
    Stubs,
    Wallet,
    disburser_wallet,
)

SERVICES = ("tron_client", "wallet_manager", "payout_router")
ENCRYPTION_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
APPROVAL_THRESHOLD = 1_000 * USDT  # payouts of at least this wait for two approvers
RECIPIENT_DAILY_LIMIT = 5_000 * USDT
ROUTER_FUNDS = 200_000 * USDT
PER_TX = 10_000 * USDT


def env(devnet: Devnet, router: str, **extra: str) -> dict[str, str]:
    base = {
        "USDT_CONTRACT_ADDRESS": devnet.usdt,
        "WALLET_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "PAYOUT_ROUTER_CONTRACT_ADDRESS": router,
        "PAYOUT_BATCH_SIZE": "100",
        "PAYOUT_MAX_FEE_LIMIT_SUN": str(15_000 * TRX),
        "PAYOUT_APPROVAL_THRESHOLD_USDT": str(APPROVAL_THRESHOLD),
        "PAYOUT_REQUIRED_APPROVALS": "2",
        "PAYOUT_RECIPIENT_DAILY_LIMIT_USDT": str(RECIPIENT_DAILY_LIMIT),
        "PAYOUT_POLL_SECONDS": "0.25",
        "PAYOUT_REBROADCAST_SECONDS": "1.5",
        "PAYOUT_LEASE_SECONDS": "10",
        "PAYOUT_DISPATCH_SECONDS": "0.25",
        "TRON_SYNC_POLL_SECONDS": "0.25",
        "LOG_LEVEL": "INFO",
    }
    return {**base, **extra}


@dataclass
class Rig:
    devnet: Devnet
    factory: ServiceFactory
    cluster: Cluster
    edge: Edge
    stubs: Stubs
    chain: Chain
    router: Contract
    admin: Actor
    disburser: Wallet


@pytest.fixture(scope="package")
def rig(
    ferretdb: FerretDB, devnet: Devnet, envoy_descriptor: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("payout-rig")
    chain = Chain(devnet)
    admin = Actor(PrivateKey.random())
    for txid in devnet.faucet(admin.address, trx=5_000 * TRX):
        devnet.wait_for_tx(txid)
    router = chain.deploy_router(admin, per_tx=PER_TX, per_day=10_000_000 * USDT, batch=100)
    for txid in devnet.faucet(router.contract_address, usdt=ROUTER_FUNDS):
        devnet.wait_for_tx(txid)
    chain.send(router, admin, "grantRole", PAUSER_ROLE, admin.address)
    (tmp / "services").mkdir()
    factory = ServiceFactory(ferretdb, tmp / "services")
    try:
        cluster = factory.start(*SERVICES, node_url=devnet.url, env=env(devnet, router.contract_address))
        stubs = Stubs(cluster)
        disburser = disburser_wallet(devnet, stubs.wallets(), router.contract_address, trx=40_000 * TRX)
        chain.send(router, admin, "grantRole", DISBURSER_ROLE, disburser.address)
        ports = {name: cluster[name].port for name in SERVICES}
        with start_edge(ports, tmp / "edge", descriptor=envoy_descriptor, wait_healthy=tuple(ports)) as edge:
            try:
                yield Rig(devnet, factory, cluster, edge, stubs, chain, router, admin, disburser)
            finally:
                stubs.close()
    finally:
        chain.close()
        factory.close()
