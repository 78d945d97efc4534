"""Chain engine through the Node facade: broadcast checks, fees, multisig, blocks, forks, persistence."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, TypeVar

import pytest

from devnet import codec, crypto
from devnet.genesis import USDT_ADDRESS, account_key
from devnet.node import Node, NodeConfig
from devnet.pb import contract_pb2, tron_pb2

KEYS = [account_key(i) for i in range(10)]
ADDRS = [crypto.address_from_private_key(k) for k in KEYS]


def fresh_key(tag: str) -> tuple[bytes, bytes]:
    key = crypto.sha256(f"test-{tag}".encode())
    return key, crypto.address_from_private_key(key)


_BUILD_SEQ = itertools.count(1)


def build(
    node: Node,
    type_name: str,
    contract: Any,
    *,
    fee_limit: int = 0,
    memo: bytes = b"",
    permission_id: int = 0,
    expiration_ms: int | None = None,
    ref: bytes | None = None,
) -> tron_pb2.Transaction:
    tx = tron_pb2.Transaction()
    tx.raw_data.contract.append(codec.pack_contract(type_name, contract, permission_id))
    ref_id = ref if ref is not None else node.block_id(node.head_block())
    tx.raw_data.ref_block_bytes = ref_id[6:8]
    tx.raw_data.ref_block_hash = ref_id[8:16]
    head_ts = node.head_block().block_header.raw_data.timestamp
    tx.raw_data.expiration = expiration_ms if expiration_ms is not None else head_ts + 60_000
    tx.raw_data.timestamp = int(time.time() * 1000) + next(_BUILD_SEQ)  # distinct txids for equal contracts
    if fee_limit:
        tx.raw_data.fee_limit = fee_limit
    if memo:
        tx.raw_data.data = memo
    return tx


def sign(tx: tron_pb2.Transaction, *keys: bytes) -> tron_pb2.Transaction:
    txid = codec.tx_id(tx)
    for k in keys:
        tx.signature.append(crypto.sign(txid, k))
    return tx


def transfer(node: Node, key: bytes, to: bytes, amount: int, **kw: Any) -> tron_pb2.Transaction:
    c = contract_pb2.TransferContract(
        owner_address=crypto.address_from_private_key(key), to_address=to, amount=amount
    )
    return sign(build(node, "TransferContract", c, **kw), key)


def send_ok(node: Node, tx: tron_pb2.Transaction) -> bytes:
    r = node.broadcast(tx)
    assert r.code == "SUCCESS", (r.code, r.message)
    return r.txid


T = TypeVar("T")


def present(value: T | None) -> T:
    """`value`, which the test expects to exist (the node answers None for what it does not have)."""
    assert value is not None
    return value


def mined_info(node: Node, txid: bytes) -> tron_pb2.TransactionInfo:
    node.produce_block()
    info = node.transaction_info(txid)
    assert info is not None
    return info


def balance(node: Node, addr: bytes) -> int:
    acc = node.account(addr)
    return 0 if acc is None else acc.balance


@pytest.fixture
def node() -> Node:
    return Node.open(NodeConfig(solidity_lag=3))


def test_genesis_is_deterministic(node: Node) -> None:
    other = Node.open(NodeConfig(solidity_lag=3))
    assert [a.address for a in node.genesis_accounts()] == [a.address for a in other.genesis_accounts()]
    assert node.token_addresses()["USDT"] == USDT_ADDRESS
    assert crypto.to_base58(USDT_ADDRESS) == "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    assert node.contract(USDT_ADDRESS) is not None
    assert present(node.account(ADDRS[1])).balance == 1_000_000 * 10**6
    assert len(node.witnesses()) == 1
    assert node.chain_id == int.from_bytes(node.block_id(present(node.block_by_number(0)))[-4:], "big")


def test_transfer_to_existing_uses_free_bandwidth(node: Node) -> None:
    before = balance(node, ADDRS[2])
    tx = transfer(node, KEYS[1], ADDRS[2], 1_000_000)
    txid = send_ok(node, tx)
    assert node.transaction_info(txid) is None and node.is_pending(txid)
    info = mined_info(node, txid)
    size = tx.ByteSize() + 64
    assert info.receipt.net_usage == size and info.fee == 0
    assert balance(node, ADDRS[2]) == before + 1_000_000
    assert present(node.transaction(txid)).ret[0].contractRet == tron_pb2.Transaction.Result.SUCCESS
    net = present(node.account_net(ADDRS[1]))
    assert net["freeNetUsed"] == size and net["freeNetLimit"] == 600


def test_transfer_to_new_account_costs_1_1_trx(node: Node) -> None:
    _, new = fresh_key("new")
    before = balance(node, ADDRS[1])
    txid = send_ok(node, transfer(node, KEYS[1], new, 2_000_000))
    info = mined_info(node, txid)
    assert info.fee == 1_100_000 and info.receipt.net_fee == 100_000
    assert balance(node, ADDRS[1]) == before - 2_000_000 - 1_100_000
    acc = present(node.account(new))
    assert acc.balance == 2_000_000 and acc.owner_permission.keys[0].address == new
    # the block's ret carries only contractRet (java-tron's setResultCode); the fee is in TransactionInfo
    ret = present(node.transaction(txid)).ret
    assert len(ret) == 1 and ret[0].fee == 0 and ret[0].contractRet == tron_pb2.Transaction.Result.SUCCESS


def test_memo_fee(node: Node) -> None:
    before = balance(node, ADDRS[1])
    txid = send_ok(node, transfer(node, KEYS[1], ADDRS[2], 1, memo=b"order-42"))
    info = mined_info(node, txid)
    assert info.fee == 1_000_000
    assert balance(node, ADDRS[1]) == before - 1 - 1_000_000


def test_broadcast_error_codes(node: Node) -> None:
    # SIGERROR: signed by a key that is not in the owner permission
    r = node.broadcast(
        sign(
            build(
                node,
                "TransferContract",
                contract_pb2.TransferContract(owner_address=ADDRS[1], to_address=ADDRS[2], amount=1),
            ),
            KEYS[3],
        )
    )
    assert r.code == "SIGERROR"
    assert r.message.startswith("Validate signature error: ")
    signer = crypto.to_base58(ADDRS[3])
    assert r.message.endswith(f"is signed by {signer} but it is not contained of permission.")
    r = node.broadcast(
        build(
            node,
            "TransferContract",
            contract_pb2.TransferContract(owner_address=ADDRS[1], to_address=ADDRS[2], amount=1),
        )
    )
    assert (r.code, r.message) == ("SIGERROR", "Validate signature error: miss sig or contract")
    # TAPOS_ERROR
    r = node.broadcast(transfer(node, KEYS[1], ADDRS[2], 1, ref=bytes(32)))
    assert (r.code, r.message) == ("TAPOS_ERROR", "Tapos check error.")
    # TRANSACTION_EXPIRATION_ERROR: already expired, and too far in the future
    head_ts = node.head_block().block_header.raw_data.timestamp
    r = node.broadcast(transfer(node, KEYS[1], ADDRS[2], 1, expiration_ms=head_ts))
    assert r.code == "TRANSACTION_EXPIRATION_ERROR"
    r = node.broadcast(transfer(node, KEYS[1], ADDRS[2], 1, expiration_ms=head_ts + 86_400_000 + 5000))
    assert r.code == "TRANSACTION_EXPIRATION_ERROR"
    # TOO_BIG_TRANSACTION_ERROR
    big = transfer(node, KEYS[1], ADDRS[2], 1, memo=b"x" * 520_000)
    r = node.broadcast(big)
    assert (r.code, r.message) == (
        "TOO_BIG_TRANSACTION_ERROR",
        f"Too big transaction with result, TxId {r.txid.hex()}, the size is {big.ByteSize() + 128} bytes, "
        "maxTxSize 512000",
    )
    _, nobody = fresh_key("big-new-account")
    r = node.broadcast(transfer(node, KEYS[1], nobody, 1_000_000, memo=b"y" * 1000))
    assert r.code == "TOO_BIG_TRANSACTION_ERROR" and r.message.startswith("Too big new account transaction")
    # DUP_TRANSACTION_ERROR: pending, then mined
    tx = transfer(node, KEYS[1], ADDRS[2], 1)
    send_ok(node, tx)
    assert node.broadcast(tx).code == "DUP_TRANSACTION_ERROR"
    node.produce_block()
    r = node.broadcast(tx)
    assert (r.code, r.message) == ("DUP_TRANSACTION_ERROR", "Dup transaction.")
    # CONTRACT_VALIDATE_ERROR
    r = node.broadcast(transfer(node, KEYS[1], ADDRS[2], 10**18))
    assert (r.code, r.message) == (
        "CONTRACT_VALIDATE_ERROR",
        "Contract validate error : Validate TransferContract error, balance is not sufficient.",
    )
    empty = tron_pb2.Transaction(raw_data=tron_pb2.Transaction.raw(expiration=head_ts + 60_000))
    sign(empty, KEYS[1])
    assert node.broadcast(empty).message == "Contract validate error : No contract!"


def test_bandwidth_error_when_nothing_pays(node: Node) -> None:
    key, poor = fresh_key("poor")
    send_ok(node, transfer(node, KEYS[1], poor, 10))
    node.produce_block()
    # two transfers eat the 600 free bytes, the third needs a burn the account cannot pay
    send_ok(node, transfer(node, key, ADDRS[1], 1))
    send_ok(node, transfer(node, key, ADDRS[1], 1))
    r = node.broadcast(transfer(node, key, ADDRS[1], 1))
    assert (r.code, r.message) == ("BANDWITH_ERROR", "Account resource insufficient error.")


def _permission(
    ptype: tron_pb2.Permission.PermissionType.ValueType,
    pid: int,
    name: str,
    threshold: int,
    keys: list[tuple[bytes, int]],
    operations: bytes = b"",
) -> tron_pb2.Permission:
    p = tron_pb2.Permission(type=ptype, id=pid, permission_name=name, threshold=threshold)
    p.operations = operations
    for a, w in keys:
        p.keys.add(address=a, weight=w)
    return p


def test_multisig_2_of_3_after_permission_update(node: Node) -> None:
    owner_key, owner = KEYS[4], ADDRS[4]
    signers = [KEYS[5], KEYS[6], KEYS[7]]
    ops = bytes.fromhex("7fff1fc0033efb0f" + "00" * 24)
    c = contract_pb2.AccountPermissionUpdateContract(owner_address=owner)
    c.owner.CopyFrom(_permission(tron_pb2.Permission.Owner, 0, "owner", 1, [(owner, 1)]))
    c.actives.append(
        _permission(
            tron_pb2.Permission.Active, 2, "multi", 2, [(ADDRS[5], 1), (ADDRS[6], 1), (ADDRS[7], 1)], ops
        )
    )
    before = balance(node, owner)
    info = mined_info(node, send_ok(node, sign(build(node, "AccountPermissionUpdateContract", c), owner_key)))
    assert info.fee == 100_000_000
    assert balance(node, owner) == before - 100_000_000
    assert present(node.account(owner)).active_permission[0].threshold == 2

    tc = contract_pb2.TransferContract(owner_address=owner, to_address=ADDRS[1], amount=5)
    one = sign(build(node, "TransferContract", tc, permission_id=2), signers[0])
    weight = node.sign_weight(one)
    assert weight["code"] == "NOT_ENOUGH_PERMISSION" and weight["current_weight"] == 1
    assert weight["approved_list"] == [ADDRS[5]]
    r = node.broadcast(one)
    assert (r.code, r.message) == ("SIGERROR", "Validate signature error: sig error")
    two = sign(build(node, "TransferContract", tc, permission_id=2), signers[0], signers[2])
    assert node.sign_weight(two)["code"] == "ENOUGH_PERMISSION"
    before = balance(node, owner)
    info = mined_info(node, send_ok(node, two))
    assert info.fee == 1_000_000 + info.receipt.net_fee  # multi-signature fee + bandwidth burn (if any)
    assert balance(node, owner) == before - 5 - info.fee
    twice = sign(build(node, "TransferContract", tc, permission_id=2), signers[0], signers[0])
    assert "has signed twice!" in node.broadcast(twice).message
    bad = sign(build(node, "TransferContract", tc, permission_id=3), signers[0])
    assert node.broadcast(bad).message == "Validate signature error: permission isn't exit"


def test_blocks_ids_and_solidification(node: Node) -> None:
    blocks = node.mine(5)
    head = node.head_block()
    assert node.head_number() == 5 and node.solid_number() == 2
    bid = node.block_id(head)
    assert int.from_bytes(bid[:8], "big") == 5
    assert head.block_header.raw_data.parentHash == node.block_id(blocks[-2])
    raw = head.block_header.raw_data
    digest = crypto.sha256(raw.SerializeToString())
    signer = crypto.recover_address(digest, head.block_header.witness_signature)
    assert signer == raw.witness_address
    assert node.block_by_number(5, solid=True) is None and node.block_by_number(2, solid=True) is not None
    assert node.block_by_id(bid) is head
    assert [b.block_header.raw_data.number for b in node.blocks_range(1, 4)] == [1, 2, 3]


def test_solid_state_lags(node: Node) -> None:
    before = balance(node, ADDRS[2])
    txid = send_ok(node, transfer(node, KEYS[1], ADDRS[2], 777))
    node.produce_block()
    assert present(node.account(ADDRS[2])).balance == before + 777
    assert present(node.account(ADDRS[2], solid=True)).balance == before
    assert node.transaction_info(txid, solid=True) is None
    node.mine(3)
    assert present(node.account(ADDRS[2], solid=True)).balance == before + 777
    assert node.transaction_info(txid, solid=True) is not None


def test_fork_drops_included_tx_and_keeps_solid_blocks(node: Node) -> None:
    node.mine(4)
    solid_before = [node.block_id(b) for b in node.blocks_range(0, node.solid_number() + 1)]
    before = balance(node, ADDRS[2])
    tx = transfer(node, KEYS[1], ADDRS[2], 12_345, ref=node.block_id(node.solid_block()))  # like tronpy
    txid = send_ok(node, tx)
    node.produce_block()
    assert node.transaction_info(txid) is not None
    old_head = node.block_id(node.head_block())
    with pytest.raises(ValueError, match="cannot fork"):
        node.fork(node.head_number() - node.solid_number() + 1)
    branch = node.fork(2)
    assert len(branch) == 3
    assert node.transaction_info(txid) is None and node.transaction(txid) is None
    assert balance(node, ADDRS[2]) == before
    assert node.block_by_id(old_head) is None
    assert [node.block_id(b) for b in node.blocks_range(0, len(solid_before))] == solid_before
    assert all(codec.tx_id(t) != txid for b in branch for t in b.transactions)
    # the orphaned tx is unknown again: the same bytes can be broadcast (its ref block is still on the chain)
    assert send_ok(node, tx) == txid


def test_fork_reinclude_moves_tx(node: Node) -> None:
    node.mine(4)
    txid = send_ok(node, transfer(node, KEYS[1], ADDRS[3], 999))
    node.produce_block()
    old_block = present(node.transaction_info(txid)).blockNumber
    node.fork(1, reinclude=True)
    info = node.transaction_info(txid)
    assert info is not None and info.blockNumber == old_block + 1


def test_persistence_round_trip(tmp_path: Path) -> None:
    cfg = NodeConfig(data_dir=tmp_path / "d", solidity_lag=2)
    node = Node.open(cfg)
    txid = send_ok(node, transfer(node, KEYS[1], ADDRS[2], 4242))
    node.produce_block()
    node.mine(3)
    node.set_params({"getEnergyFee": 210})
    head_id = node.block_id(node.head_block())
    bal = balance(node, ADDRS[2])
    node.close()
    again = Node.open(cfg)
    assert node.block_id(again.head_block()) == head_id
    assert balance(again, ADDRS[2]) == bal
    assert again.transaction_info(txid) is not None
    assert again.params["getEnergyFee"] == 210
    assert present(again.account(ADDRS[2], solid=True)).balance == bal
    send_ok(again, transfer(again, KEYS[1], ADDRS[2], 1))
    again.produce_block()
    again.close()


def test_pending_tx_expiring_before_its_block_is_dropped(node: Node) -> None:
    head_ts = node.head_block().block_header.raw_data.timestamp
    short = transfer(node, KEYS[1], ADDRS[2], 1, expiration_ms=head_ts + 4_000)
    keep = transfer(node, KEYS[1], ADDRS[2], 2)
    a, b = send_ok(node, short), send_ok(node, keep)
    node.produce_block(head_ts + 9_000)
    assert node.transaction_info(a) is None and node.transaction_info(b) is not None


def test_set_params_validates(node: Node) -> None:
    with pytest.raises(KeyError):
        node.set_params({"getNoSuchThing": 1})
    with pytest.raises(ValueError, match="getEnergyFee must be an integer"):
        node.set_params({"getEnergyFee": "x"})  # type: ignore[dict-item]
    node.set_params({"getMemoFee": 2_000_000})
    assert dict(node.chain_parameters())["getMemoFee"] == 2_000_000


def test_mining_never_runs_far_ahead_of_the_wall_clock(node: Node) -> None:
    node.mine(40)
    now = int(time.time() * 1000)
    assert node.head_block().block_header.raw_data.timestamp <= now + 2 * 3000
    # a tronpy-style wall-clock expiration is still accepted after mining many blocks
    send_ok(node, transfer(node, KEYS[1], ADDRS[2], 1, expiration_ms=now + 60_000))
    times = [b.block_header.raw_data.timestamp for b in node.mine(3, spacing_ms=10_000)]
    assert times[1] - times[0] == times[2] - times[1] == 10_000


def test_genesis_file_overrides_accounts_and_params(tmp_path: Path) -> None:
    _, extra = fresh_key("genesis-extra")
    path = tmp_path / "genesis.json"
    path.write_text(
        '{"funded_accounts": 3, "account_balance": 5000000, "params": {"getEnergyFee": 210},'
        f' "accounts": [{{"address": "{crypto.to_base58(extra)}", "balance": 42, "usdt": 7}}]}}'
    )
    node = Node.open(NodeConfig(genesis_file=path, data_dir=tmp_path / "d"))
    assert len([a for a in node.genesis_accounts() if not a.is_witness]) == 3
    assert balance(node, ADDRS[1]) == 5_000_000 and node.account(ADDRS[3]) is None
    assert balance(node, extra) == 42 and dict(node.chain_parameters())["getEnergyFee"] == 210
    balance_of = bytes.fromhex("70a08231") + bytes(12) + extra[1:]
    r = node.trigger_constant(b"\x41" + bytes(20), USDT_ADDRESS, balance_of)
    assert int.from_bytes(r.return_data, "big") == 7
    node.close()
    again = Node.open(NodeConfig(data_dir=tmp_path / "d"))  # reopened without the file: same chain
    assert len(again.genesis_accounts()) == 4 and balance(again, extra) == 42
    again.close()
