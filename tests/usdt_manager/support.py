"""Shared pieces of the usdt-manager tests: starting tron-client + wallet-manager + usdt-manager against a
devnet, wallets with imported keys and a policy that lets usdt-manager sign, gRPC stubs under the cluster's
identities, an independent tronpy client for balances, and bounded waits for a transfer's state."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc
from tronpay.usdt_manager.v1 import usdt_manager_pb2 as pb
from tronpay.usdt_manager.v1 import usdt_manager_pb2_grpc as pb_grpc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as wm_grpc
from tronpy import Tron
from tronpy.contract import Contract
from tronpy.keys import PrivateKey
from tronpy.providers import HTTPProvider

from services.common import errors
from services.common.tron.address import private_key_to_address
from tests.harness.devnet import Devnet
from tests.harness.services import Cluster, ServiceFactory, ServiceProcess

REPO = Path(__file__).resolve().parents[2]
ARTIFACT = REPO / "contracts" / "artifacts" / "TetherToken.json"
TRX = 1_000_000
USDT = 1_000_000
SERVICES = ("tron_client", "wallet_manager", "usdt_manager")
ENCRYPTION_KEY = base64.b64encode(secrets.token_bytes(32)).decode()  # a fresh strong key per run
SPENDER = "TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HC"  # the address of private key 1: allow-listed in test policies
STATE = pb.OperationState
TERMINAL = (STATE.OPERATION_STATE_CONFIRMED, STATE.OPERATION_STATE_FAILED, STATE.OPERATION_STATE_EXPIRED)


def env(devnet: Devnet, **extra: str) -> dict[str, str]:
    """Environment of the three services: quick driver timings for a 0.5 s-block devnet."""
    base = {
        "USDT_CONTRACT_ADDRESS": devnet.usdt,
        "WALLET_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "USDT_POLL_SECONDS": "0.25",
        "USDT_REBROADCAST_SECONDS": "1.5",
        "USDT_LEASE_SECONDS": "10",
        "TRON_SYNC_POLL_SECONDS": "0.25",
        "LOG_LEVEL": "INFO",
    }
    return {**base, **extra}


def start(factory: ServiceFactory, devnet: Devnet, *names: str, **extra: str) -> Cluster:
    return factory.start(*(names or SERVICES), node_url=devnet.url, env=env(devnet, **extra))


def rid() -> str:
    return "t-" + uuid.uuid4().hex


def reason(err: grpc.RpcError) -> str:
    """The ErrorInfo reason of a failed call."""
    status = errors.status_from_error(err)
    assert status is not None, err
    for d in status.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            return str(info.reason)
    raise AssertionError(f"no ErrorInfo in {err}")


class Chain:
    """tronpy against the devnet: the independent view of balances, and the token owner's own calls (waits
    mine blocks on a manual devnet)."""

    def __init__(self, devnet: Devnet) -> None:
        self.devnet = devnet
        self.client = Tron(HTTPProvider(devnet.url, timeout=30))
        self._contracts: dict[str, Any] = {}

    def deploy_token(self, owner_key: str) -> str:
        """Our own TetherToken (blacklist, pause) deployed by `owner_key`, holding 10^12 base units."""
        key = PrivateKey(bytes.fromhex(owner_key))
        owner = key.public_key.to_base58check_address()
        art = json.loads(ARTIFACT.read_text())
        proto = Contract(name="TetherToken", bytecode=art["bytecode"], abi=art["abi"])
        params = proto.constructor.encode_parameter(owner, 10**12)
        cntr = Contract(name="TetherToken", bytecode=art["bytecode"] + params, abi=art["abi"])
        sent = (
            self.client.trx.deploy_contract(owner, cntr).fee_limit(1_000 * TRX).build().sign(key).broadcast()
        )
        info = self.devnet.wait_for_tx(sent.txid)
        assert info["receipt"]["result"] == "SUCCESS", info
        return str(self.client.get_transaction_info(sent.txid)["contract_address"])

    def contract(self, token: str) -> Any:
        if token not in self._contracts:
            self._contracts[token] = self.client.get_contract(token)
        return self._contracts[token]

    def balance(self, token: str, address: str) -> int:
        return int(self.contract(token).functions.balanceOf(address))

    def trx(self, address: str) -> int:
        return int(self.client.get_account_balance(address) * TRX)

    def send(self, token: str, owner_key: str, method: str, *args: Any) -> str:
        """Broadcast `method(*args)` on `token` signed by `owner_key`; its txid."""
        key = PrivateKey(bytes.fromhex(owner_key))
        fn = getattr(self.contract(token).functions, method)
        # tronpy counts expiration from the wall clock; a devnet that travelled in time is ahead of it.
        ahead = max(0, int(self.devnet.status()["head_timestamp"]) - int(time.time() * 1000))
        builder = fn(*args).with_owner(key.public_key.to_base58check_address()).fee_limit(100 * TRX)
        tx = builder.expiration(ahead + 60_000).build()
        return str(tx.sign(key).broadcast().txid)

    def call(self, token: str, owner_key: str, method: str, *args: Any) -> None:
        """`send`, then wait until it is included with receipt SUCCESS."""
        info = self.devnet.wait_for_tx(self.send(token, owner_key, method, *args))
        assert info["receipt"]["result"] == "SUCCESS", info

    def close(self) -> None:
        self.client.provider.sess.close()


@dataclass
class Stubs:
    """gRPC stubs under the cluster's identities (closed together)."""

    cluster: Cluster
    channels: list[grpc.Channel] = field(default_factory=list)

    def _open(self, proc: ServiceProcess, **identity: Any) -> grpc.Channel:
        ch = proc.channel(**identity)
        self.channels.append(ch)
        return ch

    def usdt(self, proc: ServiceProcess | None = None) -> pb_grpc.UsdtManagerServiceStub:
        """As the edge for an admin token (public RPCs)."""
        return pb_grpc.UsdtManagerServiceStub(self._open(proc or self.cluster["usdt_manager"]))

    def usdt_internal(self, proc: ServiceProcess | None = None) -> pb_grpc.UsdtManagerServiceStub:
        """As payout-router (GetTransfer, GetApproval are internal RPCs)."""
        ch = self._open(proc or self.cluster["usdt_manager"], identity="payout-router", roles=())
        return pb_grpc.UsdtManagerServiceStub(ch)

    def wallets(self) -> wm_grpc.WalletManagerServiceStub:
        return wm_grpc.WalletManagerServiceStub(self._open(self.cluster["wallet_manager"]))

    def wallets_operator(self) -> wm_grpc.WalletManagerServiceStub:
        ch = self._open(self.cluster["wallet_manager"], identity="operator", roles=())
        return wm_grpc.WalletManagerServiceStub(ch)

    def tron(self) -> tc_grpc.TronClientServiceStub:
        ch = self._open(self.cluster["tron_client"], identity="usdt-manager", roles=())
        return tc_grpc.TronClientServiceStub(ch)

    def close(self) -> None:
        for ch in self.channels:
            ch.close()


