"""Shared pieces of the wallet-manager service tests (tests/wallet_manager/test_service_*.py): starting the
real service process(es), gRPC stubs as a calling service or the edge, raw MongoDB access to its database,
policies; and the service's key custody (keys.KeyVault) in-process over a real database."""

from __future__ import annotations

import atexit
import functools
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import grpc
from pydantic import SecretStr
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as pb_grpc

from services.common.access import INTERNAL, PUBLIC, Peer
from services.common.mongo import ServiceDatabase
from services.common.settings import ServiceName, TronNetwork
from services.wallet_manager.keys import KDF_DOC, KeyVault
from services.wallet_manager.settings import WalletManagerSettings
from services.wallet_manager.store import Store
from services.wallet_manager.vault.keystore import KdfParams, Kek, Keyring
from services.wallet_manager.vault.policy import WalletPolicy, costs
from services.wallet_manager.vault.tron_tx import parse_transaction
from tests.harness.ferretdb import FerretDB
from tests.harness.pki import channel as pki_channel
from tests.harness.services import REPO, Cluster, ServiceFactory

KEY = "test wallet encryption key (first)"
KEY2 = "test wallet encryption key (second)"
OPERATOR = "ops-alice"
KIND = pb.Wallet.Kind


def env(**extra: str) -> dict[str, str]:
    base = {"WALLET_ENCRYPTION_KEY": KEY, "WALLET_OPERATORS": OPERATOR, "LOG_LEVEL": "INFO"}
    base.update(extra)
    return base


@contextmanager
def started(
    ferretdb: FerretDB, tmp: Path, *names: str, node_url: str | None = None, **extra: str
) -> Iterator[Cluster]:
    tmp.mkdir(parents=True, exist_ok=True)
    factory = ServiceFactory(ferretdb, tmp)
    try:
        kw: dict[str, Any] = {"env": env(**extra)}
        if node_url:
            kw["node_url"] = node_url
        yield factory.start(*(names or ("wallet_manager",)), **kw)
    finally:
        factory.close()


@asynccontextmanager
async def key_store(ferretdb: FerretDB, db_name: str = "") -> AsyncIterator[Store]:
    """The service's Store on a fresh database (its KDF parameters are the production ones: the service
    refuses cheaper ones)."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(ferretdb.uri, tz_aware=True)
    db = ServiceDatabase(client, db_name or ferretdb.db_name("wmkeys"), "wallet_manager")
    store = Store(db)
    try:
        yield store
    finally:
        await db.close()


def key_vault(store: Store, key: str = KEY, previous: str = "") -> KeyVault:
    """A KeyVault as the service builds it (a mainnet network: no devnet fallback key)."""
    settings = WalletManagerSettings(
        SERVICE_NAME=ServiceName.WALLET_MANAGER,
        TRON_NETWORK=TronNetwork.MAINNET,
        WALLET_ENCRYPTION_KEY=SecretStr(key),
        WALLET_ENCRYPTION_KEY_PREVIOUS=SecretStr(previous),
    )
    return KeyVault(settings, store, None)


def admin(cluster: Cluster, *command: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """Run an operator command (`python -m services.wallet_manager ...`) with the service's environment
    (plus overrides)."""
    return subprocess.run(
        [sys.executable, "-m", "services.wallet_manager", *command],
        cwd=REPO,
        env={**cluster["wallet_manager"].env, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def rid() -> str:
    return "t-" + uuid.uuid4().hex


def default_caller(method: str) -> str:
    """Who calls a wallet-manager RPC when a test does not say: the edge for a public RPC, else the first
    service granted it, else the operator's tools (services.common.access)."""
    rpc = f"{pb.DESCRIPTOR.package}.WalletManagerService/{method}"
    if rpc in PUBLIC:
        return "edge"
    services = sorted(INTERNAL[rpc] - {Peer.OPERATOR})
    return services[0].value if services else Peer.OPERATOR.value


class Client:
    """Sync stubs over mutual TLS: `caller` is the calling service's certificate identity; without one, a
    public RPC comes from the edge for an admin token (or the given roles/tenant) of `subject`, and an
    internal one from a peer granted it (`default_caller`)."""

    def __init__(self, target: str) -> None:
        self._target = target
        self._channels: dict[tuple[str, tuple[str, ...], str, str], grpc.Channel] = {}

    def _stub(self, identity: str, roles: tuple[str, ...], subject: str, tenant: str) -> Any:
        key = (identity, roles, subject, tenant)
        if key not in self._channels:
            self._channels[key] = pki_channel(
                self._target, "wallet-manager", identity=identity, roles=roles, subject=subject, tenant=tenant
            )
        return pb_grpc.WalletManagerServiceStub(self._channels[key])

    def call(
        self,
        method: str,
        request: Any,
        *,
        caller: str = "",
        subject: str = "",
        roles: tuple[str, ...] = ("admin",),
        tenant: str = "",
        timeout: float = 20,
    ) -> Any:
        if not caller:
            caller = default_caller(method)
        stub = self._stub(caller, roles if caller == "edge" else (), subject, tenant)
        return getattr(stub, method)(request, timeout=timeout)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()


@functools.cache
def _mongo(uri: str) -> MongoClient[Any]:
    """One client per server for the whole run (closed at exit), not one leaked per test."""
    client: MongoClient[Any] = MongoClient(uri, tz_aware=True)
    atexit.register(client.close)
    return client


def db_of(ferretdb: FerretDB, cluster: Cluster) -> Database[Any]:
    return _mongo(ferretdb.uri)[cluster.env["PAYMENT_DB_NAME"]]


def service_tag(db: Database[Any], *parts: str | bytes, key: str = KEY) -> dict[str, Any]:
    """An integrity tag (integrity.py) as the service holding `key` makes it, for a test that stores what
    the service itself would have."""
    params = KdfParams.from_doc(db["wallet_manager_vault"].find_one({"_id": KDF_DOC}) or {})
    return Keyring(Kek.derive(key, params)).tag(*parts)


def policy(
    contracts: Sequence[common_pb2.ContractType.ValueType] = (
        common_pb2.CONTRACT_TYPE_TRANSFER,
        common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT,
    ),
    *,
    trx_per_tx: int = 0,
    trx_daily: int = 0,
    usdt_per_tx: int = 0,
    usdt_daily: int = 0,
    destinations: Sequence[str] = (),
    callers: Sequence[str] = (),
    **fields: Any,
) -> pb.SigningPolicy:
    """A SigningPolicy that lists TRX and USDT (limits of 0 = none: unlisted assets are refused, and every
    transaction burns TRX); `fields` sets any other SigningPolicy field."""
    p = pb.SigningPolicy(
        allowed_contract_types=list(contracts),
        allowed_destinations=list(destinations),
        allowed_callers=list(callers),
        **fields,
    )
    p.limits.add(asset=common_pb2.ASSET_TRX, per_transaction_limit=trx_per_tx, daily_limit=trx_daily)
    p.limits.add(asset=common_pb2.ASSET_USDT, per_transaction_limit=usdt_per_tx, daily_limit=usdt_daily)
    return p


def trx_cost(raw: bytes) -> int:
    """What a transaction counts against a TRX daily limit: its TRX value plus its worst-case fee."""
    return costs(parse_transaction(raw), WalletPolicy())["TRX"]


def error_reason(err: grpc.RpcError) -> str:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(err)
    assert status is not None, err
    for d in status.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            return info.reason
    raise AssertionError(f"no ErrorInfo in {err}")
