"""Deploy PayoutRouterV0 and PayoutRouterKYC on the cluster's network through the cluster's own signing, and
grant their roles (contracts/README.md).

    python -m tools.deploy_routers --deployer-wallet WALLET_ID --max-per-tx N --max-per-day N \\
        [--max-batch-size 100] [--disburser T...] [--pauser T...] [--admin T...] \\
        [--compliance-signer T...] [--only v0|kyc] [--router T...] [--kyc-router T...] \\
        [--state .data/deploy-routers.json]

It talks to the running cluster over gRPC with mutual TLS as the operator identity (TLS_DIR/operator):
tron-client builds each transaction (the CreateSmartContract, then the grantRole calls), wallet-manager
signs it with the deployer wallet, tron-client broadcasts it, and the tool waits for its solidified receipt.
The deployer wallet's policy must name "operator" in allowed_callers, set allow_contract_creation (which
also lets it call the contracts it deployed: the grants) and allow TriggerSmartContract and its TRX fees.
The deployer's address becomes each router's admin (DEFAULT_ADMIN_ROLE); --admin, --disburser, --pauser
and --compliance-signer (the KYC router only) grant the roles to more accounts (each may be repeated).
Limits are base units of the token (USDT: 6 decimals); the token is the cluster's USDT unless --token.

Rerunning is safe. A deployment's signed transaction is written to the state file before it is first
broadcast, sent again unchanged until it is in a solidified block, and replaced by a new one only once it
provably expired unseen. A router recorded there (or named with --router / --kyc-router) is checked on
chain and not deployed again; a role its account holds already is not granted again.

Prints PAYOUT_ROUTER_CONTRACT_ADDRESS=... and PAYOUT_KYC_ROUTER_CONTRACT_ADDRESS=... on stdout (progress
on stderr). Exit status: 0 when everything is deployed and granted, 1 when the cluster or the chain refused
something (the reason is printed; rerun once it is fixed), 2 for bad arguments, a state file of another
network, or a cluster out of reach.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as wm_grpc

from services.common import errors
from services.common.access import Peer
from services.common.clients import open_channel
from services.common.tls import Credentials, TlsError
from services.common.tron.abi import decode_result, encode_args
from services.common.tron.address import InvalidAddress, from_base58, keccak256

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "contracts" / "artifacts"
V0, KYC = "PayoutRouterV0", "PayoutRouterKYC"
ENV_NAMES = {V0: "PAYOUT_ROUTER_CONTRACT_ADDRESS", KYC: "PAYOUT_KYC_ROUTER_CONTRACT_ADDRESS"}
ROLES = {
    "admin": bytes(32),  # DEFAULT_ADMIN_ROLE
    "disburser": keccak256(b"DISBURSER_ROLE"),
    "pauser": keccak256(b"PAUSER_ROLE"),
    "compliance_signer": keccak256(b"COMPLIANCE_SIGNER_ROLE"),
}
CONSTRUCTOR = ["address", "address", "uint256", "uint256", "uint256"]  # token, admin, maxPerTx/Day, batch
GRANT_FEE_LIMIT_SUN = 100_000_000  # 100 TRX: a grantRole uses ~50 000 energy
MAX_DEPLOY_ATTEMPTS = 3  # transactions built for one deployment, each provably expired before the next
POLL_SECONDS = 1.0
REBROADCAST_SECONDS = 6.0
TX_EXPIRATION_SECONDS = 120
DEFAULT_STATE = Path(".data/deploy-routers.json")


class Refused(Exception):
    """The cluster or the chain refused a step (exit 1); the message says what and why."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _reason(exc: grpc.aio.AioRpcError) -> str:
    status = errors.status_from_error(exc)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


def _refusal(exc: grpc.aio.AioRpcError, what: str) -> Refused:
    return Refused(f"{what}: {exc.code().name} {_reason(exc)} {exc.details() or ''}".rstrip())


def _ms(ts: Any) -> int:
    return int(ts.ToMilliseconds())


class State:
    """The state file: per router its address once deployed, or the signed deployment in flight. Written
    atomically (a crash leaves the old or the new file, never half of one)."""

    def __init__(self, path: Path, chain_id: str, deployer: str) -> None:
        self.path = path
        self.doc: dict[str, Any] = {"chain_id": chain_id, "deployer": deployer, "routers": {}}
        if path.exists():
            stored = json.loads(path.read_text())
            recorded = (stored.get("chain_id"), stored.get("deployer"))
            if recorded != (chain_id, deployer):
                raise ValueError(
                    f"{path} records chain and deployer {recorded}, not {(chain_id, deployer)}: "
                    "use another --state"
                )
            self.doc = stored

    def router(self, name: str) -> dict[str, Any]:
        routers: dict[str, Any] = self.doc["routers"]
        return dict(routers.get(name, {}))

    def put(self, name: str, entry: dict[str, Any]) -> None:
        self.doc["routers"][name] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.doc, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.path)


