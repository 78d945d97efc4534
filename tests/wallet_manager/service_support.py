"""Shared pieces of the wallet-manager service tests (tests/wallet_manager/test_service_*.py): starting the
real service process(es), a gRPC stub with caller/subject metadata, raw MongoDB access to its database,
policies; and the service's key custody (keys.KeyVault) in-process over a real database."""

from __future__ import annotations

import atexit
import functools
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

from services.common.mongo import ServiceDatabase
from services.common.settings import ServiceName, TronNetwork
from services.wallet_manager.keys import KDF_DOC, KeyVault
from services.wallet_manager.settings import WalletManagerSettings
from services.wallet_manager.store import Store
from services.wallet_manager.vault.keystore import KdfParams
from services.wallet_manager.vault.policy import WalletPolicy, costs
from services.wallet_manager.vault.tron_tx import parse_transaction
from tests.harness.ferretdb import FerretDB
from tests.harness.services import Cluster, ServiceFactory

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
async def key_store(ferretdb: FerretDB) -> AsyncIterator[Store]:
    """The service's Store on a fresh database, its KDF parameters cheap (scrypt n=2**12) for tests."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(ferretdb.uri, tz_aware=True)
    db = ServiceDatabase(client, ferretdb.db_name("wmkeys"), "wallet_manager")
    store = Store(db)
    await store.get_or_create_vault_doc(KDF_DOC, KdfParams.generate(n=2**12).to_doc())
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
    return KeyVault(settings, store)


def rid() -> str:
    return "t-" + uuid.uuid4().hex


class Client:
    """Sync stub + metadata (caller service, end-user subject)."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = pb_grpc.WalletManagerServiceStub(self.channel)

    def call(
        self, method: str, request: Any, *, caller: str = "", subject: str = "", timeout: float = 20
    ) -> Any:
        md = []
        if caller:
            md.append(("x-tronpay-caller", caller))
        if subject:
            md.append(("x-tronpay-subject", subject))
        return getattr(self.stub, method)(request, metadata=md, timeout=timeout)

    def close(self) -> None:
        self.channel.close()


@functools.cache
def _mongo(uri: str) -> MongoClient[Any]:
    """One client per server for the whole run (closed at exit), not one leaked per test."""
    client: MongoClient[Any] = MongoClient(uri, tz_aware=True)
    atexit.register(client.close)
    return client


def db_of(ferretdb: FerretDB, cluster: Cluster) -> Database[Any]:
    return _mongo(ferretdb.uri)[cluster.env["PAYMENT_DB_NAME"]]


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
