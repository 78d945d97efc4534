"""The `deploy` command (tools/deploy_routers.py, `make deploy-routers`) against the rig's running cluster:
PayoutRouterV0 and PayoutRouterKYC deployed through tron-client and the deployer wallet in wallet-manager
(signing for the operator identity), roles granted, addresses printed; a second run deploys nothing and only
grants what is missing; a payout-router configured with the printed address pays through the new router.
tronpy, an independent client, reads the contracts and the balances."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.payout_router.v1 import payout_router_pb2 as pb
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as wm_grpc
from tronpy.keys import keccak256

from services.common.tron.abi import encode_args
from services.common.tron.address import private_key_to_address
from tests.harness.pki import pki_dir
from tests.payout_router.conftest import SERVICES, Rig, env
from tests.payout_router.support import (
    DISBURSER_ROLE,
    PAUSER_ROLE,
    REPO,
    STATE,
    TRX,
    USDT,
    Wallet,
    disburser_wallet,
    fresh_address,
    reason,
    rid,
    wait_final,
)

ADMIN_ROLE = bytes(32)


def deployer_wallet(rig: Rig, callers: list[str]) -> Wallet:
    """An IMPORTED wallet that may deploy contracts (and so call those it deployed) for `callers`."""
    key = secrets.token_hex(32)
    address = private_key_to_address(bytes.fromhex(key))
    for txid in rig.devnet.faucet(address, trx=5_000 * TRX):
        rig.devnet.wait_for_tx(txid, solid=True)
    policy = wm.SigningPolicy(
        allowed_contract_types=[common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT],
        allow_contract_creation=True,
        allow_unlisted_assets=True,
        allowed_callers=callers,
    )
    created = (
        rig.stubs.wallets()
        .CreateWallet(
            wm.CreateWalletRequest(
                request_id=rid(),
                wallet=wm.Wallet(owner_id="deploy-tests", kind=wm.Wallet.KIND_IMPORTED, policy=policy),
                private_key=key,
            ),
            timeout=20,
        )
        .wallet
    )
    return Wallet(created.wallet_id, address)


def deploy(rig: Rig, wallet: Wallet, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "tools.deploy_routers",
        "--deployer-wallet", wallet.wallet_id,
        "--max-per-tx", str(10_000 * USDT), "--max-per-day", str(1_000_000 * USDT), "--max-batch-size", "50",
        "--token", rig.devnet.usdt, "--state", str(state), "--timeout", "120",
        "--tron-client", f"127.0.0.1:{rig.cluster['tron_client'].port}",
        "--wallet-manager", f"127.0.0.1:{rig.cluster['wallet_manager'].port}",
        "--tls-dir", str(pki_dir()),
        *args,
    ]  # fmt: skip
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)


def addresses(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.split())


def has_role(rig: Rig, router: str, role: bytes, account: str) -> bool:
    return bool(rig.chain.client.get_contract(router).functions.hasRole(role, account))


def test_deploy_grant_rerun_and_pay_through_the_new_router(rig: Rig, tmp_path: Path) -> None:
    deployer = deployer_wallet(rig, ["operator"])
    state = tmp_path / "deploy-routers.json"
    first = deploy(
        rig, deployer, state, "--pauser", rig.admin.address, "--compliance-signer", rig.admin.address
    )
    assert first.returncode == 0, first.stderr
    printed = addresses(first.stdout)
    router, kyc = printed["PAYOUT_ROUTER_CONTRACT_ADDRESS"], printed["PAYOUT_KYC_ROUTER_CONTRACT_ADDRESS"]
    assert router != kyc
    for name, address in (("PayoutRouterV0", router), ("PayoutRouterKYC", kyc)):
        contract = rig.chain.client.get_contract(address)
        assert contract.name == name and contract.origin_address == deployer.address
        assert int(contract.functions.maxPerTx()) == 10_000 * USDT
        assert int(contract.functions.maxBatchSize()) == 50
        assert has_role(rig, address, ADMIN_ROLE, deployer.address)
        assert has_role(rig, address, PAUSER_ROLE, rig.admin.address)
    compliance = rig.chain.client.get_contract(kyc).functions.COMPLIANCE_SIGNER_ROLE()
    assert has_role(rig, kyc, compliance, rig.admin.address)
    assert not has_role(rig, router, compliance, rig.admin.address)  # a KYC role only

    # A disburser wallet allowed to call the new router; a second run deploys nothing, grants its role.
    disburser = disburser_wallet(rig.devnet, rig.stubs.wallets(), router, trx=2_000 * TRX)
    second = deploy(rig, deployer, state, "--pauser", rig.admin.address, "--disburser", disburser.address)
    assert second.returncode == 0, second.stderr
    assert addresses(second.stdout) == printed
    assert second.stderr.count("already deployed") == 2 and "deploying" not in second.stderr
    assert "holds the pauser role already" in second.stderr
    assert has_role(rig, router, DISBURSER_ROLE, disburser.address)

    for txid in rig.devnet.faucet(router, usdt=1_000 * USDT):
        rig.devnet.wait_for_tx(txid)
    ports = {f"{n.upper()}_PORT": str(rig.cluster[n].port) for n in SERVICES if n != "payout_router"}
    proc = rig.factory.start("payout_router", node_url=rig.devnet.url, env=env(rig.devnet, router, **ports))[
        "payout_router"
    ]
    try:
        stub = rig.stubs.payouts(proc)
        to = fresh_address()
        created = stub.InitiatePayout(
            pb.InitiatePayoutRequest(
                request_id=rid(), wallet_id=disburser.wallet_id, recipient_address=to,
                asset=common_pb2.ASSET_USDT, amount=12 * USDT,
            ),
            timeout=30,
        ).payout  # fmt: skip
        done = wait_final(stub, [created.payout_id])[created.payout_id]
        assert done.state == STATE.STATE_CONFIRMED, done.failure_reason
        assert rig.chain.balance(to) == 12 * USDT and rig.chain.balance(router) == 988 * USDT
        onchain_id = keccak256(created.payout_id.encode()).hex()
        assert rig.chain.paid_events(router, [done.txid]) == {onchain_id: 1}
    finally:
        proc.stop()


def test_a_wallet_that_does_not_name_the_operator_does_not_sign(rig: Rig, tmp_path: Path) -> None:
    services_only = deployer_wallet(rig, [])  # empty: every cluster service, but not the operator tools
    refused = deploy(rig, services_only, tmp_path / "state.json", "--only", "v0")
    assert refused.returncode == 1 and "CALLER_NOT_ALLOWED" in refused.stderr, refused.stderr
    assert refused.stdout == ""


def test_the_deployer_calls_only_contracts_its_account_deployed(rig: Rig) -> None:
    """allow_contract_creation lets the deployer call what it deployed, not other contracts (the rig's router
    was deployed by another account)."""
    deployer = deployer_wallet(rig, ["operator"])
    with (
        rig.cluster["tron_client"].channel("operator") as tch,
        rig.cluster["wallet_manager"].channel("operator") as wch,
    ):
        call = tc.TriggerSmartContractParams(
            contract_address=rig.router.contract_address,
            function_selector="grantRole(bytes32,address)",
            parameter=encode_args(["bytes32", "address"], [DISBURSER_ROLE, deployer.address]),
            fee_limit_sun=100 * TRX,
        )
        tx = (
            tc_grpc.TronClientServiceStub(tch)
            .BuildTransaction(
                tc.BuildTransactionRequest(owner_address=deployer.address, trigger_smart_contract=call),
                timeout=15,
            )
            .transaction
        )
        with pytest.raises(grpc.RpcError) as refused:
            wm_grpc.WalletManagerServiceStub(wch).SignTransaction(
                wm.SignTransactionRequest(request_id=rid(), wallet_id=deployer.wallet_id, transaction=tx),
                timeout=15,
            )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason(refused.value) == "CALL_NOT_ALLOWED"
