"""The lifecycle against a chain that misbehaves, on a devnet of our own that mines only when asked and keeps
mainnet's values (--mainnet: USDT costs x4.4 energy): broadcasts the node drops are rebroadcast unchanged; a
transaction that cannot be included is rebuilt once, only after it provably expired, and never lands twice;
USDT_MAX_ATTEMPTS such attempts end EXPIRED; a fork that drops the including block takes the transfer back
to BROADCAST and it confirms later; a revert on chain ends FAILED with the fee burned; a fee limit too low
for a new holder is caught by the estimate, not on chain."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from tronpay.usdt_manager.v1 import usdt_manager_pb2 as pb

from services.common.tron.address import private_key_to_address
from tests.harness.devnet import Devnet, DevnetFactory
from tests.harness.ferretdb import FerretDB
from tests.harness.services import Cluster, ServiceFactory
from tests.usdt_manager.support import (
    STATE,
    TRX,
    USDT,
    Chain,
    Stubs,
    Wallet,
    fresh_address,
    new_wallet,
    reason,
    rid,
    start,
    transfer_of,
    wait_until,
)

EXPIRY_JUMP_MS = 3_000  # time travel per mined block: 30 blocks move chain time past a 60 s expiration


@dataclass
class Manual:
    devnet: Devnet
    cluster: Cluster
    stubs: Stubs
    chain: Chain
    token: str  # our own TetherToken, listed in USDT_TRC20_TOKENS
    token_owner_key: str

    def mine(self) -> None:
        self.devnet.mine(1)

    def send(
        self, wallet: Wallet, to: str, amount: int, *, mine: bool = True, **fields: object
    ) -> pb.Transfer:
        if mine:  # chain time = now: the transaction's expiration counts from the head block
            self.mine()
        req = pb.CreateTransferRequest(
            request_id=rid(), wallet_id=wallet.wallet_id, to_address=to, amount=amount,
            **fields,  # type: ignore[arg-type]
        )  # fmt: skip
        return self.stubs.usdt().CreateTransfer(req, timeout=30).transfer

    def until(
        self, transfer_id: str, done: Callable[[pb.Transfer], bool], *, mine: bool = True
    ) -> pb.Transfer:
        internal = self.stubs.usdt_internal()
        tick = self.mine if mine else None
        return wait_until(
            lambda: transfer_of(internal, transfer_id), done, timeout=45, tick=tick, interval=0.25
        )

    def metric(self, name: str) -> float:
        port = self.cluster["usdt_manager"].env["METRICS_PORT"]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        lines = [x for x in text.splitlines() if x.startswith(name + '{kind="usdt_transfer"}')]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0  # a labelled counter shows once counted


@pytest.fixture(scope="module")
def manual(
    devnet_factory: DevnetFactory, ferretdb: FerretDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Manual]:
    devnet = devnet_factory(manual=True, solidity_lag=2, extra_args=["--mainnet"])
    factory = ServiceFactory(ferretdb, tmp_path_factory.mktemp("usdt-faults"))
    chain = Chain(devnet)
    owner_key = secrets.token_hex(32)
    try:
        for txid in devnet.faucet(private_key_to_address(bytes.fromhex(owner_key)), trx=20_000 * TRX):
            devnet.wait_for_tx(txid)
        token = chain.deploy_token(owner_key)
        tokens = {"USDT_TRC20_TOKENS": token, "WALLET_TRC20_TOKENS": token}
        cluster = start(factory, devnet, USDT_MAX_ATTEMPTS="2", **tokens)
        stubs = Stubs(cluster)
        try:
            yield Manual(devnet, cluster, stubs, chain, token, owner_key)
        finally:
            stubs.close()
    finally:
        chain.close()
        factory.close()


@pytest.fixture
def sender(manual: Manual) -> Wallet:
    return new_wallet(manual.devnet, manual.stubs.wallets(), trx=300 * TRX, usdt=100 * USDT)


@pytest.fixture
def dropping(manual: Manual) -> Iterator[None]:
    """The node accepts every broadcast and forgets it."""
    manual.devnet.set_faults(drop_broadcast_rate=1.0)
    yield
    manual.devnet.clear_faults()


def test_dropped_broadcasts_are_rebroadcast_unchanged(manual: Manual, sender: Wallet, dropping: None) -> None:
    rebroadcasts = manual.metric("tronpay_chain_ops_rebroadcasts_total")
    to = fresh_address()
    t = manual.send(sender, to, 4 * USDT)
    dropped = manual.until(t.transfer_id, lambda x: x.broadcast_count >= 3)
    assert dropped.state == STATE.OPERATION_STATE_BROADCAST and dropped.txid == t.txid
    manual.devnet.clear_faults()
    done = manual.until(t.transfer_id, lambda x: x.state == STATE.OPERATION_STATE_CONFIRMED)
    (attempt,) = done.attempts
    assert attempt.txid == t.txid and attempt.broadcast_count >= 3 and not attempt.expired
    assert manual.chain.balance(manual.devnet.usdt, to) == 4 * USDT
    assert manual.metric("tronpay_chain_ops_rebroadcasts_total") >= rebroadcasts + 2


def test_a_transaction_that_cannot_be_included_is_rebuilt_once_after_it_expired(
    manual: Manual, sender: Wallet, dropping: None
) -> None:
    to = fresh_address()
    t = manual.send(sender, to, 5 * USDT)
    manual.until(t.transfer_id, lambda x: x.broadcast_count >= 1, mine=False)
    # Before its expiration nothing but rebroadcasts happens.
    assert len(manual.until(t.transfer_id, lambda x: x.broadcast_count >= 2).attempts) == 1
    manual.devnet.mine(30, spacing_ms=EXPIRY_JUMP_MS)  # the head and the solidified block pass its expiration
    rebuilt = manual.until(t.transfer_id, lambda x: len(x.attempts) == 2 and x.attempts[1].txid != "")
    first, second = rebuilt.attempts
    assert first.expired and first.txid == t.txid and second.txid != first.txid and not second.expired
    manual.devnet.clear_faults()
    done = manual.until(t.transfer_id, lambda x: x.state == STATE.OPERATION_STATE_CONFIRMED)
    assert [a.txid for a in done.attempts] == [first.txid, second.txid] and done.txid == second.txid
    # One payment: the recipient got the amount once, and the first transaction is on no block.
    assert manual.chain.balance(manual.devnet.usdt, to) == 5 * USDT
    assert manual.devnet.post("wallet/gettransactioninfobyid", {"value": first.txid}) == {}


def test_attempts_run_out_and_the_transfer_expires(manual: Manual, sender: Wallet, dropping: None) -> None:
    to = fresh_address()
    t = manual.send(sender, to, 6 * USDT)
    for n in (1, 2):  # USDT_MAX_ATTEMPTS = 2

        def sent(x: pb.Transfer, n: int = n) -> bool:
            return len(x.attempts) == n and x.attempts[-1].broadcast_count >= 1

        manual.until(t.transfer_id, sent)
        manual.devnet.mine(30, spacing_ms=EXPIRY_JUMP_MS)
    done = manual.until(t.transfer_id, lambda x: x.state == STATE.OPERATION_STATE_EXPIRED)
    assert len(done.attempts) == 2 and all(a.expired for a in done.attempts)
    assert "2 attempt(s) expired" in done.failure_reason
    assert manual.chain.balance(manual.devnet.usdt, to) == 0


def test_a_fork_takes_the_transfer_back_and_it_confirms_later(manual: Manual, sender: Wallet) -> None:
    to = fresh_address()
    t = manual.send(sender, to, 7 * USDT)
    manual.until(t.transfer_id, lambda x: x.state == STATE.OPERATION_STATE_BROADCAST, mine=False)
    manual.mine()  # the including block; solidified only two blocks later
    included = manual.until(t.transfer_id, lambda x: x.state == STATE.OPERATION_STATE_INCLUDED, mine=False)
    manual.devnet.fork(1)  # a branch without it (and one block more) replaces that block
    back = manual.until(t.transfer_id, lambda x: x.block_number != included.block_number, mine=False)
    assert back.state in (STATE.OPERATION_STATE_BROADCAST, STATE.OPERATION_STATE_INCLUDED)
    done = manual.until(t.transfer_id, lambda x: x.state == STATE.OPERATION_STATE_CONFIRMED)
    (attempt,) = done.attempts
    assert attempt.txid == t.txid and done.block_number > included.block_number
    assert manual.chain.balance(manual.devnet.usdt, to) == 7 * USDT
    assert manual.metric("tronpay_chain_ops_reorged_total") >= 1


def test_a_revert_on_chain_ends_failed_with_the_fee_burned(manual: Manual, sender: Wallet) -> None:
    token = manual.token
    manual.chain.call(token, manual.token_owner_key, "transfer", sender.address, 50 * USDT)
    # Pending, not mined: the pre-checks read the head block, where the sender is not blacklisted yet; the
    # transfer then runs after the blacklisting in the same block and reverts.
    manual.chain.send(token, manual.token_owner_key, "addBlackList", sender.address)
    trx_before = manual.chain.trx(sender.address)
    to = fresh_address()
    t = manual.send(sender, to, 8 * USDT, mine=False, token_address=token)
    done = manual.until(
        t.transfer_id, lambda x: x.state in (STATE.OPERATION_STATE_FAILED, STATE.OPERATION_STATE_CONFIRMED)
    )
    assert done.state == STATE.OPERATION_STATE_FAILED and done.failure_reason.startswith("REVERT"), done
    assert done.block_number > 0 and done.fee_sun > 0 and done.energy_used > 0
    assert manual.chain.trx(sender.address) == trx_before - done.fee_sun  # the fee burned, recorded
    assert manual.chain.balance(token, to) == 0 and manual.chain.balance(token, sender.address) == 50 * USDT
    info = manual.chain.client.get_transaction_info(done.txid)
    assert info["receipt"]["result"] == "REVERT" and info["fee"] == done.fee_sun


def test_the_estimate_catches_a_fee_limit_too_low_for_a_new_holder(manual: Manual, sender: Wallet) -> None:
    newcomer = fresh_address()
    tronpy_default = 10 * TRX  # covers ~100k energy: enough for a known holder, not for a new one on mainnet
    with pytest.raises(grpc.RpcError) as err:
        manual.send(sender, newcomer, USDT, fee_limit_sun=tronpy_default)
    assert reason(err.value) == "FEE_LIMIT_TOO_LOW"
    t = manual.send(sender, newcomer, USDT)
    assert t.energy_estimate > 100_000 and t.fee_limit_sun >= t.energy_estimate * t.energy_price_sun
    done = manual.until(t.transfer_id, lambda x: x.state == STATE.OPERATION_STATE_CONFIRMED)
    assert 100_000 < done.energy_used <= done.energy_estimate
    assert done.energy_fee_sun == done.energy_used * done.energy_price_sun <= done.fee_limit_sun
    assert manual.chain.balance(manual.devnet.usdt, newcomer) == USDT
