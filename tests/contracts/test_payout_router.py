"""PayoutRouterV0 and PayoutRouterKYC on the devnet, signed, sent and checked with tronpy (an independent
client).

Tests deploy their own routers through tronpy with fresh admin / disburser / pauser / compliance accounts, so
pausing, blacklisting a router or changing its limits never touches the genesis routers other suites use;
`test_genesis_routers` checks the genesis deployment itself. Balances are read from USDT with tronpy.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from tronpy import Tron
from tronpy.contract import Contract
from tronpy.keys import PrivateKey, keccak256, to_hex_address
from tronpy.providers import HTTPProvider
from tronpy.tron import TransactionRet

from devnet.genesis import PAYOUT_ROUTER_FUNDS, PAYOUT_ROUTER_LIMITS, PAYOUT_ROUTERS
from tests.harness.devnet import Devnet

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "contracts" / "artifacts"
WAIT = {"timeout": 30, "interval": 0.2}
TRX = 1_000_000
USDT = 1_000_000  # base units per USDT
ADMIN_ROLE = bytes(32)
DISBURSER_ROLE = keccak256(b"DISBURSER_ROLE")
PAUSER_ROLE = keccak256(b"PAUSER_ROLE")
COMPLIANCE_SIGNER_ROLE = keccak256(b"COMPLIANCE_SIGNER_ROLE")
KYC_TYPEHASH = keccak256(
    b"PayoutRouterKYC.Attestation(uint256 chainId,address router,address recipient,bytes32 kycHash,"
    b"uint256 expiry)"
)
# PayoutRouterBase.Failure
NONE, INVALID_RECIPIENT, ZERO_AMOUNT, OVER_PER_TX, OVER_DAILY, INSUFFICIENT_BALANCE = range(6)
BLACKLISTED, TRANSFER_FAILED, KYC_MISSING, KYC_EXPIRED, KYC_INVALID_SIGNATURE, OVER_RECIPIENT_DAILY = range(
    6, 12
)


class Actor:
    """A key and its base58 address."""

    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        self.address = key.public_key.to_base58check_address()


def word(address: str) -> int:
    """A TRON address as the router's 160-bit recipient (the 20-byte TVM address)."""
    return int(to_hex_address(address)[2:], 16)


def pack(to: str, amount: int) -> int:
    """disburseBatch's per-payout word: amount << 160 | recipient."""
    return amount << 160 | word(to)


def new_address() -> str:
    return PrivateKey.random().public_key.to_base58check_address()


def pid() -> bytes:
    return secrets.token_bytes(32)


def selector(signature: str) -> str:
    return keccak256(signature.encode())[:4].hex()


def send(
    contract: Contract, method: str, actor: Actor, *args: Any, fee_limit: int = 500 * TRX
) -> TransactionRet:
    fn = contract.functions[method].with_owner(actor.address)
    return fn(*args).fee_limit(fee_limit).build().sign(actor.key).broadcast()


def settle(*rets: TransactionRet) -> list[dict[str, Any]]:
    return [r.wait(**WAIT) for r in rets]


def ok(info: dict[str, Any]) -> dict[str, Any]:
    assert info["receipt"]["result"] == "SUCCESS", info
    return info


def reverted(info: dict[str, Any], error: str) -> None:
    """The call reverted with custom error `error` (its signature, e.g. "EnforcedPause()")."""
    assert info["receipt"]["result"] == "REVERT", info
    assert info["contractResult"][0].startswith(selector(error)), (error, info["contractResult"])


