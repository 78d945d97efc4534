"""Shared pieces of the trx-staking tests: starting tron-client + wallet-manager, then trx-staking (once the
staking wallet exists, its id in trx-staking's environment), wallets with imported keys and policies that let
trx-staking (or, for hot wallets, usdt-manager) sign, gRPC stubs under the cluster's identities, the devnet
read directly over HTTP as the independent view, and bounded waits."""

from __future__ import annotations

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
from tronpay.trx_staking.v1 import trx_staking_pb2 as pb
from tronpay.trx_staking.v1 import trx_staking_pb2_grpc as pb_grpc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as wm_grpc

from services.common import errors
from services.common.tron.address import from_base58, private_key_to_address
from tests.harness.devnet import Devnet
from tests.harness.net import free_port
from tests.harness.services import Cluster, ServiceProcess

TRX = 1_000_000
ENERGY = common_pb2.RESOURCE_TYPE_ENERGY
BANDWIDTH = common_pb2.RESOURCE_TYPE_BANDWIDTH
OP = pb.StakingOperation
TERMINAL = (OP.STATE_CONFIRMED, OP.STATE_FAILED, OP.STATE_EXPIRED)
STAKING_TYPES = [
    common_pb2.CONTRACT_TYPE_FREEZE_BALANCE_V2, common_pb2.CONTRACT_TYPE_UNFREEZE_BALANCE_V2,
    common_pb2.CONTRACT_TYPE_WITHDRAW_EXPIRE_UNFREEZE, common_pb2.CONTRACT_TYPE_DELEGATE_RESOURCE,
    common_pb2.CONTRACT_TYPE_UNDELEGATE_RESOURCE, common_pb2.CONTRACT_TYPE_VOTE_WITNESS,
    common_pb2.CONTRACT_TYPE_WITHDRAW_BALANCE,
]  # fmt: skip
ENCRYPTION_KEY = "tS7kq2Xv9LmB4nR8wZ1cY6pH3jF0dGaE+staking-tests"  # test-only, strong enough for the service


def env(devnet: Devnet, **extra: str) -> dict[str, str]:
    """Environment of the services: quick driver timings for a 0.5 s-block devnet."""
    base = {
        "USDT_CONTRACT_ADDRESS": devnet.usdt,
        "WALLET_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "STAKING_POLL_SECONDS": "0.25",
        "STAKING_REBROADCAST_SECONDS": "1.5",
        "STAKING_LEASE_SECONDS": "3",
        "STAKING_BROKER_SWEEP_SECONDS": "0.5",
        "STAKING_BROKER_WAIT_SECONDS": "15",
        "TRON_SYNC_ENABLED": "false",
    }
    return {**base, **extra}


def add_staking(cluster: Cluster, log_dir: Path, name: str, **extra: str) -> ServiceProcess:
    """Start one more trx-staking process (its own port) next to the cluster's services, with `extra` in its
    environment: replicas and differently configured brokers share the cluster's tron-client and
    wallet-manager (and, unless PAYMENT_DB_NAME says otherwise, the database)."""
    port = free_port()
    penv = {
        **cluster.env, "TRX_STAKING_PORT": str(port), "METRICS_PORT": str(free_port()),
        "HEALTH_PORT": str(free_port()), **extra,
    }  # fmt: skip
    proc = ServiceProcess("trx_staking", port, penv, log_dir / f"{name}-{port}.log")
    cluster.processes[name] = proc
    proc.start()
    return proc


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


def violations(err: grpc.RpcError) -> dict[str, str]:
    """field -> reason of the BadRequest of a failed call."""
    status = errors.status_from_error(err)
    assert status is not None, err
    out: dict[str, str] = {}
    for d in status.details:
        if d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            d.Unpack(bad)
            out.update({v.field: v.reason for v in bad.field_violations})
    return out


class Node:
    """The devnet read directly over its HTTP API (visible=true): the view independent of the cluster."""

    def __init__(self, devnet: Devnet) -> None:
        self.devnet = devnet

    def account(self, address: str) -> dict[str, Any]:
        return dict(self.devnet.post("wallet/getaccount", {"address": address, "visible": True}))

    def resource(self, address: str) -> dict[str, Any]:
        return dict(self.devnet.post("wallet/getaccountresource", {"address": address, "visible": True}))

    def balance(self, address: str) -> int:
        return int(self.account(address).get("balance", 0))

    def frozen(self, address: str, kind: str = "ENERGY") -> int:
        return sum(int(f.get("amount", 0)) for f in self.account(address).get("frozenV2", []) if
                   f.get("type", "BANDWIDTH") == kind)  # fmt: skip

    def reward(self, address: str) -> int:
        return int(self.devnet.post("wallet/getReward", {"address": address})["reward"])

    def delegated(self, src: str, dst: str) -> list[dict[str, Any]]:
        body = {"fromAddress": src, "toAddress": dst, "visible": True}
        return list(self.devnet.post("wallet/getdelegatedresourcev2", body).get("delegatedResource", []))

    def head_ms(self) -> int:
        return int(self.devnet.status()["head_timestamp"])

    def tx_info(self, txid: str, solid: bool = True) -> dict[str, Any]:
        return dict(self.devnet.wait_for_tx(txid, solid=solid))


