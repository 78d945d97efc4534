"""The rig the payment-gateway service tests share: tron-client, wallet-manager, usdt-manager and
payment-gateway on the session's devnet (0.5 s blocks, solid = head - 2) and FerretDB, an Envoy edge in
front of them, a refund wallet and a fee wallet (imported, funded), a sweep merchant whose HD wallet lets its
deposit addresses pay only its collection address, and a payer account."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from pymongo import MongoClient
from pymongo.database import Database
from tronpay.common.v1 import common_pb2
from tronpay.payment_gateway.v1 import payment_gateway_pb2_grpc as pb_grpc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as wm_grpc

from services.common.tron.address import private_key_to_address
from tests.harness.devnet import Devnet
from tests.harness.envoy import Edge, start_edge
from tests.harness.ferretdb import FerretDB
from tests.harness.services import Cluster, ServiceFactory, ServiceProcess
from tests.payment_gateway.support import MASTER_SECRET, TRX, USDT, Payer, fresh_address, funded_payer, rid

SERVICES = ("tron_client", "wallet_manager", "usdt_manager", "payment_gateway")
ENCRYPTION_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
INBOUND_SECRET = "inbound-secret-" + secrets.token_hex(8)
SWEEP_MERCHANT = "sweepy"
REFUND_APPROVAL_THRESHOLD = 500 * USDT


def env(devnet: Devnet, collection: str, **extra: str) -> dict[str, str]:
    base = {
        "USDT_CONTRACT_ADDRESS": devnet.usdt,
        "WALLET_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "TRON_SYNC_POLL_SECONDS": "0.25",
        "USDT_POLL_SECONDS": "0.25",
        "USDT_REBROADCAST_SECONDS": "1.5",
        "PAYMENT_POLL_SECONDS": "0.25",
        "PAYMENT_LEASE_SECONDS": "3",
        "PAYMENT_WEBHOOK_MASTER_SECRETS": MASTER_SECRET,
        "PAYMENT_WEBHOOK_ALLOW_PRIVATE": "true",
        "PAYMENT_WEBHOOK_FIRST_RETRY_SECONDS": "0.5",
        "PAYMENT_WEBHOOK_POLL_SECONDS": "0.2",
        "PAYMENT_INBOUND_WEBHOOK_SECRETS": json.dumps({"notifier": INBOUND_SECRET}),
        "PAYMENT_REFUND_APPROVAL_THRESHOLD_USDT": str(REFUND_APPROVAL_THRESHOLD),
        "PAYMENT_COLLECTION_ADDRESSES": json.dumps({SWEEP_MERCHANT: collection}),
        "PAYMENT_SWEEP_THRESHOLD_USDT": str(20 * USDT),
        "PAYMENT_SWEEP_THRESHOLD_TRX": str(20 * TRX),
        "PAYMENT_SWEEP_INTERVAL_SECONDS": "1",
        "PAYMENT_SWEEP_ENERGY_BROKER": "false",
        "PAYMENT_RECONCILE_SECONDS": "5",
        "LOG_LEVEL": "INFO",
    }
    return {**base, **extra}


@dataclass
class Rig:
    devnet: Devnet
    factory: ServiceFactory
    cluster: Cluster
    edge: Edge
    payer: Payer
    collection: str
    refund_wallet: str
    refund_address: str
    channels: list[grpc.Channel] = field(default_factory=list)
    mongo: MongoClient[dict[str, Any]] | None = None

    @property
    def gateway(self) -> ServiceProcess:
        return self.cluster["payment_gateway"]

    def stub(
        self, *, subject: str = "alice", roles: tuple[str, ...] = ("operator",), identity: str = "edge"
    ) -> pb_grpc.PaymentGatewayServiceStub:
        ch = self.gateway.channel(identity, subject=subject, roles=roles)
        self.channels.append(ch)
        return pb_grpc.PaymentGatewayServiceStub(ch)

    def operator(
        self, subject: str = "olga", roles: tuple[str, ...] = ("approver",)
    ) -> pb_grpc.PaymentGatewayServiceStub:
        """As the operator tool for `subject` (the internal RPCs: approvals, the inbox, lists, reports)."""
        return self.stub(subject=subject, roles=roles, identity="operator")

    def wallets(self) -> wm_grpc.WalletManagerServiceStub:
        ch = self.cluster["wallet_manager"].channel()
        self.channels.append(ch)
        return wm_grpc.WalletManagerServiceStub(ch)

    def database(self) -> Database[dict[str, Any]]:
        """The cluster's database (for injecting faults the way an outage or an operator's mistake would)."""
        if self.mongo is None:
            self.mongo = MongoClient(self.cluster.env["MONGODB_URI"])
        return self.mongo[self.cluster.env["PAYMENT_DB_NAME"]]

    def restart_gateway(self, **changes: str) -> None:
        self.gateway.env.update(changes)
        self.gateway.restart()


def imported_wallet(
    devnet: Devnet, wallets: wm_grpc.WalletManagerServiceStub, callers: list[str], *, trx: int, usdt: int = 0
) -> tuple[str, str]:
    """An IMPORTED wallet funded on the devnet that only `callers` may sign with."""
    key = secrets.token_hex(32)
    address = private_key_to_address(bytes.fromhex(key))
    for txid in devnet.faucet(address, trx=trx, usdt=usdt):
        devnet.wait_for_tx(txid, solid=True)
    policy = wm.SigningPolicy(
        allowed_contract_types=[
            common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT,
            common_pb2.CONTRACT_TYPE_TRANSFER,
        ],
        allow_unlisted_assets=True,
        allowed_callers=callers,
    )
    wallet = wallets.CreateWallet(
        wm.CreateWalletRequest(
            request_id=rid(),
            private_key=key,
            wallet=wm.Wallet(owner_id="gateway-tests", kind=wm.Wallet.KIND_IMPORTED, policy=policy),
        ),
        timeout=20,
    ).wallet
    return wallet.wallet_id, address


@pytest.fixture(scope="package")
def rig(
    ferretdb: FerretDB, devnet: Devnet, envoy_descriptor: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("payment-rig")
    collection = fresh_address()
    factory = ServiceFactory(ferretdb, tmp)
    try:
        cluster = factory.start(*SERVICES, node_url=devnet.url, env=env(devnet, collection))
        wallets_ch = cluster["wallet_manager"].channel()
        wallets = wm_grpc.WalletManagerServiceStub(wallets_ch)
        refund_wallet, refund_address = imported_wallet(
            devnet, wallets, ["usdt-manager", "payment-gateway"], trx=2_000 * TRX, usdt=10_000 * USDT
        )
        fee_wallet, _ = imported_wallet(devnet, wallets, ["payment-gateway"], trx=2_000 * TRX)
        # The sweep merchant's HD account: its deposit addresses may pay its collection address only.
        sweep_policy = wm.SigningPolicy(
            allowed_contract_types=[
                common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT,
                common_pb2.CONTRACT_TYPE_TRANSFER,
            ],
            allow_unlisted_assets=True,
            allowed_callers=["usdt-manager", "payment-gateway"],
            allowed_destinations=[collection],
        )
        wallets.CreateWallet(
            wm.CreateWalletRequest(
                request_id=rid(),
                wallet=wm.Wallet(owner_id=SWEEP_MERCHANT, kind=wm.Wallet.KIND_HD, policy=sweep_policy),
            ),
            timeout=20,
        )
        wallets_ch.close()
        gateway = cluster["payment_gateway"]
        gateway.env.update(PAYMENT_REFUND_WALLET_ID=refund_wallet, PAYMENT_SWEEP_FEE_WALLET_ID=fee_wallet)
        gateway.restart()
        payer = funded_payer(devnet)
        ports = {name: cluster[name].port for name in SERVICES}
        with start_edge(ports, tmp / "edge", descriptor=envoy_descriptor, wait_healthy=tuple(ports)) as edge:
            rig = Rig(devnet, factory, cluster, edge, payer, collection, refund_wallet, refund_address)
            try:
                yield rig
            finally:
                for ch in rig.channels:
                    ch.close()
                if rig.mongo is not None:
                    rig.mongo.close()
    finally:
        factory.close()