@dataclass
class Grant:
    role: str
    account: str


class Deployer:
    """Builds through tron-client, signs through wallet-manager, broadcasts, waits for solidified receipts."""

    def __init__(
        self,
        tron: tc_grpc.TronClientServiceStub,
        wallets: wm_grpc.WalletManagerServiceStub,
        wallet_id: str,
        address: str,
        *,
        timeout: float,
        fee_limit_sun: int,
    ) -> None:
        self.tron, self.wallets = tron, wallets
        self.wallet_id, self.address = wallet_id, address
        self.timeout, self.fee_limit_sun = timeout, fee_limit_sun

    # ---- one transaction ------------------------------------------------------------------------
    async def sign(self, tx: common_pb2.Transaction, purpose: str) -> common_pb2.Transaction:
        # The txID names the request: signing the same transaction again gets the same signature back.
        req = wm.SignTransactionRequest(
            request_id=f"deploy.{tx.txid[:32]}", wallet_id=self.wallet_id, transaction=tx, purpose=purpose
        )
        try:
            return (await self.wallets.SignTransaction(req)).signed_transaction
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                raise
            raise _refusal(exc, f"wallet-manager refused to sign ({purpose})") from None

    async def info(self, txid: str) -> tc.TransactionInfo | None:
        try:
            return (await self.tron.GetTransactionInfo(tc.GetTransactionInfoRequest(txid=txid))).info
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    async def _broadcast(self, signed: common_pb2.Transaction, n: int) -> None:
        req = tc.BroadcastTransactionRequest(request_id=f"deploy.{signed.txid[:32]}.{n}", transaction=signed)
        try:
            await self.tron.BroadcastTransaction(req)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE or _reason(exc) == "TRANSACTION_EXPIRED":
                return  # tried again / settled by the expiry check
            raise _refusal(exc, f"the node refused transaction {signed.txid}") from None

    async def drive(self, signed: common_pb2.Transaction) -> tc.TransactionInfo | None:
        """Send the signed transaction (again, unchanged) until it is in a solidified block: its receipt;
        None once it provably can never be included (its expiration is not after the solidified block's
        time and no block holds it)."""
        expiration = _ms(signed.expiration_time)
        deadline = time.monotonic() + self.timeout
        sent, last_sent = 0, 0.0
        while True:
            info = await self.info(signed.txid)
            if info is not None and info.solidified:
                return info
            if info is None:
                height = await self.tron.GetNetworkHeight(tc.GetNetworkHeightRequest())
                if _ms(height.solidified_block_time) >= expiration:
                    # Read after the solidified time: a block holding it would be final already.
                    if await self.info(signed.txid) is None:
                        return None
                    continue
                if time.monotonic() - last_sent >= REBROADCAST_SECONDS:
                    await self._broadcast(signed, sent)
                    sent, last_sent = sent + 1, time.monotonic()
            if time.monotonic() > deadline:
                raise Refused(
                    f"transaction {signed.txid} has no solidified receipt after {self.timeout:.0f} s; "
                    "rerun to go on waiting"
                )
            await asyncio.sleep(POLL_SECONDS)

    @staticmethod
    def succeeded(info: tc.TransactionInfo, what: str) -> None:
        if info.result != tc.TransactionInfo.RESULT_SUCCESS:
            result = tc.TransactionInfo.Result.Name(info.result).removeprefix("RESULT_")
            raise Refused(f"{what} failed on chain ({info.txid}): {result} {info.failure_reason}".rstrip())

    # ---- deployments ----------------------------------------------------------------------------
    async def deployed(self, name: str, address: str, *, ours: bool) -> None:
        """Check that `address` holds a contract (deployed by us, when `ours`) of that name."""
        try:
            found = (await self.tron.GetContract(tc.GetContractRequest(contract_address=address))).contract
        except grpc.aio.AioRpcError as exc:
            raise _refusal(exc, f"{name} at {address}") from None
        if found.name != name or (ours and found.origin_address != self.address):
            raise Refused(
                f"{address} holds {found.name!r} deployed by {found.origin_address}, "
                f"not {name} by {self.address}"
            )

    async def deploy(self, state: State, name: str, args: Sequence[Any]) -> str:
        entry = state.router(name)
        if entry.get("address"):
            await self.deployed(name, entry["address"], ours=True)
            log(f"{name}: already deployed at {entry['address']}")
            return str(entry["address"])
        artifact = json.loads((ARTIFACTS / f"{name}.json").read_text())
        for _ in range(MAX_DEPLOY_ATTEMPTS):
            if not entry.get("signed"):
                signed, predicted = await self._signed_deployment(name, artifact, args)
                entry = {
                    "txid": signed.txid,
                    "signed": signed.SerializeToString().hex(),
                    "predicted": predicted,
                }
                state.put(name, entry)  # stored before it is first broadcast
                log(f"{name}: deploying at {predicted} (transaction {signed.txid})")
            signed = common_pb2.Transaction.FromString(bytes.fromhex(entry["signed"]))
            info = await self.drive(signed)
            if info is None:
                log(f"{name}: transaction {signed.txid} expired unseen; building a new one")
                entry = {}
                state.put(name, entry)
                continue
            if info.result != tc.TransactionInfo.RESULT_SUCCESS:
                state.put(name, {"failed_txid": info.txid})  # final: a rerun builds a new deployment
                self.succeeded(info, f"deploying {name}")
            entry = {"address": info.contract_address, "txid": info.txid, "block": info.block.number}
            state.put(name, entry)
            log(f"{name}: deployed at {info.contract_address} in block {info.block.number}")
            return info.contract_address
        raise Refused(f"{name}: {MAX_DEPLOY_ATTEMPTS} deployment transactions expired unseen")

    async def _signed_deployment(
        self, name: str, artifact: dict[str, Any], args: Sequence[Any]
    ) -> tuple[common_pb2.Transaction, str]:
        params = tc.CreateSmartContractParams(
            name=name,
            abi_json=json.dumps(artifact["abi"]),
            bytecode=bytes.fromhex(artifact["bytecode"]) + encode_args(CONSTRUCTOR, list(args)),
            consume_user_resource_percent=100,  # every caller pays its own energy
            origin_energy_limit=10_000_000,
            fee_limit_sun=self.fee_limit_sun,
        )
        req = tc.BuildTransactionRequest(
            owner_address=self.address,
            create_smart_contract=params,
            expiration=duration_pb2.Duration(seconds=TX_EXPIRATION_SECONDS),
        )
        try:
            built = await self.tron.BuildTransaction(req)
        except grpc.aio.AioRpcError as exc:
            raise _refusal(exc, f"tron-client refused to build the {name} deployment") from None
        return await self.sign(built.transaction, f"deploy {name}"), built.contract_address

    # ---- roles ----------------------------------------------------------------------------------
    async def has_role(self, router: str, role: bytes, account: str) -> bool:
        req = tc.TriggerConstantContractRequest(
            owner_address=router,
            contract_address=router,
            function_selector="hasRole(bytes32,address)",
            parameter=encode_args(["bytes32", "address"], [role, account]),
        )
        resp = await self.tron.TriggerConstantContract(req)
        if not resp.success or len(resp.result) < 32:
            raise Refused(f"hasRole failed on {router}: not a payout router")
        return bool(decode_result(["bool"], bytes(resp.result[:32]))[0])

    async def grant(self, name: str, router: str, grant: Grant) -> None:
        role = ROLES[grant.role]
        if await self.has_role(router, role, grant.account):
            log(f"{name}: {grant.account} holds the {grant.role} role already")
            return
        if not await self.has_role(router, ROLES["admin"], self.address):
            raise Refused(
                f"{name} at {router}: the deployer {self.address} is not its admin, cannot grant roles"
            )
        call = tc.TriggerSmartContractParams(
            contract_address=router,
            function_selector="grantRole(bytes32,address)",
            parameter=encode_args(["bytes32", "address"], [role, grant.account]),
            fee_limit_sun=GRANT_FEE_LIMIT_SUN,
        )
        req = tc.BuildTransactionRequest(
            owner_address=self.address,
            trigger_smart_contract=call,
            expiration=duration_pb2.Duration(seconds=TX_EXPIRATION_SECONDS),
        )
        try:
            built = (await self.tron.BuildTransaction(req)).transaction
        except grpc.aio.AioRpcError as exc:
            raise _refusal(exc, "tron-client refused to build the grant") from None
        # A grant is idempotent on chain: a crash here is repaired by running again (hasRole above).
        signed = await self.sign(built, f"grant {grant.role} on {name} to {grant.account}")
        info = await self.drive(signed)
        if info is None:
            raise Refused(f"granting {grant.role} to {grant.account} expired unseen; rerun")
        self.succeeded(info, f"granting {grant.role} to {grant.account} on {name}")
        log(f"{name}: granted {grant.role} to {grant.account}")


