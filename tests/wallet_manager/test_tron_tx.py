"""Wire-level Transaction.raw parsing against transactions encoded by devnet's protobuf classes."""

from __future__ import annotations

import hashlib

import pytest

from devnet.pb import common_pb2, contract_pb2, tron_pb2
from services.wallet_manager.vault.errors import MalformedTransaction
from services.wallet_manager.vault.tron_tx import parse_transaction, top_level_fields

from .txs import (
    ABANDON_ADDR0,
    DEST,
    LEDGER_VECTOR_RAW,
    LEDGER_VECTOR_TXID,
    USDT,
    a,
    abi_call,
    raw_tx,
    transfer,
    trc20_call,
    trc20_transfer,
)

OWNER = ABANDON_ADDR0


def test_ledger_vector_transfer() -> None:
    tx = parse_transaction(LEDGER_VECTOR_RAW)
    assert tx.txid.hex() == LEDGER_VECTOR_TXID
    assert (tx.contract_type, tx.contract_type_name) == (1, "TransferContract")
    assert tx.owner == OWNER and tx.amount == 1_000_000 and tx.asset == "TRX"
    assert tx.destination == "THChUb7p2bwY6ReAiJXao6qc2ZGn88T46v"
    assert tx.expiration == 1528711356000 and tx.timestamp == 1528711297744 and tx.fee_limit == 0
    assert tx.ref_block_bytes.hex() == "7d52" and tx.ref_block_hash.hex() == "89fd90c45b71f247"
    assert b"".join(top_level_fields(LEDGER_VECTOR_RAW)) == LEDGER_VECTOR_RAW


def test_transfer_with_memo_and_permission() -> None:
    raw = transfer(OWNER, DEST, 5, memo=b"invoice 42", fee_limit=7, permission_id=2)
    tx = parse_transaction(raw)
    assert tx.memo == b"invoice 42" and tx.permission_id == 2 and tx.fee_limit == 7
    assert tx.txid == hashlib.sha256(raw).digest()


@pytest.mark.parametrize(
    ("selector", "method"),
    [("a9059cbb", "transfer"), ("095ea7b3", "approve"), ("39509351", "increaseAllowance")],
)
def test_trc20_transfer_and_approve(selector: str, method: str) -> None:
    tx = parse_transaction(trc20_call(OWNER, USDT, abi_call(selector, DEST, 12_345_678)))
    assert tx.contract_type_name == "TriggerSmartContract" and tx.token_method == method
    assert tx.token_contract == tx.contract_address == USDT
    assert tx.destination == DEST and tx.amount == 12_345_678 and tx.fee_limit == 30_000_000


def test_trc20_transfer_from_and_huge_amounts() -> None:
    data = bytes.fromhex("23b872dd") + a(OWNER)[1:].rjust(32, b"\0") + a(DEST)[1:].rjust(32, b"\0")
    data += (2**256 - 1).to_bytes(32, "big")
    tx = parse_transaction(trc20_call(OWNER, USDT, data))
    assert tx.token_method == "transferFrom" and tx.destination == DEST and tx.amount == 2**256 - 1


def test_custom_call_and_call_value() -> None:
    tx = parse_transaction(trc20_call(OWNER, USDT, bytes.fromhex("deadbeef") + bytes(32), call_value=9))
    assert tx.token_method is None and tx.destination == tx.contract_address == USDT and tx.call_value == 9
    # A transfer selector with the wrong argument length is not a TRC20 transfer.
    odd = parse_transaction(trc20_call(OWNER, USDT, abi_call("a9059cbb", DEST, 1) + b"\0"))
    assert odd.token_method is None and odd.contract_address == USDT
    # TRC10 sent along makes a transfer-shaped call an arbitrary one, with its value kept.
    msg = contract_pb2.TriggerSmartContract(
        owner_address=a(OWNER),
        contract_address=a(USDT),
        data=abi_call("a9059cbb", DEST, 1),
        call_token_value=5,
        token_id=1_000_001,
    )
    tx = parse_transaction(raw_tx("TriggerSmartContract", msg))
    assert (tx.token_method, tx.call_token_value, tx.call_token_id) == (None, 5, 1_000_001)


