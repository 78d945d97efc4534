"""Refusals before anything is signed: blacklisted sender or recipient and a paused token (read from the
chain: our own TetherToken, listed in USDT_TRC20_TOKENS), too few tokens (counting transfers in flight), too
little TRX for the fee, a fee limit below the estimate or above the cap, a wallet that cannot sign. Each is
FAILED_PRECONDITION with its reason, counted in the refusal metric, and leaves nothing signed, nothing
stored and nothing on chain."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from tronpay.usdt_manager.v1 import usdt_manager_pb2 as pb
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm

from services.common.chain_ops import operation_id
from services.usdt_manager.settings import UsdtManagerSettings
from tests.usdt_manager.conftest import Rig
from tests.usdt_manager.support import TRX, USDT, Wallet, fresh_address, new_wallet, reason, rid

SENDER_VIEW_SECONDS = UsdtManagerSettings.model_fields["USDT_SENDER_VIEW_SECONDS"].default

HELD = 100 * USDT


@pytest.fixture(scope="module")
def sender(rig: Rig) -> Wallet:
    """A wallet holding HELD of our token and plenty of TRX."""
    w = new_wallet(rig.devnet, rig.stubs.wallets(), usdt=0, trx=100 * TRX)
    rig.chain.call(rig.token, rig.token_owner_key, "transfer", w.address, HELD)
    return w


@pytest.fixture
def owner_action(rig: Rig) -> Iterator[list[tuple[str, tuple[object, ...]]]]:
    """Token-owner calls to undo after the test (unblacklist, unpause), whatever happens."""
    undo: list[tuple[str, tuple[object, ...]]] = []
    yield undo
    for method, args in reversed(undo):
        rig.chain.call(rig.token, rig.token_owner_key, method, *args)
    if undo:  # what the pre-checks read about a sender (paused, blacklisted) is reused that long
        time.sleep(SENDER_VIEW_SECONDS)


def refused(rig: Rig, wallet: Wallet, *, to: str = "", amount: int = USDT, **fields: object) -> str:
    """Send a transfer of our token that must be refused: its reason, after checking nothing happened."""
    before = rig.chain.balance(rig.token, wallet.address)
    req = pb.CreateTransferRequest(
        request_id=rid(), wallet_id=wallet.wallet_id, to_address=to or fresh_address(), amount=amount,
        token_address=rig.token, **fields,  # type: ignore[arg-type]
    )  # fmt: skip
    with pytest.raises(grpc.RpcError) as err:
        rig.stubs.usdt().CreateTransfer(req, timeout=30)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value
    with pytest.raises(grpc.RpcError) as missing:  # no record
        rig.stubs.usdt_internal().GetTransfer(
            pb.GetTransferRequest(transfer_id=operation_id("tr", req.request_id)), timeout=10
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    signed = rig.stubs.wallets_operator().ListSignatures(wm.ListSignaturesRequest(wallet_id=wallet.wallet_id))
    assert not signed.records  # these wallets never sign: every request of theirs is refused before
    assert rig.chain.balance(rig.token, wallet.address) == before
    return reason(err.value)


def refusals(rig: Rig) -> dict[str, float]:
    port = rig.cluster["usdt_manager"].env["METRICS_PORT"]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out = {}
    for line in text.splitlines():
        if line.startswith("tronpay_usdt_precheck_refusals_total{"):
            label, value = line.split("} ")
            out[label.split('reason="')[1].rstrip('"')] = float(value)
    return out


def test_blacklisted_sender_and_recipient(rig: Rig, sender: Wallet, owner_action: list) -> None:
    recipient = fresh_address()
    rig.chain.call(rig.token, rig.token_owner_key, "addBlackList", recipient)
    owner_action.append(("removeBlackList", (recipient,)))
    assert refused(rig, sender, to=recipient) == "RECIPIENT_BLACKLISTED"
    rig.chain.call(rig.token, rig.token_owner_key, "addBlackList", sender.address)
    owner_action.append(("removeBlackList", (sender.address,)))
    # The request above read the sender's view (not blacklisted then), reused for USDT_SENDER_VIEW_SECONDS.
    time.sleep(SENDER_VIEW_SECONDS)
    assert refused(rig, sender) == "SENDER_BLACKLISTED"
    got = rig.stubs.usdt().GetBalance(pb.GetBalanceRequest(address=sender.address, token_address=rig.token))
    assert got.blacklisted and got.balance == HELD


def test_paused_token(rig: Rig, sender: Wallet, owner_action: list) -> None:
    before = refusals(rig).get("TOKEN_PAUSED", 0.0)
    rig.chain.call(rig.token, rig.token_owner_key, "pause")
    owner_action.append(("unpause", ()))
    assert refused(rig, sender) == "TOKEN_PAUSED"
    assert refusals(rig)["TOKEN_PAUSED"] == before + 1


def test_token_balance_counts_what_is_in_flight(rig: Rig, sender: Wallet) -> None:
    assert refused(rig, sender, amount=HELD + 1) == "INSUFFICIENT_TOKEN_BALANCE"
    # A transfer of 60 % is accepted; another 60 % is refused while the first is in flight (and after).
    funded = new_wallet(rig.devnet, rig.stubs.wallets(), usdt=0, trx=100 * TRX)
    rig.chain.call(rig.token, rig.token_owner_key, "transfer", funded.address, 10 * USDT)
    first = rig.stubs.usdt().CreateTransfer(
        pb.CreateTransferRequest(request_id=rid(), wallet_id=funded.wallet_id, to_address=fresh_address(),
                                 amount=6 * USDT, token_address=rig.token),
        timeout=30,
    ).transfer  # fmt: skip
    assert first.state != pb.OPERATION_STATE_FAILED
    with pytest.raises(grpc.RpcError) as err:
        rig.stubs.usdt().CreateTransfer(
            pb.CreateTransferRequest(request_id=rid(), wallet_id=funded.wallet_id, to_address=fresh_address(),
                                     amount=6 * USDT, token_address=rig.token),
            timeout=30,
        )  # fmt: skip
    assert reason(err.value) == "INSUFFICIENT_TOKEN_BALANCE"


def test_fee_limits_against_the_estimate_and_the_cap(rig: Rig, sender: Wallet) -> None:
    assert refused(rig, sender, fee_limit_sun=TRX // 10) == "FEE_LIMIT_TOO_LOW"
    assert refused(rig, sender, fee_limit_sun=60 * TRX) == "FEE_LIMIT_ABOVE_CAP"  # cap: 50 TRX


def test_too_little_trx_for_the_fee(rig: Rig) -> None:
    poor = new_wallet(rig.devnet, rig.stubs.wallets(), usdt=0, trx=TRX)
    rig.chain.call(rig.token, rig.token_owner_key, "transfer", poor.address, 10 * USDT)
    assert refused(rig, poor) == "INSUFFICIENT_TRX"
    unactivated = new_wallet(rig.devnet, rig.stubs.wallets(), usdt=0, trx=0)
    rig.chain.call(rig.token, rig.token_owner_key, "transfer", unactivated.address, 10 * USDT)
    assert refused(rig, unactivated) == "INSUFFICIENT_TRX"


def test_a_watch_only_wallet_cannot_send(rig: Rig) -> None:
    address = fresh_address()
    watch_only = rig.stubs.wallets().CreateWallet(
        wm.CreateWalletRequest(request_id=rid(), wallet=wm.Wallet(owner_id="usdt-tests", address=address,
                                                                  kind=wm.Wallet.KIND_WATCH_ONLY)),
        timeout=20,
    ).wallet  # fmt: skip
    assert refused(rig, Wallet(watch_only.wallet_id, address, "")) == "WALLET_CANNOT_SIGN"