def policy(spenders: Iterable[str] = (SPENDER,), **fields: Any) -> wm.SigningPolicy:
    """Contract calls on any token, only usdt-manager asking; approvals only to `spenders`."""
    return wm.SigningPolicy(
        allowed_contract_types=[common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT],
        allow_unlisted_assets=True,
        allowed_callers=["usdt-manager"],
        allowed_spenders=list(spenders),
        **fields,
    )


@dataclass(frozen=True)
class Wallet:
    wallet_id: str
    address: str
    key: str


def new_wallets(
    devnet: Devnet,
    wallets: wm_grpc.WalletManagerServiceStub,
    count: int,
    *,
    trx: int = 200 * TRX,
    usdt: int = 1_000 * USDT,
    signing: wm.SigningPolicy | None = None,
) -> list[Wallet]:
    """IMPORTED wallets (so their addresses are watched) funded by the devnet faucet (solidified)."""
    out, txids = [], []
    for _ in range(count):
        key = secrets.token_hex(32)
        address = private_key_to_address(bytes.fromhex(key))
        txids += devnet.faucet(address, trx=trx, usdt=usdt) if trx or usdt else []
        created = wallets.CreateWallet(
            wm.CreateWalletRequest(
                request_id=rid(),
                wallet=wm.Wallet(
                    owner_id="usdt-tests", kind=wm.Wallet.KIND_IMPORTED, policy=signing or policy()
                ),
                private_key=key,
            ),
            timeout=20,
        ).wallet
        out.append(Wallet(created.wallet_id, address, key))
    for txid in txids:
        devnet.wait_for_tx(txid, solid=True)
    return out


def new_wallet(devnet: Devnet, wallets: wm_grpc.WalletManagerServiceStub, **options: Any) -> Wallet:
    """One wallet of `new_wallets`."""
    (wallet,) = new_wallets(devnet, wallets, 1, **options)
    return wallet


def fresh_address() -> str:
    return private_key_to_address(secrets.token_bytes(32))


def wait_until(
    get: Callable[[], Any],
    done: Callable[[Any], bool],
    *,
    timeout: float = 60.0,
    tick: Callable[[], None] | None = None,
    interval: float = 0.2,
) -> Any:
    """Poll `get` until `done` holds (bounded); `tick` runs between polls (mine a block, for example)."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done after {timeout}s: {value}")
        if tick is not None:
            tick()
        time.sleep(interval)


def transfer_of(stub: pb_grpc.UsdtManagerServiceStub, transfer_id: str) -> pb.Transfer:
    return stub.GetTransfer(pb.GetTransferRequest(transfer_id=transfer_id), timeout=10).transfer


def wait_transfers(
    stub: pb_grpc.UsdtManagerServiceStub,
    ids: Iterable[str],
    *,
    timeout: float = 60.0,
    tick: Callable[[], None] | None = None,
) -> dict[str, pb.Transfer]:
    """Every transfer in a terminal state (bounded); returns them by id."""
    pending = list(ids)
    out: dict[str, pb.Transfer] = {}
    deadline = time.monotonic() + timeout
    while pending:
        for tid in list(pending):
            t = transfer_of(stub, tid)
            if t.state in TERMINAL:
                out[tid] = t
                pending.remove(tid)
        if not pending:
            break
        if time.monotonic() > deadline:
            states = {tid: STATE.Name(transfer_of(stub, tid).state) for tid in pending[:10]}
            raise TimeoutError(f"{len(pending)} transfers not final after {timeout}s: {states}")
        if tick is not None:
            tick()
        time.sleep(0.25)
    return out
