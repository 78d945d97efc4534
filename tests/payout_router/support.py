"""Shared pieces of the payout-router tests: a router of their own deployed with tronpy (so pausing it never
touches the genesis routers), the disburser wallet imported into wallet-manager with a policy that lets only
payout-router sign calls to that router, stubs under the cluster's identities, and tronpy (an independent
client) for balances and the router's events."""

from __future__ import annotations

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
from tronpay.payout_router.v1 import payout_router_pb2 as pb
from tronpay.payout_router.v1 import payout_router_pb2_grpc as pb_grpc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as wm_grpc
from tronpy import Tron
from tronpy.contract import Contract
from tronpy.keys import PrivateKey, keccak256
from tronpy.providers import HTTPProvider

from services.common import errors
from services.common.tron.address import private_key_to_address
from tests.harness.devnet import Devnet
from tests.harness.services import Cluster, ServiceProcess

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "contracts" / "artifacts"
TRX = 1_000_000
USDT = 1_000_000
DISBURSER_ROLE = keccak256(b"DISBURSER_ROLE")
PAUSER_ROLE = keccak256(b"PAUSER_ROLE")
COMPLIANCE_SIGNER_ROLE = keccak256(b"COMPLIANCE_SIGNER_ROLE")
STATE = pb.Payout
TERMINAL = (STATE.STATE_CONFIRMED, STATE.STATE_FAILED, STATE.STATE_CANCELLED)
PAID_TOPIC = keccak256(b"Paid(bytes32,address,uint256)").hex()
WAIT = {"timeout": 30, "interval": 0.2}


def rid() -> str:
    return "t-" + uuid.uuid4().hex


def fresh_address() -> str:
    return private_key_to_address(secrets.token_bytes(32))


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


class Actor:
    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        self.address = key.public_key.to_base58check_address()


class Chain:
    """tronpy against the devnet: deploys and administers the test router, reads balances and events."""

    def __init__(self, devnet: Devnet) -> None:
        self.devnet = devnet
        self.client = Tron(HTTPProvider(devnet.url, timeout=30))
        self.usdt = self.client.get_contract(devnet.usdt)
        self.usdt_owner = Actor(PrivateKey(bytes.fromhex(devnet.funded[0]["private_key"])))

    def deploy_router(
        self, admin: Actor, *, per_tx: int, per_day: int, batch: int, name: str = "PayoutRouterV0"
    ) -> Contract:
        art = json.loads((ARTIFACTS / f"{name}.json").read_text())
        proto = Contract(name=art["contractName"], bytecode=art["bytecode"], abi=art["abi"])
        params = proto.constructor.encode_parameter(self.devnet.usdt, admin.address, per_tx, per_day, batch)
        cntr = Contract(name=art["contractName"], bytecode=art["bytecode"] + params, abi=art["abi"])
        tx = (
            self.client.trx.deploy_contract(admin.address, cntr)
            .fee_limit(2_000 * TRX)
            .build()
            .sign(admin.key)
        )
        info = tx.broadcast().wait(**WAIT)
        assert info["receipt"]["result"] == "SUCCESS", info
        return self.client.get_contract(info["contract_address"])

    def send(self, contract: Contract, actor: Actor, method: str, *args: Any) -> dict[str, Any]:
        fn = contract.functions[method].with_owner(actor.address)
        info: dict[str, Any] = fn(*args).fee_limit(500 * TRX).build().sign(actor.key).broadcast().wait(**WAIT)
        assert info["receipt"]["result"] == "SUCCESS", info
        return info

    def balance(self, address: str) -> int:
        return int(self.usdt.functions.balanceOf(address))

    def trx(self, address: str) -> int:
        return int(self.client.get_account_balance(address) * TRX)

    def paid_events(self, router: str, txids: Iterable[str]) -> dict[str, int]:
        """How many Paid events the router emitted per on-chain payout id (hex) in these transactions."""
        out: dict[str, int] = {}
        for txid in set(txids):
            info = self.client.get_transaction_info(txid)
            for log in info.get("log", []):
                where = log["address"]
                if (
                    where if where.startswith("T") else self.client.to_base58check_address("41" + where)
                ) != router:
                    continue
                if log["topics"][0] == PAID_TOPIC:
                    out[log["topics"][1]] = out.get(log["topics"][1], 0) + 1
        return out

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

    def payouts(
        self,
        proc: ServiceProcess | None = None,
        *,
        subject: str = "alice",
        roles: Iterable[str] = ("operator",),
    ) -> pb_grpc.PayoutRouterServiceStub:
        """As the edge for a token of `subject` with `roles` (public RPCs)."""
        ch = self._open(proc or self.cluster["payout_router"], subject=subject, roles=tuple(roles))
        return pb_grpc.PayoutRouterServiceStub(ch)

    def operator(
        self,
        proc: ServiceProcess | None = None,
        *,
        subject: str = "bob",
        roles: Iterable[str] = ("approver",),
    ) -> pb_grpc.PayoutRouterServiceStub:
        """As the operator tool for `subject` (ApprovePayout, GetPayoutBatch are internal RPCs)."""
        ch = self._open(
            proc or self.cluster["payout_router"], identity="operator", subject=subject, roles=tuple(roles)
        )
        return pb_grpc.PayoutRouterServiceStub(ch)

    def wallets(self) -> wm_grpc.WalletManagerServiceStub:
        return wm_grpc.WalletManagerServiceStub(self._open(self.cluster["wallet_manager"]))

    def close(self) -> None:
        for ch in self.channels:
            ch.close()


