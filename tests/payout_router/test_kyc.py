"""PRKYC through the real services: a payout-router with PAYOUT_KYC_REQUIRED pays USDT through a
PayoutRouterKYC of the test's own, only to recipients on the allowlist, whose attestations the compliance
wallet (in wallet-manager) signs with the TIP-191 prefix. A recipient missing from the allowlist, removed from
it or whose attestation expired is refused before anything is signed; tronpy confirms the balances."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.payout_router.v1 import payout_router_pb2 as pb
from tronpay.payout_router.v1 import payout_router_pb2_grpc as pb_grpc

from tests.harness.services import ServiceProcess
from tests.payout_router.conftest import SERVICES, Rig, env
from tests.payout_router.support import (
    COMPLIANCE_SIGNER_ROLE,
    DISBURSER_ROLE,
    STATE,
    TRX,
    USDT,
    Wallet,
    disburser_wallet,
    fresh_address,
    reason,
    rid,
    wait_final,
    wait_until,
)


@dataclass
class Kyc:
    router: str
    disburser: Wallet
    compliance: Wallet
    ports: dict[str, str]


@pytest.fixture(scope="module")
def kyc(rig: Rig) -> Kyc:
    router = rig.chain.deploy_router(
        rig.admin, per_tx=10_000 * USDT, per_day=1_000_000 * USDT, batch=100, name="PayoutRouterKYC"
    )
    for txid in rig.devnet.faucet(router.contract_address, usdt=10_000 * USDT):
        rig.devnet.wait_for_tx(txid)
    wallets = rig.stubs.wallets()
    disburser = disburser_wallet(rig.devnet, wallets, router.contract_address, trx=5_000 * TRX)
    compliance = disburser_wallet(rig.devnet, wallets, router.contract_address, trx=0, messages=True)
    rig.chain.send(router, rig.admin, "grantRole", DISBURSER_ROLE, disburser.address)
    rig.chain.send(router, rig.admin, "grantRole", COMPLIANCE_SIGNER_ROLE, compliance.address)
    ports = {f"{n.upper()}_PORT": str(rig.cluster[n].port) for n in SERVICES if n != "payout_router"}
    return Kyc(router.contract_address, disburser, compliance, ports)


def start_kyc_router(rig: Rig, kyc: Kyc, **extra: str) -> ServiceProcess:
    settings = env(
        rig.devnet,
        "",
        PAYOUT_KYC_REQUIRED="true",
        PAYOUT_KYC_ROUTER_CONTRACT_ADDRESS=kyc.router,
        PAYOUT_COMPLIANCE_WALLET_ID=kyc.compliance.wallet_id,
        **kyc.ports,
        **extra,
    )
    return rig.factory.start("payout_router", node_url=rig.devnet.url, env=settings)["payout_router"]


@pytest.fixture(scope="module")
def kyc_router(rig: Rig, kyc: Kyc) -> Iterator[ServiceProcess]:
    proc = start_kyc_router(rig, kyc)
    yield proc
    proc.stop()


def compliance(rig: Rig, proc: ServiceProcess) -> pb_grpc.PayoutRouterServiceStub:
    return rig.stubs.operator(proc, subject="cora", roles=("compliance",))


def allowed(rig: Rig, proc: ServiceProcess, address: str) -> bool:
    req = pb.CheckAllowlistRequest(address=address)
    return bool(compliance(rig, proc).CheckAllowlist(req, timeout=20).allowed)


def pay(rig: Rig, proc: ServiceProcess, kyc: Kyc, to: str, amount: int) -> pb.Payout:
    req = pb.InitiatePayoutRequest(
        request_id=rid(),
        wallet_id=kyc.disburser.wallet_id,
        recipient_address=to,
        asset=common_pb2.ASSET_USDT,
        amount=amount,
    )
    return rig.stubs.payouts(proc).InitiatePayout(req, timeout=30).payout


def test_only_attested_recipients_are_paid(rig: Rig, kyc: Kyc, kyc_router: ServiceProcess) -> None:
    to, stranger = fresh_address(), fresh_address()
    assert not allowed(rig, kyc_router, to)
    with pytest.raises(grpc.RpcError) as missing:
        pay(rig, kyc_router, kyc, to, 2 * USDT)
    assert (
        missing.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(missing.value) == "KYC_MISSING"
    )

    # Only a compliance officer changes the allowlist.
    with pytest.raises(grpc.RpcError) as denied:
        rig.stubs.operator(kyc_router, subject="bob", roles=("operator",)).UpdateAllowlist(
            pb.UpdateAllowlistRequest(request_id=rid(), add_addresses=[to]), timeout=20
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    add = pb.UpdateAllowlistRequest(request_id=rid(), add_addresses=[to, stranger])
    compliance(rig, kyc_router).UpdateAllowlist(add, timeout=30)
    assert allowed(rig, kyc_router, to) and allowed(rig, kyc_router, stranger)

    payout = pay(rig, kyc_router, kyc, to, 2 * USDT)
    done = wait_final(rig.stubs.payouts(kyc_router), [payout.payout_id])[payout.payout_id]
    assert done.state == STATE.STATE_CONFIRMED, done.failure_reason
    assert rig.chain.balance(to) == 2 * USDT

    remove = pb.UpdateAllowlistRequest(request_id=rid(), remove_addresses=[stranger])
    compliance(rig, kyc_router).UpdateAllowlist(remove, timeout=30)
    assert not allowed(rig, kyc_router, stranger)
    with pytest.raises(grpc.RpcError) as removed:
        pay(rig, kyc_router, kyc, stranger, USDT)
    assert reason(removed.value) == "KYC_MISSING"
    assert rig.chain.balance(stranger) == 0


def test_expired_attestation_is_refused(rig: Rig, kyc: Kyc) -> None:
    short = start_kyc_router(rig, kyc, PAYOUT_KYC_VALIDITY_SECONDS="2")
    try:
        to = fresh_address()
        compliance(rig, short).UpdateAllowlist(
            pb.UpdateAllowlistRequest(request_id=rid(), add_addresses=[to]), timeout=30
        )
        wait_until(lambda: allowed(rig, short, to), lambda ok: not ok, timeout=30)  # the attestation ran out
        with pytest.raises(grpc.RpcError) as expired:
            pay(rig, short, kyc, to, USDT)
        assert reason(expired.value) == "KYC_EXPIRED"
        assert rig.chain.balance(to) == 0
    finally:
        short.stop()