# ---- the command --------------------------------------------------------------------------------------


def _address(value: str) -> str:
    try:
        from_base58(value)
    except InvalidAddress as exc:
        raise argparse.ArgumentTypeError(f"not a TRON address: {exc}") from None
    return value


def _positive(value: str) -> int:
    n = int(value)
    if n <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return n


def _target(host_var: str, port_var: str, port: int) -> str:
    return f"{os.environ.get(host_var, '127.0.0.1')}:{os.environ.get(port_var, str(port))}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.deploy_routers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--deployer-wallet", required=True, help="wallet-manager wallet id that signs")
    p.add_argument("--max-per-tx", type=_positive, required=True, help="largest payout (token base units)")
    p.add_argument("--max-per-day", type=_positive, required=True, help="payouts per UTC day (base units)")
    p.add_argument("--max-batch-size", type=_positive, default=100, help="payouts per batch call (100)")
    p.add_argument("--token", type=_address, help="the token the routers pay (default: the cluster's USDT)")
    p.add_argument("--only", choices=("v0", "kyc"), help="deploy only PayoutRouterV0 or PayoutRouterKYC")
    p.add_argument("--router", type=_address, help="use this PayoutRouterV0 instead of deploying one")
    p.add_argument("--kyc-router", type=_address, help="use this PayoutRouterKYC instead of deploying one")
    for role in ("admin", "disburser", "pauser", "compliance-signer"):
        p.add_argument(f"--{role}", type=_address, action="append", default=[], help=f"grant {role} to")
    p.add_argument("--fee-limit-trx", type=_positive, default=1_000, help="per deployment (1000 TRX)")
    p.add_argument("--state", type=Path, default=DEFAULT_STATE, help=f"state file ({DEFAULT_STATE})")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each transaction")
    p.add_argument("--tron-client", default=_target("TRON_CLIENT_HOST", "TRON_CLIENT_PORT", 8085))
    p.add_argument("--wallet-manager", default=_target("WALLET_MANAGER_HOST", "WALLET_MANAGER_PORT", 8087))
    p.add_argument("--tls-dir", type=Path, default=Path(os.environ.get("TLS_DIR", ".data/pki")))
    return p