@dataclass(frozen=True)
class Wallet:
    wallet_id: str
    address: str


def disburser_wallet(
    devnet: Devnet,
    wallets: wm_grpc.WalletManagerServiceStub,
    router: str,
    trx: int,
    *,
    messages: bool = False,
) -> Wallet:
    """An IMPORTED wallet only payout-router may sign with, for calls to `router` and TRX transfers (and
    personal messages, the KYC attestations, with `messages`)."""
    key = secrets.token_hex(32)
    address = private_key_to_address(bytes.fromhex(key))
    for txid in devnet.faucet(address, trx=trx) if trx else ():
        devnet.wait_for_tx(txid, solid=True)
    policy = wm.SigningPolicy(
        allowed_contract_types=[
            common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT,
            common_pb2.CONTRACT_TYPE_TRANSFER,
        ],
        allow_unlisted_assets=True,
        allowed_callers=["payout-router"],
        allowed_call_contracts=[router],
        allow_sign_message=messages,
    )
    created = wallets.CreateWallet(
        wm.CreateWalletRequest(
            request_id=rid(),
            wallet=wm.Wallet(owner_id="payout-tests", kind=wm.Wallet.KIND_IMPORTED, policy=policy),
            private_key=key,
        ),
        timeout=20,
    ).wallet
    return Wallet(created.wallet_id, address)


def wait_until(get: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float = 90.0) -> Any:
    """Poll `get` until `done` holds (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done after {timeout}s: {value}")
        time.sleep(0.3)


def payout_of(stub: pb_grpc.PayoutRouterServiceStub, payout_id: str) -> pb.Payout:
    return stub.GetPayout(pb.GetPayoutRequest(payout_id=payout_id), timeout=10).payout


def wait_final(
    stub: pb_grpc.PayoutRouterServiceStub, ids: Iterable[str], *, timeout: float = 180.0
) -> dict[str, pb.Payout]:
    """Every payout in a terminal state (bounded); returns them by id."""
    pending = list(ids)
    out: dict[str, pb.Payout] = {}
    deadline = time.monotonic() + timeout
    while pending:
        for pid in list(pending):
            p = payout_of(stub, pid)
            if p.state in TERMINAL:
                out[pid] = p
                pending.remove(pid)
        if not pending:
            break
        if time.monotonic() > deadline:
            states = {pid: STATE.State.Name(payout_of(stub, pid).state) for pid in pending[:10]}
            raise TimeoutError(f"{len(pending)} payouts not final after {timeout}s: {states}")
        time.sleep(0.5)
    return out