def events(contract: Contract, info: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The contract's events in `info`, decoded by tronpy, in log order."""
    by_topic = {}
    for e in contract.abi:
        if e["type"].lower() == "event":  # getcontract's ABI spells it "Event"
            signature = f"{e['name']}({','.join(i['type'] for i in e['inputs'])})"
            by_topic[keccak256(signature.encode()).hex()] = e["name"]
    out = []
    for log in info.get("log", []):
        if log["address"] == contract.contract_address:
            name = by_topic[log["topics"][0]]
            # java-tron's JSON omits empty bytes, so a log with every argument indexed has no "data"
            out.append((name, contract.events[name].get_event_data({"data": "", **log})["args"]))
    return out


def outcomes(contract: Contract, info: dict[str, Any]) -> list[tuple[str, bytes, Any]]:
    """Per payout, in order: ("Paid", id, amount), ("AlreadyPaid", id, recorded amount) or
    ("PayoutFailed", id, reason)."""
    out = []
    for name, args in events(contract, ok(info)):
        if name in ("Paid", "AlreadyPaid"):
            out.append((name, args["payoutId"], args["amount"]))
        elif name == "PayoutFailed":
            out.append((name, args["payoutId"], args["reason"]))
    return out


@pytest.fixture(scope="module")
def client(devnet: Devnet) -> Iterator[Tron]:
    c = Tron(HTTPProvider(devnet.url, timeout=30))
    yield c
    c.provider.sess.close()


@pytest.fixture(scope="module")
def usdt(client: Tron, devnet: Devnet) -> Contract:
    return client.get_contract(devnet.usdt)


@pytest.fixture(scope="module")
def people(devnet: Devnet) -> dict[str, Actor]:
    """Fresh accounts holding TRX; the token owner (genesis account 0) can blacklist in USDT."""
    actors = {
        n: Actor(PrivateKey.random()) for n in ("admin", "disburser", "pauser", "compliance", "outsider")
    }
    txids = [t for a in actors.values() for t in devnet.faucet(a.address, trx=20_000 * TRX)]
    for txid in txids:
        devnet.wait_for_tx(txid)
    actors["usdt_owner"] = Actor(PrivateKey(bytes.fromhex(devnet.funded[0]["private_key"])))
    return actors


def balance_of(token: Contract, address: str) -> int:
    return int(token.functions.balanceOf(address))


def deploy(client: Tron, art: dict[str, Any], owner: Actor, *args: Any) -> Contract:
    proto = Contract(name=art["contractName"], bytecode=art["bytecode"], abi=art["abi"])
    params = proto.constructor.encode_parameter(*args) if args else ""
    cntr = Contract(name=art["contractName"], bytecode=art["bytecode"] + params, abi=art["abi"])
    tx = client.trx.deploy_contract(owner.address, cntr).fee_limit(2_000 * TRX).build().sign(owner.key)
    info = ok(tx.broadcast().wait(**WAIT))
    return client.get_contract(info["contract_address"])


MakeRouter = Callable[..., Contract]


@pytest.fixture(scope="module")
def make_router(client: Tron, devnet: Devnet, people: dict[str, Actor]) -> MakeRouter:
    """Deploy a router with roles granted to `people` and `funds` USDT from the devnet faucet."""

    def make(
        name: str = "PayoutRouterV0",
        *,
        per_tx: int = 10_000 * USDT,
        per_day: int = 1_000_000 * USDT,
        batch: int = 10,
        funds: int = 1_000 * USDT,
        token: str | None = None,
    ) -> Contract:
        art = json.loads((ARTIFACTS / f"{name}.json").read_text())
        admin = people["admin"]
        router = deploy(client, art, admin, token or devnet.usdt, admin.address, per_tx, per_day, batch)
        grants = [(DISBURSER_ROLE, "disburser"), (PAUSER_ROLE, "pauser")]
        if name == "PayoutRouterKYC":
            grants.append((COMPLIANCE_SIGNER_ROLE, "compliance"))
        rets = [send(router, "grantRole", admin, role, people[who].address) for role, who in grants]
        funding = devnet.faucet(router.contract_address, usdt=funds) if funds and token is None else []
        for info in settle(*rets):
            ok(info)
        for txid in funding:
            assert devnet.wait_for_tx(txid)["receipt"]["result"] == "SUCCESS"
        return router

    return make


@pytest.fixture(scope="module")
def v0(make_router: MakeRouter) -> Contract:
    """A PayoutRouterV0 shared by the tests that neither pause it nor change its limits."""
    return make_router()


def test_genesis_routers(devnet: Devnet, client: Tron, usdt: Contract) -> None:
    """`make up` needs no set-up: both routers at their documented addresses, roles granted to the documented
    accounts (keys in accounts.json), funded with USDT; the genesis disburser can pay right away."""
    assert devnet.accounts["contracts"] == {
        "PayoutRouterV0": "THB9CEBzDL6YKc9ZjLdyZJToQkFxkdDqBU",
        "PayoutRouterKYC": "TGStCzpBLTz8Nh95AtareG3JdU6TGsm58t",
    }
    roles = {
        name: Actor(PrivateKey(bytes.fromhex(entry["private_key"])))
        for name, entry in devnet.accounts["role_accounts"].items()
    }
    assert all(a.address == devnet.accounts["role_accounts"][n]["address"] for n, a in roles.items())
    for name, hex_address in PAYOUT_ROUTERS.items():
        router = client.get_contract(devnet.accounts["contracts"][name])
        assert to_hex_address(router.contract_address) == hex_address.hex()
        assert router.functions.token() == devnet.usdt
        fn = router.functions.hasRole
        assert fn(ADMIN_ROLE, roles["payout_admin"].address)
        assert fn(DISBURSER_ROLE, roles["payout_disburser"].address)
        assert fn(PAUSER_ROLE, roles["payout_pauser"].address)
        assert not fn(DISBURSER_ROLE, roles["payout_admin"].address)
        assert router.functions.maxPerTx() == PAYOUT_ROUTER_LIMITS["max_per_tx"]
        assert router.functions.maxPerDay() == PAYOUT_ROUTER_LIMITS["max_per_day"]
        assert router.functions.maxBatchSize() == PAYOUT_ROUTER_LIMITS["max_batch_size"]
        assert (
            0 < router.functions.balance() == balance_of(usdt, router.contract_address) <= PAYOUT_ROUTER_FUNDS
        )
    kyc = client.get_contract(devnet.accounts["contracts"]["PayoutRouterKYC"])
    assert kyc.functions.hasRole(COMPLIANCE_SIGNER_ROLE, roles["payout_compliance_signer"].address)
    v0 = client.get_contract(devnet.accounts["contracts"]["PayoutRouterV0"])
    to, payout = new_address(), pid()
    info = send(v0, "disburse", roles["payout_disburser"], payout, to, 1 * USDT).wait(**WAIT)
    assert outcomes(v0, info) == [("Paid", payout, 1 * USDT)]
    assert balance_of(usdt, to) == 1 * USDT


def test_only_the_right_roles_act(
    v0: Contract, people: dict[str, Actor], usdt: Contract, devnet: Devnet
) -> None:
    admin, disburser, pauser, outsider = (people[n] for n in ("admin", "disburser", "pauser", "outsider"))
    to = new_address()
    unauthorized = "Unauthorized(address,bytes32)"
    refused = settle(
        send(v0, "disburse", outsider, pid(), to, USDT),
        send(v0, "disburse", pauser, pid(), to, USDT),
        send(v0, "disburse", admin, pid(), to, USDT),
        send(v0, "disburseBatch", outsider, pid(), [pid()], [pack(to, USDT)]),
        send(v0, "pause", disburser),
        send(v0, "pause", admin),
        send(v0, "setLimits", disburser, 1, 1),
        send(v0, "setLimits", pauser, 1, 1),
        send(v0, "setMaxBatchSize", disburser, 1),
        send(v0, "grantRole", outsider, DISBURSER_ROLE, outsider.address),
        send(v0, "grantRole", disburser, DISBURSER_ROLE, outsider.address),
        send(v0, "revokeRole", pauser, DISBURSER_ROLE, disburser.address),
        send(v0, "emergencyWithdraw", disburser, outsider.address, USDT),
    )
    for info in refused:
        reverted(info, unauthorized)
    reverted(send(v0, "grantRole", admin, DISBURSER_ROLE, devnet.usdt).wait(**WAIT), "InvalidAddress()")
    assert balance_of(usdt, to) == 0

    granted = ok(send(v0, "grantRole", admin, DISBURSER_ROLE, outsider.address).wait(**WAIT))
    assert events(v0, granted) == [
        ("RoleGranted", {"role": DISBURSER_ROLE, "account": outsider.address, "sender": admin.address})
    ]
    payout = pid()
    assert outcomes(v0, send(v0, "disburse", outsider, payout, to, USDT).wait(**WAIT)) == [
        ("Paid", payout, USDT)
    ]
    revoked = ok(send(v0, "revokeRole", admin, DISBURSER_ROLE, outsider.address).wait(**WAIT))
    assert [name for name, _ in events(v0, revoked)] == ["RoleRevoked"]
    reverted(send(v0, "disburse", outsider, pid(), to, USDT).wait(**WAIT), unauthorized)
    assert balance_of(usdt, to) == USDT


def test_pause_stops_payouts_and_allows_emergency_withdrawal(
    make_router: MakeRouter, people: dict[str, Actor], usdt: Contract
) -> None:
    router = make_router(funds=100 * USDT)
    admin, disburser, pauser, outsider = (people[n] for n in ("admin", "disburser", "pauser", "outsider"))
    to, treasury = new_address(), new_address()
    reverted(send(router, "emergencyWithdraw", admin, treasury, USDT).wait(**WAIT), "ExpectedPause()")
    paused = ok(send(router, "pause", pauser).wait(**WAIT))
    assert events(router, paused) == [("Paused", {"account": pauser.address})]
    assert router.functions.paused()
    blocked = settle(
        send(router, "disburse", disburser, pid(), to, USDT),
        send(router, "disburseBatch", disburser, pid(), [pid()], [pack(to, USDT)]),
        send(router, "pause", pauser),
        send(router, "unpause", outsider),
        send(router, "emergencyWithdraw", admin, treasury, 40 * USDT),
    )
    for info in blocked[:3]:
        reverted(info, "EnforcedPause()")
    reverted(blocked[3], "Unauthorized(address,bytes32)")
    assert events(router, ok(blocked[4])) == [("EmergencyWithdrawal", {"to": treasury, "amount": 40 * USDT})]
    assert balance_of(usdt, treasury) == 40 * USDT and balance_of(usdt, to) == 0

    unpaused = ok(send(router, "unpause", pauser).wait(**WAIT))
    assert events(router, unpaused) == [("Unpaused", {"account": pauser.address})]
    payout = pid()
    assert outcomes(router, send(router, "disburse", disburser, payout, to, USDT).wait(**WAIT)) == [
        ("Paid", payout, USDT)
    ]
    assert balance_of(usdt, to) == USDT
    assert router.functions.balance() == 59 * USDT


def test_per_payout_and_per_day_limits_and_admin_change(
    make_router: MakeRouter, people: dict[str, Actor], usdt: Contract
) -> None:
    router = make_router(per_tx=100, per_day=250, funds=10 * USDT)
    admin, disburser = people["admin"], people["disburser"]
    to = [new_address() for _ in range(5)]
    ids = [pid() for _ in range(5)]
    amounts = [100, 101, 100, 100, 50]
    info = send(
        router, "disburseBatch", disburser, pid(), ids, [pack(t, a) for t, a in zip(to, amounts, strict=True)]
    )
    assert outcomes(router, info.wait(**WAIT)) == [
        ("Paid", ids[0], 100),
        ("PayoutFailed", ids[1], OVER_PER_TX),
        ("Paid", ids[2], 100),
        ("PayoutFailed", ids[3], OVER_DAILY),  # 200 of 250 spent
        ("Paid", ids[4], 50),
    ]
    assert router.functions.getTodayDisbursed() == 250 and router.functions.remainingToday() == 0

    refused = settle(
        send(router, "setLimits", disburser, 1_000, 5_000),
        send(router, "setLimits", admin, 0, 5_000),
        send(router, "setLimits", admin, 5_001, 5_000),
        send(router, "setLimits", admin, 1, 2**96),
    )
    reverted(refused[0], "Unauthorized(address,bytes32)")
    for info in refused[1:]:
        reverted(info, "InvalidLimits()")
    changed = ok(send(router, "setLimits", admin, 1_000, 5_000).wait(**WAIT))
    assert events(router, changed) == [
        (
            "LimitsChanged",
            {"previousMaxPerTx": 100, "maxPerTx": 1_000, "previousMaxPerDay": 250, "maxPerDay": 5_000},
        )
    ]
    assert (router.functions.maxPerTx(), router.functions.maxPerDay()) == (1_000, 5_000)
    # The refused payouts were not recorded: the same ids go through under the new limits.
    info = send(
        router, "disburseBatch", disburser, pid(), ids, [pack(t, a) for t, a in zip(to, amounts, strict=True)]
    )
    assert outcomes(router, info.wait(**WAIT)) == [
        ("AlreadyPaid", ids[0], 100),
        ("Paid", ids[1], 101),
        ("AlreadyPaid", ids[2], 100),
        ("Paid", ids[3], 100),
        ("AlreadyPaid", ids[4], 50),
    ]
    assert [balance_of(usdt, t) for t in to] == amounts
    assert router.functions.getTodayDisbursed() == 451


def test_payout_id_paid_at_most_once(v0: Contract, people: dict[str, Actor], usdt: Contract) -> None:
    disburser = people["disburser"]
    r1, r2, r3, r4 = (new_address() for _ in range(4))
    id1, id2, id3 = pid(), pid(), pid()
    first = send(v0, "disburseBatch", disburser, pid(), [id1, id2], [pack(r1, 10), pack(r2, 20)]).wait(**WAIT)
    assert outcomes(v0, first) == [("Paid", id1, 10), ("Paid", id2, 20)]

    batch_id = pid()
    # id2 again, id3 twice in one batch, id1 again with another recipient and amount
    second = send(
        v0,
        "disburseBatch",
        disburser,
        batch_id,
        [id2, id3, id3, id1],
        [pack(r2, 20), pack(r3, 30), pack(r3, 30), pack(r4, 99)],
    ).wait(**WAIT)
    assert outcomes(v0, second) == [
        ("AlreadyPaid", id2, 20),
        ("Paid", id3, 30),
        ("AlreadyPaid", id3, 30),
        ("AlreadyPaid", id1, 10),
    ]
    already = [args for name, args in events(v0, second) if name == "AlreadyPaid"]
    assert already[-1]["to"] == r1  # the recorded payment, not the retried one
    summary = events(v0, second)[-1]
    assert summary == (
        "BatchDisbursed",
        {"batchId": batch_id, "paid": 1, "failed": 0, "alreadyPaid": 3, "amountPaid": 30},
    )
    retry = send(v0, "disburse", disburser, id1, r1, 10).wait(**WAIT)
    assert outcomes(v0, retry) == [("AlreadyPaid", id1, 10)]
    assert [balance_of(usdt, r) for r in (r1, r2, r3, r4)] == [10, 20, 30, 0]
    assert v0.functions.payoutOf(id1) == (r1, 10)
    assert v0.functions.isPaid(id3) and not v0.functions.isPaid(pid())


def test_failing_recipients_do_not_block_the_batch(
    v0: Contract, people: dict[str, Actor], usdt: Contract
) -> None:
    disburser, owner = people["disburser"], people["usdt_owner"]
    good1, good2, blacklisted, unfunded = (new_address() for _ in range(4))
    ok(send(usdt, "addBlackList", owner, blacklisted).wait(**WAIT))
    zero = "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb"
    payouts = [
        (good1, 5 * USDT),
        (blacklisted, 5 * USDT),
        (zero, 5 * USDT),
        (v0.contract_address, 5 * USDT),
        (usdt.contract_address, 5 * USDT),
        (new_address(), 0),
        (unfunded, 5_000 * USDT),  # within maxPerTx, more than the router holds
        (good2, 7 * USDT),
    ]
    ids = [pid() for _ in payouts]
    batch_id = pid()
    info = send(v0, "disburseBatch", disburser, batch_id, ids, [pack(t, a) for t, a in payouts]).wait(**WAIT)
    assert outcomes(v0, info) == [
        ("Paid", ids[0], 5 * USDT),
        ("PayoutFailed", ids[1], BLACKLISTED),
        ("PayoutFailed", ids[2], INVALID_RECIPIENT),
        ("PayoutFailed", ids[3], INVALID_RECIPIENT),
        ("PayoutFailed", ids[4], INVALID_RECIPIENT),
        ("PayoutFailed", ids[5], ZERO_AMOUNT),
        ("PayoutFailed", ids[6], INSUFFICIENT_BALANCE),
        ("Paid", ids[7], 7 * USDT),
    ]
    assert events(v0, info)[-1][1] == {
        "batchId": batch_id,
        "paid": 2,
        "failed": 6,
        "alreadyPaid": 0,
        "amountPaid": 12 * USDT,
    }
    assert [balance_of(usdt, a) for a in (good1, good2, blacklisted, unfunded)] == [5 * USDT, 7 * USDT, 0, 0]
    assert not any(v0.functions.isPaid(i) for i in ids[1:7])
    # A failure leaves the id free: once the recipient is cleared, the same payout goes through.
    ok(send(usdt, "removeBlackList", owner, blacklisted).wait(**WAIT))
    retry = send(v0, "disburse", disburser, ids[1], blacklisted, 5 * USDT).wait(**WAIT)
    assert outcomes(v0, retry) == [("Paid", ids[1], 5 * USDT)]
    assert balance_of(usdt, blacklisted) == 5 * USDT


def test_reverting_transfer_is_reported_and_leaves_the_id_unpaid(
    make_router: MakeRouter, people: dict[str, Actor], usdt: Contract
) -> None:
    """USDT refuses every transfer from a blacklisted router: each payout fails alone, nothing recorded."""
    router = make_router(funds=50 * USDT)
    disburser, owner = people["disburser"], people["usdt_owner"]
    ok(send(usdt, "addBlackList", owner, router.contract_address).wait(**WAIT))
    to = [new_address(), new_address()]
    ids = [pid(), pid()]
    payouts = [pack(to[0], USDT), pack(to[1], 2 * USDT)]
    failed = send(router, "disburseBatch", disburser, pid(), ids, payouts).wait(**WAIT)
    assert outcomes(router, failed) == [("PayoutFailed", i, TRANSFER_FAILED) for i in ids]
    assert router.functions.getTodayDisbursed() == 0 and router.functions.balance() == 50 * USDT
    ok(send(usdt, "removeBlackList", owner, router.contract_address).wait(**WAIT))
    paid = send(router, "disburseBatch", disburser, pid(), ids, payouts).wait(**WAIT)
    assert outcomes(router, paid) == [("Paid", ids[0], USDT), ("Paid", ids[1], 2 * USDT)]
    assert [balance_of(usdt, t) for t in to] == [USDT, 2 * USDT]


@pytest.fixture(scope="module")
def quirk_artifact(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """tests/contracts/QuirkToken.sol compiled with the pinned solc (test-only, not a committed artifact)."""
    script = (
        "const solc = require('solc'); const fs = require('fs');"
        "const content = fs.readFileSync(process.argv[1], 'utf8');"
        "const input = {language: 'Solidity', sources: {'QuirkToken.sol': {content}},"
        " settings: {evmVersion: 'london', optimizer: {enabled: true, runs: 200},"
        " outputSelection: {'*': {'*': ['abi', 'evm.bytecode.object']}}}};"
        "const out = JSON.parse(solc.compile(JSON.stringify(input)));"
        "if ((out.errors || []).some((e) => e.severity === 'error')) {"
        " console.error(JSON.stringify(out.errors)); process.exit(1); }"
        "const c = out.contracts['QuirkToken.sol'].QuirkToken;"
        "process.stdout.write(JSON.stringify({contractName: 'QuirkToken', abi: c.abi,"
        " bytecode: c.evm.bytecode.object}));"
    )
    source = Path(__file__).with_name("QuirkToken.sol")
    done = subprocess.run(
        ["node", "-e", script, str(source)], cwd=ROOT, capture_output=True, check=True, text=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_non_standard_token_return_values(
    client: Tron, make_router: MakeRouter, people: dict[str, Actor], quirk_artifact: dict[str, Any]
) -> None:
    """A moved payment counts as paid whatever `transfer` returns (USDT on TRON returns false, USDT on
    Ethereum nothing); false without a balance change, or a revert, is a reported failure."""
    admin, disburser = people["admin"], people["disburser"]
    token = deploy(client, quirk_artifact, admin, 1_000_000)
    router = make_router(token=token.contract_address)
    ok(send(token, "transfer", admin, router.contract_address, 1_000).wait(**WAIT))
    amounts = [10, 11, 12, 13, 14]  # value % 10 picks the token's answer (QuirkToken.sol)
    to = [new_address() for _ in amounts]
    ids = [pid() for _ in amounts]
    info = send(
        router, "disburseBatch", disburser, pid(), ids, [pack(t, a) for t, a in zip(to, amounts, strict=True)]
    )
    assert outcomes(router, info.wait(**WAIT)) == [
        ("Paid", ids[0], 10),
        ("Paid", ids[1], 11),
        ("Paid", ids[2], 12),
        ("PayoutFailed", ids[3], TRANSFER_FAILED),
        ("PayoutFailed", ids[4], TRANSFER_FAILED),
    ]
    assert [balance_of(token, t) for t in to] == [10, 11, 12, 0, 0]
    assert balance_of(token, router.contract_address) == 1_000 - 33
    assert [router.functions.isPaid(i) for i in ids] == [True, True, True, False, False]


def test_batch_size_is_bounded_and_changed_by_the_admin(
    make_router: MakeRouter, people: dict[str, Actor], usdt: Contract
) -> None:
    router = make_router(batch=3, funds=10 * USDT)
    admin, disburser = people["admin"], people["disburser"]
    to = [new_address() for _ in range(4)]
    ids = [pid() for _ in to]
    payouts = [pack(t, USDT) for t in to]
    refused = settle(
        send(router, "disburseBatch", disburser, pid(), ids, payouts),
        send(router, "disburseBatch", disburser, pid(), [], []),
        send(router, "disburseBatch", disburser, pid(), ids[:2], payouts[:3]),
        send(router, "setMaxBatchSize", disburser, 4),
        send(router, "setMaxBatchSize", admin, 0),
    )
    reverted(refused[0], "BatchTooLarge(uint256,uint256)")
    assert refused[0]["contractResult"][0][8:] == encode(["uint256", "uint256"], [4, 3]).hex()
    reverted(refused[1], "EmptyBatch()")
    reverted(refused[2], "LengthMismatch()")
    reverted(refused[3], "Unauthorized(address,bytes32)")
    reverted(refused[4], "InvalidLimits()")
    assert [balance_of(usdt, t) for t in to] == [0, 0, 0, 0]

    changed = ok(send(router, "setMaxBatchSize", admin, 4).wait(**WAIT))
    assert events(router, changed) == [
        ("MaxBatchSizeChanged", {"previousMaxBatchSize": 3, "maxBatchSize": 4})
    ]
    paid = send(router, "disburseBatch", disburser, pid(), ids, payouts).wait(**WAIT)
    assert outcomes(router, paid) == [("Paid", i, USDT) for i in ids]
    assert [balance_of(usdt, t) for t in to] == [USDT] * 4


# ---- PayoutRouterKYC -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kyc(make_router: MakeRouter) -> Contract:
    return make_router("PayoutRouterKYC")


def kyc_message(chain_id: int, router: str, recipient: str, kyc_hash: bytes, expiry: int) -> bytes:
    """What the compliance signer signs, computed here independently of the contract."""
    types = ["bytes32", "uint256", "address", "address", "bytes32", "uint256"]
    evm = [f"0x{to_hex_address(a)[2:]}" for a in (router, recipient)]
    return keccak256(encode(types, [KYC_TYPEHASH, chain_id & 0xFFFFFFFF, *evm, kyc_hash, expiry]))


def attest(
    signer: Actor, chain_id: int, router: str, recipient: str, *, expiry: int, kyc_hash: bytes | None = None
) -> tuple[bytes, int, bytes, bytes]:
    """(kycHash, expiry, r, vs): tronpy's sign_msg is TronWeb's signMessageV2 (TIP-191 prefix, length 32);
    the 65-byte r ‖ s ‖ v (low s, v 0/1) goes in EIP-2098's compact form, vs = s | v << 255."""
    kyc_hash = secrets.token_bytes(32) if kyc_hash is None else kyc_hash
    sig = signer.key.sign_msg(kyc_message(chain_id, router, recipient, kyc_hash, expiry)).to_bytes()
    vs = int.from_bytes(sig[32:64], "big") | (sig[64] % 27) << 255
    return (kyc_hash, expiry, sig[:32], vs.to_bytes(32, "big"))


def words(attestations: list[tuple[bytes, int, bytes, bytes]]) -> list[bytes]:
    """disburseBatchKYC's `attestations`: four words per payout."""
    return [w if isinstance(w, bytes) else w.to_bytes(32, "big") for a in attestations for w in a]


def test_kyc_signature_valid_expired_wrong_signer_wrong_address(
    kyc: Contract, people: dict[str, Actor], usdt: Contract, devnet: Devnet
) -> None:
    compliance, outsider, disburser = people["compliance"], people["outsider"], people["disburser"]
    chain_id, router = devnet.accounts["chain_id"], kyc.contract_address
    later, earlier = int(time.time()) + 3600, int(time.time()) - 60
    to = [new_address() for _ in range(8)]
    sample_hash = secrets.token_bytes(32)
    assert kyc.functions.kycMessage(to[0], sample_hash, later) == kyc_message(
        chain_id, router, to[0], sample_hash, later
    )
    valid = attest(compliance, chain_id, router, to[0], expiry=later)
    other = attest(compliance, chain_id, router, to[1], expiry=later)
    attestations = [
        valid,
        other,
        attest(compliance, chain_id, router, to[2], expiry=earlier),  # expired
        attest(outsider, chain_id, router, to[3], expiry=later),  # wrong signer
        attest(compliance, chain_id, router, to[0], expiry=later),  # another recipient's attestation
        attest(compliance, chain_id, devnet.accounts["contracts"]["PayoutRouterKYC"], to[5], expiry=later),
        attest(compliance, chain_id ^ 1, router, to[6], expiry=later),  # another chain
        attest(compliance, chain_id, router, to[7], expiry=later, kyc_hash=bytes(32)),  # no KYC record
    ]
    expected = [NONE, NONE, KYC_EXPIRED] + [KYC_INVALID_SIGNATURE] * 4 + [KYC_MISSING]
    # kycFailure: what the service's CheckAllowlist asks without sending anything
    assert [kyc.functions.kycFailure(t, *a) for t, a in zip(to, attestations, strict=True)] == expected

    ids = [pid() for _ in to]
    payouts = [pack(t, 3 * USDT) for t in to]
    info = send(kyc, "disburseBatchKYC", disburser, pid(), ids, payouts, words(attestations)).wait(**WAIT)
    assert outcomes(kyc, info) == [("Paid", ids[0], 3 * USDT), ("Paid", ids[1], 3 * USDT)] + [
        ("PayoutFailed", i, reason) for i, reason in zip(ids[2:], expected[2:], strict=True)
    ]
    kyc_events = [args for name, args in events(kyc, info) if name == "KycPayout"]
    assert kyc_events == [
        {"payoutId": ids[0], "to": to[0], "kycHash": valid[0], "expiry": later},
        {"payoutId": ids[1], "to": to[1], "kycHash": other[0], "expiry": later},
    ]
    assert [balance_of(usdt, t) for t in to] == [3 * USDT] * 2 + [0] * 6
    single_id = pid()
    single = send(kyc, "disburseKYC", disburser, single_id, to[0], USDT, *valid).wait(**WAIT)
    assert outcomes(kyc, single) == [("Paid", single_id, USDT)]
    reverted(
        send(kyc, "disburseKYC", outsider, pid(), to[0], USDT, *valid).wait(**WAIT),
        "Unauthorized(address,bytes32)",
    )
    assert balance_of(usdt, to[0]) == 4 * USDT


def test_kyc_recipient_daily_limit(
    kyc: Contract, people: dict[str, Actor], usdt: Contract, devnet: Devnet
) -> None:
    compliance, disburser = people["compliance"], people["disburser"]
    to = new_address()
    reverted(
        send(kyc, "setRecipientDailyLimit", disburser, to, 100).wait(**WAIT), "Unauthorized(address,bytes32)"
    )
    limited = ok(send(kyc, "setRecipientDailyLimit", compliance, to, 100).wait(**WAIT))
    assert events(kyc, limited) == [
        ("RecipientDailyLimitChanged", {"recipient": to, "limit": 100, "by": compliance.address})
    ]
    att = attest(
        compliance, devnet.accounts["chain_id"], kyc.contract_address, to, expiry=int(time.time()) + 3600
    )
    ids = [pid(), pid(), pid()]
    info = send(
        kyc,
        "disburseBatchKYC",
        disburser,
        pid(),
        ids,
        [pack(to, 60), pack(to, 50), pack(to, 40)],
        words([att] * 3),
    ).wait(**WAIT)
    assert outcomes(kyc, info) == [
        ("Paid", ids[0], 60),
        ("PayoutFailed", ids[1], OVER_RECIPIENT_DAILY),
        ("Paid", ids[2], 40),
    ]
    assert balance_of(usdt, to) == 100
