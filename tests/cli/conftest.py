"""The rig the CLI tests share: tron-client, wallet-manager, usdt-manager and payout-router on the session's
devnet and FerretDB behind an Envoy edge, a PayoutRouterV0 of their own (deployed with the payout-router
tests' helpers) and its disburser wallet; `tronpay` runs as the installed console script in a subprocess."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from tronpy.contract import Contract
from tronpy.keys import PrivateKey

from tests.harness.devnet import Devnet
from tests.harness.envoy import Edge, mint, start_edge
from tests.harness.ferretdb import FerretDB
from tests.harness.pki import pki_dir
from tests.harness.services import Cluster, ServiceFactory
from tests.payout_router.support import (
    DISBURSER_ROLE,
    TRX,
    USDT,
    Actor,
    Chain,
    Stubs,
    Wallet,
    disburser_wallet,
)

SERVICES = ("tron_client", "wallet_manager", "usdt_manager", "payout_router")
TRONPAY = Path(sys.executable).parent / "tronpay"  # the console script `make install` puts in .venv/bin
APPROVAL_THRESHOLD = 1_000 * USDT  # payouts of at least this wait for one approval


@dataclass
class Result:
    """One `tronpay` run."""

    code: int
    stdout: str
    stderr: str


@dataclass
class Rig:
    devnet: Devnet
    cluster: Cluster
    edge: Edge
    chain: Chain
    router: Contract
    disburser: Wallet
    workdir: Path

    def tronpay(
        self,
        *args: str,
        role: str | None = "operator",
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 240,
    ) -> Result:
        """Run `tronpay args` against this rig's edge with a token of `role` (None: no token)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("TRONPAY_")}
        base["TRONPAY_SERVER"] = self.edge.grpc_target
        if role is not None:
            base["TRONPAY_TOKEN"] = mint(role, subject="cli-tests")
        done = subprocess.run(
            [str(TRONPAY), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env={**base, **(env or {})},
            timeout=timeout,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def operator_env(self) -> dict[str, str]:
        """Where the operator commands find the services and the operator certificate."""
        ports = {f"{name.upper()}_PORT": str(self.cluster[name].port) for name in SERVICES}
        return {**ports, "TLS_DIR": str(pki_dir())}


def services_env(devnet: Devnet, router: str) -> dict[str, str]:
    """Quick driver timings for a 0.5 s-block devnet (as the usdt-manager and payout-router tests set)."""
    return {
        "USDT_CONTRACT_ADDRESS": devnet.usdt,
        "WALLET_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "USDT_POLL_SECONDS": "0.25",
        "USDT_REBROADCAST_SECONDS": "1.5",
        "USDT_LEASE_SECONDS": "10",
        "PAYOUT_ROUTER_CONTRACT_ADDRESS": router,
        "PAYOUT_MAX_FEE_LIMIT_SUN": str(15_000 * TRX),
        "PAYOUT_APPROVAL_THRESHOLD_USDT": str(APPROVAL_THRESHOLD),
        "PAYOUT_REQUIRED_APPROVALS": "1",
        "PAYOUT_POLL_SECONDS": "0.25",
        "PAYOUT_REBROADCAST_SECONDS": "1.5",
        "PAYOUT_LEASE_SECONDS": "10",
        "PAYOUT_DISPATCH_SECONDS": "0.25",
        "TRON_SYNC_POLL_SECONDS": "0.25",
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="package")
def rig(
    ferretdb: FerretDB, devnet: Devnet, envoy_descriptor: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("cli-rig")
    chain = Chain(devnet)
    admin = Actor(PrivateKey.random())
    for txid in devnet.faucet(admin.address, trx=5_000 * TRX):
        devnet.wait_for_tx(txid)
    router = chain.deploy_router(admin, per_tx=10_000 * USDT, per_day=1_000_000 * USDT, batch=100)
    for txid in devnet.faucet(router.contract_address, usdt=100_000 * USDT):
        devnet.wait_for_tx(txid)
    (tmp / "services").mkdir()
    factory = ServiceFactory(ferretdb, tmp / "services")
    try:
        cluster = factory.start(
            *SERVICES, node_url=devnet.url, env=services_env(devnet, router.contract_address)
        )
        stubs = Stubs(cluster)
        try:
            disburser = disburser_wallet(devnet, stubs.wallets(), router.contract_address, trx=5_000 * TRX)
        finally:
            stubs.close()
        chain.send(router, admin, "grantRole", DISBURSER_ROLE, disburser.address)
        ports = {name: cluster[name].port for name in SERVICES}
        with start_edge(ports, tmp / "edge", descriptor=envoy_descriptor, wait_healthy=tuple(ports)) as edge:
            (tmp / "work").mkdir()
            yield Rig(devnet, cluster, edge, chain, router, disburser, tmp / "work")
    finally:
        chain.close()
        factory.close()