async def run(args: argparse.Namespace) -> int:
    creds = Credentials.load(args.tls_dir, Peer.OPERATOR.value)
    tron_ch = open_channel(args.tron_client, Peer.TRON_CLIENT.value, creds, 30.0)
    wallet_ch = open_channel(args.wallet_manager, Peer.WALLET_MANAGER.value, creds, 30.0)
    try:
        tron, wallets = tc_grpc.TronClientServiceStub(tron_ch), wm_grpc.WalletManagerServiceStub(wallet_ch)
        network = await tron.GetNetworkInfo(tc.GetNetworkInfoRequest())
        try:
            wallet = (await wallets.GetWallet(wm.GetWalletRequest(wallet_id=args.deployer_wallet))).wallet
        except grpc.aio.AioRpcError as exc:
            raise _refusal(exc, f"wallet {args.deployer_wallet}") from None
        deployer = Deployer(
            tron,
            wallets,
            wallet.wallet_id,
            wallet.address,
            timeout=args.timeout,
            fee_limit_sun=args.fee_limit_trx * 1_000_000,
        )
        try:
            state = State(args.state, network.chain_id, wallet.address)
        except ValueError as exc:
            log(str(exc))
            return 2
        token = args.token or network.usdt_contract_address
        log(f"network {network.network} (chain {network.chain_id}), deployer {wallet.address}, token {token}")
        ctor = [token, wallet.address, args.max_per_tx, args.max_per_day, args.max_batch_size]
        wanted = [n for n in (V0, KYC) if args.only is None or args.only == {V0: "v0", KYC: "kyc"}[n]]
        given = {V0: args.router, KYC: args.kyc_router}
        grants = [Grant("admin", a) for a in args.admin] + [Grant("disburser", a) for a in args.disburser]
        grants += [Grant("pauser", a) for a in args.pauser]
        addresses: dict[str, str] = {}
        for name in wanted:
            if given[name]:
                await deployer.deployed(name, given[name], ours=False)
                addresses[name] = given[name]
            else:
                addresses[name] = await deployer.deploy(state, name, ctor)
            extra = [Grant("compliance_signer", a) for a in args.compliance_signer] if name == KYC else []
            for grant in grants + extra:
                await deployer.grant(name, addresses[name], grant)
        for name, address in addresses.items():
            print(f"{ENV_NAMES[name]}={address}", flush=True)
        return 0
    finally:
        await tron_ch.close()
        await wallet_ch.close()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return asyncio.run(run(args))
    except Refused as exc:
        log(f"refused: {exc}")
        return 1
    except TlsError as exc:
        log(str(exc))
        return 2
    except grpc.aio.AioRpcError as exc:
        log(f"the cluster cannot be reached or failed: {exc.code().name} {exc.details() or ''}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