def test_stake_contracts() -> None:
    freeze = contract_pb2.FreezeBalanceV2Contract(
        owner_address=a(OWNER), frozen_balance=10**9, resource=common_pb2.ENERGY
    )
    tx = parse_transaction(raw_tx("FreezeBalanceV2Contract", freeze))
    assert (tx.amount, tx.resource, tx.destination) == (10**9, "ENERGY", None)
    unfreeze = contract_pb2.UnfreezeBalanceV2Contract(owner_address=a(OWNER), unfreeze_balance=5)
    tx = parse_transaction(raw_tx("UnfreezeBalanceV2Contract", unfreeze))
    assert (tx.amount, tx.resource) == (5, "BANDWIDTH")
    deleg = contract_pb2.DelegateResourceContract(
        owner_address=a(OWNER),
        resource=common_pb2.ENERGY,
        balance=3 * 10**6,
        receiver_address=a(DEST),
        lock=True,
    )
    tx = parse_transaction(raw_tx("DelegateResourceContract", deleg))
    assert (tx.destination, tx.amount, tx.resource, tx.lock) == (DEST, 3 * 10**6, "ENERGY", True)
    undeleg = contract_pb2.UnDelegateResourceContract(
        owner_address=a(OWNER), resource=common_pb2.BANDWIDTH, balance=4, receiver_address=a(DEST)
    )
    tx = parse_transaction(raw_tx("UnDelegateResourceContract", undeleg))
    assert (tx.contract_type, tx.destination, tx.amount) == (58, DEST, 4)
    w = parse_transaction(
        raw_tx(
            "WithdrawExpireUnfreezeContract",
            contract_pb2.WithdrawExpireUnfreezeContract(owner_address=a(OWNER)),
        )
    )
    assert w.contract_type == 56 and w.amount is None and w.owner == OWNER
    vote = contract_pb2.VoteWitnessContract(owner_address=a(OWNER))
    vote.votes.add(vote_address=a(DEST), vote_count=7)
    assert parse_transaction(raw_tx("VoteWitnessContract", vote)).votes == ((DEST, 7),)


def test_account_permission_update_keys() -> None:
    update = contract_pb2.AccountPermissionUpdateContract(owner_address=a(OWNER))
    update.owner.keys.add(address=a(OWNER), weight=1)
    update.actives.add(type=tron_pb2.Permission.Active, id=2).keys.add(address=a(DEST), weight=1)
    raw = raw_tx("AccountPermissionUpdateContract", update)
    assert parse_transaction(raw).permission_keys == (OWNER, DEST)
    # A second `owner` field merges into the first on the node (keys concatenate): both are read.
    extra = contract_pb2.AccountPermissionUpdateContract()
    extra.owner.keys.add(address=a(USDT), weight=1)
    merged = tron_pb2.Transaction.raw.FromString(raw)
    merged.contract[0].parameter.value += extra.SerializeToString()
    assert set(parse_transaction(merged.SerializeToString()).permission_keys) == {OWNER, DEST, USDT}


def test_malformed_inputs() -> None:
    good = transfer(OWNER, DEST, 1)
    for bad in (b"", good[:-1], good + b"\x07", b"\xff" * 11):
        with pytest.raises(MalformedTransaction):
            parse_transaction(bad)
    # Two contracts.
    raw = tron_pb2.Transaction.raw.FromString(good)
    raw.contract.append(raw.contract[0])
    with pytest.raises(MalformedTransaction, match="exactly one"):
        parse_transaction(raw.SerializeToString())
    # type_url that disagrees with the contract type.
    raw = tron_pb2.Transaction.raw.FromString(good)
    raw.contract[0].parameter.type_url = "type.googleapis.com/protocol.TriggerSmartContract"
    with pytest.raises(MalformedTransaction, match="type_url"):
        parse_transaction(raw.SerializeToString())
    # Owner that is not a 21-byte 0x41 address.
    msg = contract_pb2.TransferContract(owner_address=b"\x42" * 21, to_address=a(DEST), amount=1)
    with pytest.raises(MalformedTransaction, match="owner"):
        parse_transaction(raw_tx("TransferContract", msg))
    # Negative amount.
    msg = contract_pb2.TransferContract(owner_address=a(OWNER), to_address=a(DEST), amount=-5)
    with pytest.raises(MalformedTransaction, match="negative"):
        parse_transaction(raw_tx("TransferContract", msg))
    # A negative fee_limit would lower the TRX the policy counts.
    with pytest.raises(MalformedTransaction, match="fee_limit"):
        parse_transaction(transfer(OWNER, DEST, 1, fee_limit=-1))


def test_trc20_amount_parsed_from_bytes_not_from_any_json() -> None:
    tx = parse_transaction(trc20_transfer(OWNER, USDT, DEST, 1))
    assert tx.amount == 1 and tx.call_data[:4].hex() == "a9059cbb"


def test_transfer_asset_owner_is_field_2() -> None:
    """TransferAssetContract is the one contract whose owner is not field 1 (1 is asset_name): a 21-byte asset
    name starting with 0x41 must not pass for the owner."""
    msg = contract_pb2.TransferAssetContract(
        asset_name=a(DEST), owner_address=a(OWNER), to_address=a(DEST), amount=5
    )
    tx = parse_transaction(raw_tx("TransferAssetContract", msg))
    assert (tx.owner, tx.destination, tx.amount) == (OWNER, DEST, 5)