@dataclass
class Stubs:
    """gRPC stubs under the cluster's identities (closed together)."""

    cluster: Cluster
    channels: list[grpc.Channel] = field(default_factory=list)

    def _open(self, proc: ServiceProcess, **identity: Any) -> grpc.Channel:
        ch = proc.channel(**identity)
        self.channels.append(ch)
        return ch

    def staking(self, name: str = "trx_staking") -> pb_grpc.TrxStakingServiceStub:
        """As the edge for an admin token (public RPCs)."""
        return pb_grpc.TrxStakingServiceStub(self._open(self.cluster[name]))

    def staking_operator(self, name: str = "trx_staking") -> pb_grpc.TrxStakingServiceStub:
        """As the operator's tools: DelegateResource, UndelegateResource, VoteWitnesses and
        GetStakingOperation are internal RPCs."""
        return pb_grpc.TrxStakingServiceStub(self._open(self.cluster[name], identity="operator", roles=()))

    def broker(self, name: str = "trx_staking") -> pb_grpc.TrxStakingServiceStub:
        """As usdt-manager, a caller of the energy broker."""
        return pb_grpc.TrxStakingServiceStub(
            self._open(self.cluster[name], identity="usdt-manager", roles=())
        )

    def wallets(self) -> wm_grpc.WalletManagerServiceStub:
        return wm_grpc.WalletManagerServiceStub(self._open(self.cluster["wallet_manager"]))

    def signer(self) -> wm_grpc.WalletManagerServiceStub:
        """As usdt-manager: the hot wallets' policies let it sign."""
        ch = self._open(self.cluster["wallet_manager"], identity="usdt-manager", roles=())
        return wm_grpc.WalletManagerServiceStub(ch)

    def tron(self) -> tc_grpc.TronClientServiceStub:
        ch = self._open(self.cluster["tron_client"], identity="usdt-manager", roles=())
        return tc_grpc.TronClientServiceStub(ch)

    def close(self) -> None:
        for ch in self.channels:
            ch.close()


def staking_policy(receivers: Iterable[str] = (), witnesses: Iterable[str] = ()) -> wm.SigningPolicy:
    """Every Stake 2.0 contract, only trx-staking asking; delegations (locked too) to `receivers`, votes
    for `witnesses`."""
    return wm.SigningPolicy(
        allowed_contract_types=STAKING_TYPES, allow_unlisted_assets=True, allowed_callers=["trx-staking"],
        allowed_resource_receivers=list(receivers), allow_locked_delegation=True,
        allowed_witnesses=list(witnesses),
    )  # fmt: skip


def hot_policy() -> wm.SigningPolicy:
    """Contract calls (a USDT transfer), only usdt-manager asking."""
    return wm.SigningPolicy(
        allowed_contract_types=[common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT],
        allow_unlisted_assets=True,
        allowed_callers=["usdt-manager"],
    )


@dataclass(frozen=True)
class Wallet:
    wallet_id: str
    address: str
    key: str


def new_key() -> tuple[str, str]:
    """(private key hex, address) of a fresh key."""
    key = secrets.token_hex(32)
    return key, private_key_to_address(bytes.fromhex(key))


def new_wallet(
    devnet: Devnet,
    wallets: wm_grpc.WalletManagerServiceStub,
    policy: wm.SigningPolicy,
    *,
    trx: int = 0,
    usdt: int = 0,
    key: tuple[str, str] | None = None,
) -> Wallet:
    """An IMPORTED wallet funded by the devnet faucet (solidified)."""
    priv, address = key or new_key()
    txids = devnet.faucet(address, trx=trx, usdt=usdt) if trx or usdt else []
    created = wallets.CreateWallet(
        wm.CreateWalletRequest(
            request_id=rid(),
            wallet=wm.Wallet(owner_id="staking-tests", kind=wm.Wallet.KIND_IMPORTED, policy=policy),
            private_key=priv,
        ),
        timeout=20,
    ).wallet
    for txid in txids:
        devnet.wait_for_tx(txid, solid=True)
    return Wallet(created.wallet_id, address, priv)


def wait_until(get: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float = 60.0) -> Any:
    """Poll `get` until `done` holds (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done after {timeout}s: {value}")
        time.sleep(0.2)


def operation(stub: pb_grpc.TrxStakingServiceStub, op_id: str) -> pb.StakingOperation:
    return stub.GetStakingOperation(pb.GetStakingOperationRequest(operation_id=op_id), timeout=10).operation


def wait_final(stub: pb_grpc.TrxStakingServiceStub, op_id: str, timeout: float = 60.0) -> pb.StakingOperation:
    """The operation once terminal (bounded)."""
    return wait_until(lambda: operation(stub, op_id), lambda o: o.state in TERMINAL, timeout=timeout)


def confirmed(stub: pb_grpc.TrxStakingServiceStub, op_id: str, timeout: float = 60.0) -> pb.StakingOperation:
    op = wait_final(stub, op_id, timeout)
    assert op.state == OP.STATE_CONFIRMED, op
    return op


def hex_address(address: str) -> str:
    return from_base58(address).hex()
