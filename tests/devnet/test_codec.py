"""devnet.codec, devnet.crypto, devnet.pb: java-tron JSON rules, round trips, bad input, pb freshness."""

from __future__ import annotations

import filecmp
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message

from devnet import codec, crypto
from devnet.pb import contract_pb2 as c
from devnet.pb import tron_pb2 as t
from devnet.pb.common_pb2 import ENERGY, TRON_POWER

ROOT = Path(__file__).resolve().parents[2]

A = [crypto.address_from_private_key(i.to_bytes(32, "big")) for i in range(1, 6)]
ACTIVE_OPS = bytes.fromhex("7fff1fc0033efb0f" + "00" * 24)
ERC20_TRANSFER = bytes.fromhex("a9059cbb" + "00" * 12 + A[1][1:].hex() + f"{10**6:064x}")


def sample_contracts() -> list[tuple[str, Message]]:
    """One non-trivial message for every contract type the devnet executes or decodes."""
    abi = c.SmartContract.ABI(
        entrys=[
            c.SmartContract.ABI.Entry(
                name="transfer",
                inputs=[
                    c.SmartContract.ABI.Entry.Param(name="to", type="address"),
                    c.SmartContract.ABI.Entry.Param(name="value", type="uint256"),
                ],
                outputs=[c.SmartContract.ABI.Entry.Param(type="bool")],
                type=c.SmartContract.ABI.Entry.Function,
                stateMutability=c.SmartContract.ABI.Entry.Nonpayable,
            ),
            c.SmartContract.ABI.Entry(
                name="Transfer",
                inputs=[c.SmartContract.ABI.Entry.Param(indexed=True, name="from", type="address")],
                type=c.SmartContract.ABI.Entry.Event,
            ),
            c.SmartContract.ABI.Entry(
                constant=True,
                name="balanceOf",
                type=c.SmartContract.ABI.Entry.Function,
                stateMutability=c.SmartContract.ABI.Entry.View,
            ),
        ]
    )
    owner_perm = t.Permission(
        permission_name="owner",
        threshold=2,
        keys=[t.Key(address=A[0], weight=1), t.Key(address=A[1], weight=1)],
    )
    active = t.Permission(
        type=t.Permission.Active,
        id=2,
        permission_name="active",
        threshold=2,
        operations=ACTIVE_OPS,
        keys=[t.Key(address=A[2], weight=1), t.Key(address=A[3], weight=2)],
    )
    return [
        ("TransferContract", c.TransferContract(owner_address=A[0], to_address=A[1], amount=1_000_000)),
        ("AccountCreateContract", c.AccountCreateContract(owner_address=A[0], account_address=A[4])),
        (
            "CreateSmartContract",
            c.CreateSmartContract(
                owner_address=A[0],
                new_contract=c.SmartContract(
                    origin_address=A[0],
                    abi=abi,
                    bytecode=bytes.fromhex("6080604052348015600f57600080fd5b50"),
                    consume_user_resource_percent=100,
                    name="Token",
                    origin_energy_limit=10_000_000,
                ),
            ),
        ),
        (
            "TriggerSmartContract",
            c.TriggerSmartContract(
                owner_address=A[0], contract_address=A[2], call_value=5, data=ERC20_TRANSFER
            ),
        ),
        (
            "FreezeBalanceV2Contract",
            c.FreezeBalanceV2Contract(owner_address=A[0], frozen_balance=10**7, resource=ENERGY),
        ),
        (
            "UnfreezeBalanceV2Contract",
            c.UnfreezeBalanceV2Contract(owner_address=A[0], unfreeze_balance=10**6),
        ),
        ("WithdrawExpireUnfreezeContract", c.WithdrawExpireUnfreezeContract(owner_address=A[0])),
        ("CancelAllUnfreezeV2Contract", c.CancelAllUnfreezeV2Contract(owner_address=A[0])),
        (
            "DelegateResourceContract",
            c.DelegateResourceContract(
                owner_address=A[0],
                resource=ENERGY,
                balance=10**6,
                receiver_address=A[1],
                lock=True,
                lock_period=86400,
            ),
        ),
        (
            "UnDelegateResourceContract",
            c.UnDelegateResourceContract(owner_address=A[0], balance=10**6, receiver_address=A[1]),
        ),
        (
            "VoteWitnessContract",
            c.VoteWitnessContract(
                owner_address=A[0], votes=[c.VoteWitnessContract.Vote(vote_address=A[3], vote_count=7)]
            ),
        ),
        ("WithdrawBalanceContract", c.WithdrawBalanceContract(owner_address=A[0])),
        (
            "AccountPermissionUpdateContract",
            c.AccountPermissionUpdateContract(owner_address=A[0], owner=owner_perm, actives=[active]),
        ),
        (
            "FreezeBalanceContract",
            c.FreezeBalanceContract(
                owner_address=A[0],
                frozen_balance=10**6,
                frozen_duration=3,
                resource=ENERGY,
                receiver_address=A[1],
            ),
        ),
        ("UnfreezeBalanceContract", c.UnfreezeBalanceContract(owner_address=A[0], resource=ENERGY)),
        (
            "TransferAssetContract",
            c.TransferAssetContract(asset_name=b"1002000", owner_address=A[0], to_address=A[1], amount=42),
        ),
    ]


def sample_transaction(type_name: str, msg: Message, permission_id: int = 0) -> t.Transaction:
    tx = t.Transaction()
    raw = tx.raw_data
    raw.ref_block_bytes = bytes.fromhex("28c3")
    raw.ref_block_hash = bytes.fromhex("ce6d340282788569")
    raw.expiration = 1_700_000_060_000
    raw.timestamp = 1_700_000_000_123
    raw.data = b"memo"
    if type_name in ("TriggerSmartContract", "CreateSmartContract"):
        raw.fee_limit = 150_000_000
    raw.contract.append(codec.pack_contract(type_name, msg, permission_id))
    return tx


SAMPLES = sample_contracts()
IDS = [name for name, _ in SAMPLES]


# ------------------------------------------------------------------------------------------------ crypto


def test_crypto_known_addresses() -> None:
    assert A[0].hex() == "417e5f4552091a69125d5dfcb7b8c2659029395bdf"
    assert crypto.to_base58(A[0]) == "TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HC"
    key = bytes.fromhex("279ff36d9bf9f305af3280034bb4187c6dd299bac6b26a3c20b999c7c0d50e6e")
    assert crypto.to_base58(crypto.address_from_private_key(key)) == "TPX6HK2NRN4XKRX1JAhbC827bm7gMmy5w1"
    assert (
        crypto.from_base58("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t").hex()
        == "41a614f803b6fd780986a42c78ec9c7f77e6ded13c"
    )
    assert crypto.to_base58(bytes([0x41]) + bytes(20)) == "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb"
    assert crypto.keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


@pytest.mark.parametrize(
    "bad", ["TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HD", "", "0OIl", "1111111111111111111114oLvT2"]
)
def test_crypto_bad_base58(bad: str) -> None:
    with pytest.raises(crypto.AddressError):
        crypto.from_base58(bad)


@pytest.mark.parametrize("v_offset", [0, 27])
def test_crypto_sign_recover(v_offset: int) -> None:
    priv = (12345).to_bytes(32, "big")
    digest = hashlib.sha256(b"devnet").digest()
    sig = crypto.sign(digest, priv)
    assert len(sig) == 65 and sig[64] in (0, 1)
    sig = sig[:64] + bytes([sig[64] + v_offset])
    assert crypto.recover_address(digest, sig) == crypto.address_from_private_key(priv)
    # a different digest recovers to someone else, never to the signer
    assert crypto.recover_address(hashlib.sha256(b"other").digest(), sig) != crypto.address_from_private_key(
        priv
    )


def test_crypto_bad_signatures() -> None:
    digest = bytes(32)
    with pytest.raises(crypto.SignatureError, match="Signature size is 64"):
        crypto.recover_address(digest, bytes(64))
    with pytest.raises(crypto.SignatureError, match="Header byte out of range"):
        crypto.recover_address(digest, bytes(64) + bytes([40]))
    with pytest.raises(crypto.SignatureError):
        crypto.recover_address(digest, bytes(64) + b"\x00")  # r = s = 0 cannot be recovered


# -------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(("type_name", "msg"), SAMPLES, ids=IDS)
@pytest.mark.parametrize("visible", [False, True])
def test_transaction_round_trip(type_name: str, msg: Message, visible: bool) -> None:
    tx = sample_transaction(type_name, msg, permission_id=2)
    tx.signature.append(bytes(range(65)))
    tx.ret.add(contractRet=t.Transaction.Result.SUCCESS)
    js = codec.transaction_to_json(tx, visible)
    js = json.loads(json.dumps(js))  # must be plain JSON
    assert js["visible"] is visible
    assert js["txID"] == hashlib.sha256(tx.raw_data.SerializeToString()).hexdigest()
    assert js["raw_data_hex"] == tx.raw_data.SerializeToString().hex()
    contract = js["raw_data"]["contract"][0]
    assert contract["type"] == type_name and contract["Permission_id"] == 2
    assert contract["parameter"]["type_url"] == "type.googleapis.com/protocol." + type_name
    owner = contract["parameter"]["value"]["owner_address"]
    assert owner == (crypto.to_base58(A[0]) if visible else A[0].hex())
    assert js["raw_data"]["data"] == b"memo".hex()  # memo is always hex
    assert js["ret"] == [{"contractRet": "SUCCESS"}]
    back = codec.transaction_from_json(js, visible)
    assert back == tx
    assert codec.unpack_contract(back) == (type_name, msg)
    # the client's txID / raw_data_hex are never trusted
    js["txID"], js["raw_data_hex"] = "00" * 32, "00"
    assert codec.tx_id(codec.transaction_from_json(js, visible)) == codec.tx_id(tx)


def test_transaction_json_shape_matches_java_tron() -> None:
    tx = sample_transaction(*SAMPLES[0])
    js = codec.transaction_to_json(tx, False, include_visible=False)
    assert set(js) == {"txID", "raw_data", "raw_data_hex"}
    assert js["raw_data"] == {
        "ref_block_bytes": "28c3",
        "ref_block_hash": "ce6d340282788569",
        "expiration": 1_700_000_060_000,
        "data": "6d656d6f",
        "contract": [
            {
                "parameter": {
                    "value": {"owner_address": A[0].hex(), "to_address": A[1].hex(), "amount": 1_000_000},
                    "type_url": "type.googleapis.com/protocol.TransferContract",
                },
                "type": "TransferContract",
            }
        ],
        "timestamp": 1_700_000_000_123,
    }


def test_defaults_are_omitted_and_empty_messages_kept() -> None:
    freeze = c.FreezeBalanceV2Contract(owner_address=A[0], frozen_balance=5)  # resource BANDWIDTH = 0
    assert codec.message_to_json(freeze, False) == {"owner_address": A[0].hex(), "frozen_balance": 5}
    create = c.CreateSmartContract(
        owner_address=A[0], new_contract=c.SmartContract(abi=c.SmartContract.ABI())
    )
    js = codec.message_to_json(create, False)
    assert js["new_contract"] == {"abi": {}}
    parsed = codec.message_from_json(
        {"owner_address": A[0].hex(), "new_contract": {"abi": {}}}, c.CreateSmartContract, False
    )
    assert parsed.SerializeToString() == create.SerializeToString()
    assert parsed.new_contract.HasField("abi")


def test_explicit_defaults_unknown_and_null_keys_are_accepted() -> None:
    obj = {
        "owner_address": A[0].hex(),
        "contract_address": A[2].hex(),
        "call_value": 0,
        "data": "",
        "call_token_value": 0,
        "token_id": 0,
        "function_selector": "x()",
        "bogus": {"a": 1},
        "parameter": None,
    }
    msg = codec.message_from_json(obj, c.TriggerSmartContract, False)
    assert msg == c.TriggerSmartContract(owner_address=A[0], contract_address=A[2])


def test_json_format_array_leniency() -> None:
    """JsonFormat: a bare value for a repeated field is one element; an array for a singular field -> last."""
    perm = {
        "type": "Active",
        "id": 2,
        "permission_name": "active",
        "threshold": 1,
        "keys": {"address": A[0].hex(), "weight": 1},
    }
    msg = codec.message_from_json(
        {"owner_address": A[0].hex(), "actives": perm}, c.AccountPermissionUpdateContract, False
    )
    assert len(msg.actives) == 1 and msg.actives[0].keys[0].address == A[0]
    assert codec.message_from_json({"amount": [1, 2]}, c.TransferContract, False).amount == 2
    owner = codec.message_from_json(
        {"owner": [{"threshold": 1}, {"threshold": 3}]}, c.AccountPermissionUpdateContract, False
    ).owner
    assert owner.threshold == 3


def test_enum_input_forms() -> None:
    entry = codec.message_from_json(
        {"type": "function", "stateMutability": "nonpayable"}, c.SmartContract.ABI.Entry, False
    )
    assert entry.type == c.SmartContract.ABI.Entry.Function
    assert entry.stateMutability == c.SmartContract.ABI.Entry.Nonpayable
    assert codec.message_from_json({"resource": 1}, c.FreezeBalanceV2Contract, False).resource == 1
    assert codec.message_from_json({"resource": "ENERGY"}, c.FreezeBalanceV2Contract, False).resource == 1
    with pytest.raises(codec.CodecError, match=r'has no value named "energy"|has no value named "Energy"'):
        codec.message_from_json({"resource": "energy"}, c.FreezeBalanceV2Contract, False)
    with pytest.raises(codec.CodecError, match="has no value with number 9"):
        codec.message_from_json({"resource": 9}, c.FreezeBalanceV2Contract, False)


def test_tronpy_style_transaction_json() -> None:
    """What tronpy 0.6.2 posts to broadcasttransaction: hex addresses, extra txID/permission keys."""
    js = {
        "txID": "ff" * 32,
        "raw_data": {
            "contract": [
                {
                    "parameter": {
                        "value": {"owner_address": A[0].hex(), "to_address": A[1].hex(), "amount": 1},
                        "type_url": "type.googleapis.com/protocol.TransferContract",
                    },
                    "type": "TransferContract",
                    "Permission_id": 0,
                }
            ],
            "timestamp": 1751466432131,
            "expiration": 1751466492131,
            "ref_block_bytes": "6431",
            "ref_block_hash": "212a13dbe72ac5c0",
            "fee_limit": 0,
        },
        "signature": ["00" * 65],
        "permission": {"keys": []},
    }
    tx = codec.transaction_from_json(js, False)
    assert list(tx.signature) == [bytes(65)]
    assert tx.raw_data.fee_limit == 0 and tx.raw_data.contract[0].Permission_id == 0


# ------------------------------------------------------------------------------------------------ errors


def _tx_json(value: Any, type_name: str = "TransferContract", type_url: str | None = None) -> dict[str, Any]:
    return {
        "raw_data": {
            "ref_block_bytes": "28c3",
            "ref_block_hash": "ce6d340282788569",
            "expiration": 1,
            "contract": [
                {
                    "type": type_name,
                    "parameter": {
                        "value": value,
                        "type_url": type_url or "type.googleapis.com/protocol." + type_name,
                    },
                }
            ],
        }
    }


GOOD = {"owner_address": A[0].hex(), "to_address": A[1].hex(), "amount": 1}


@pytest.mark.parametrize(
    ("obj", "visible", "match"),
    [
        ({**GOOD, "owner_address": "41zz"}, False, "Invalid hex for owner_address"),
        ({**GOOD, "amount": "1"}, False, "Expected an integer for amount"),
        ({**GOOD, "amount": 1.5}, False, "Expected an integer for amount"),
        ({**GOOD, "amount": True}, False, "Expected an integer for amount"),
        ({**GOOD, "amount": 2**63}, False, "out of range"),
        ({**GOOD, "to_address": 5}, False, "Expected a hex string"),
        (
            {**GOOD, "owner_address": "TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HD"},
            True,
            "Invalid address for owner_address",
        ),
        ({**GOOD, "owner_address": A[0].hex()}, True, "Invalid address for owner_address"),
        ("0a15" + A[0].hex(), False, "parameter.value must be a JSON object"),
    ],
)
def test_bad_contract_values(obj: Any, visible: bool, match: str) -> None:
    with pytest.raises(codec.ContractParseError, match=match):
        codec.transaction_from_json(_tx_json(obj), visible)


def test_bad_transaction_shapes() -> None:
    with pytest.raises(codec.ContractParseError, match="invalid contractType: FooContract"):
        codec.transaction_from_json(_tx_json(GOOD, "FooContract"), False)
    with pytest.raises(codec.ContractParseError, match="not supported"):
        codec.transaction_from_json(_tx_json(GOOD, "AssetIssueContract"), False)
    bad: Any
    for bad in (None, [], {"raw_data": "x"}, {"raw_data": {"contract": {}}}):
        with pytest.raises(codec.CodecError):
            codec.transaction_from_json(bad, False)
    js = _tx_json(GOOD)
    js["raw_data"]["ref_block_hash"] = "xyz"
    with pytest.raises(codec.CodecError, match="Invalid hex for ref_block_hash"):
        codec.transaction_from_json(js, False)
    js = _tx_json(GOOD)
    js["signature"] = [5]
    with pytest.raises(codec.CodecError, match="Expected a hex string for signature"):
        codec.transaction_from_json(js, False)
    js = _tx_json(GOOD)
    js["raw_data"]["contract"][0]["Permission_id"] = 2**31
    with pytest.raises(codec.CodecError, match="out of range"):
        codec.transaction_from_json(js, False)


def test_wrong_type_url_is_kept_then_rejected_on_unpack() -> None:
    tx = codec.transaction_from_json(
        _tx_json(GOOD, type_url="type.googleapis.com/protocol.TriggerSmartContract"), False
    )
    # kept as sent (it is part of the hashed bytes, as in java-tron) ...
    assert tx.raw_data.contract[0].parameter.type_url.endswith("TriggerSmartContract")
    # ... but the contract cannot be unpacked
    with pytest.raises(codec.CodecError, match="contract type error"):
        codec.unpack_contract(tx)


def test_unpack_requires_exactly_one_contract() -> None:
    tx = sample_transaction(*SAMPLES[0])
    tx.raw_data.contract.append(tx.raw_data.contract[0])
    with pytest.raises(codec.CodecError, match="exactly 1"):
        codec.unpack_contract(tx)
    del tx.raw_data.contract[:]
    with pytest.raises(codec.CodecError, match="exactly 1"):
        codec.unpack_contract(tx)
    with pytest.raises(codec.CodecError):
        codec.pack_contract("TransferContract", c.TriggerSmartContract())


# ------------------------------------------------------------------------------- accounts, blocks, infos


def test_account_json_both_modes() -> None:
    acct = t.Account(
        account_name=b"alice",
        address=A[0],
        balance=123,
        create_time=1_700_000_000_000,
        votes=[t.Vote(vote_address=A[3], vote_count=2)],
        owner_permission=t.Permission(
            permission_name="owner", threshold=1, keys=[t.Key(address=A[0], weight=1)]
        ),
        active_permission=[
            t.Permission(
                type=t.Permission.Active,
                id=2,
                permission_name="active",
                threshold=1,
                operations=ACTIVE_OPS,
                keys=[t.Key(address=A[0], weight=1)],
            )
        ],
        frozenV2=[
            t.Account.FreezeV2(),
            t.Account.FreezeV2(type=ENERGY, amount=5),
            t.Account.FreezeV2(type=TRON_POWER),
        ],
        unfrozenV2=[t.Account.UnFreezeV2(type=ENERGY, unfreeze_amount=7, unfreeze_expire_time=99)],
        account_resource=t.Account.AccountResource(energy_usage=3, delegated_frozenV2_balance_for_energy=4),
        acquired_delegated_frozenV2_balance_for_bandwidth=6,
    )
    vis = codec.message_to_json(acct, True)
    assert vis["address"] == crypto.to_base58(A[0]) and vis["account_name"] == "alice"
    assert vis["owner_permission"]["keys"][0]["address"] == crypto.to_base58(A[0])
    assert "type" not in vis["owner_permission"]  # Owner = 0 is the default
    assert vis["active_permission"][0]["type"] == "Active"
    assert vis["active_permission"][0]["operations"] == ACTIVE_OPS.hex()
    assert vis["frozenV2"] == [{}, {"type": "ENERGY", "amount": 5}, {"type": "TRON_POWER"}]
    assert vis["unfrozenV2"] == [{"type": "ENERGY", "unfreeze_amount": 7, "unfreeze_expire_time": 99}]
    assert vis["votes"] == [{"vote_address": crypto.to_base58(A[3]), "vote_count": 2}]
    assert vis["account_resource"] == {"energy_usage": 3, "delegated_frozenV2_balance_for_energy": 4}
    assert vis["acquired_delegated_frozenV2_balance_for_bandwidth"] == 6
    hexed = codec.message_to_json(acct, False)
    assert hexed["address"] == A[0].hex() and hexed["account_name"] == b"alice".hex()
    assert codec.message_from_json(vis, t.Account, True) == acct
    assert codec.message_from_json(hexed, t.Account, False) == acct


def test_map_fields() -> None:
    info = t.TransactionInfo(cancel_unfreezeV2_amount={"ENERGY": 5, "BANDWIDTH": 0})
    js = codec.message_to_json(info, False)
    assert js["cancel_unfreezeV2_amount"] == [{"key": "BANDWIDTH"}, {"key": "ENERGY", "value": 5}]
    assert codec.message_from_json(js, t.TransactionInfo, False) == info


def _nile_header() -> t.BlockHeader.raw:
    return t.BlockHeader.raw(
        timestamp=1_777_445_307_000,
        txTrieRoot=bytes(range(32)),
        parentHash=bytes(32),
        number=66987627,
        witness_address=A[2],
        version=34,
    )


def test_block_id_and_json() -> None:
    raw = _nile_header()
    bid = codec.block_id(raw)
    assert bid[:8] == (66987627).to_bytes(8, "big")
    assert bid[8:] == hashlib.sha256(raw.SerializeToString()).digest()[8:]
    block = t.Block(block_header=t.BlockHeader(raw_data=raw, witness_signature=b"\x01" * 65))
    js = codec.block_to_json(block, True)
    assert js["blockID"] == bid.hex() and "transactions" not in js
    assert js["block_header"]["raw_data"]["witness_address"] == crypto.to_base58(A[2])
    assert js["block_header"]["raw_data"]["number"] == 66987627
    assert js["block_header"]["witness_signature"] == "01" * 65
    block.transactions.append(sample_transaction(*SAMPLES[0]))
    js = codec.block_to_json(block, False)
    assert js["block_header"]["raw_data"]["witness_address"] == A[2].hex()
    assert len(js["transactions"]) == 1 and "visible" not in js["transactions"][0]
    assert js["transactions"][0]["txID"] == codec.tx_id(block.transactions[0]).hex()


def test_transaction_info_json() -> None:
    info = t.TransactionInfo(
        id=bytes(range(32)),
        fee=345,
        blockNumber=7,
        blockTimeStamp=21_000,
        contractResult=[b""],
        contract_address=A[2],
        receipt=t.ResourceReceipt(
            energy_usage_total=13_000, net_usage=345, result=t.Transaction.Result.REVERT
        ),
        log=[t.TransactionInfo.Log(address=A[2][1:], topics=[bytes(32)], data=b"\x01")],
        result=t.TransactionInfo.FAILED,
        resMessage=b"REVERT opcode executed",
        withdraw_expire_amount=10,
        cancel_unfreezeV2_amount={"ENERGY": 3},
    )
    hexed = codec.transaction_info_to_json(info, False)
    assert hexed["log"][0] == {"address": A[2][1:].hex(), "topics": ["00" * 32], "data": "01"}
    assert hexed["resMessage"] == b"REVERT opcode executed".hex()
    assert hexed["contract_address"] == A[2].hex() and hexed["contractResult"] == [""]
    assert hexed["receipt"] == {"energy_usage_total": 13_000, "net_usage": 345, "result": "REVERT"}
    assert hexed["result"] == "FAILED" and hexed["withdraw_expire_amount"] == 10
    vis = codec.transaction_info_to_json(info, True)
    assert vis["log"][0]["address"] == crypto.to_base58(A[2])
    assert vis["resMessage"] == "REVERT opcode executed"
    assert vis["contract_address"] == crypto.to_base58(A[2])
    assert vis["id"] == bytes(range(32)).hex()
    ok = codec.transaction_info_to_json(t.TransactionInfo(id=bytes(32), blockNumber=1), False)
    assert "fee" not in ok and "result" not in ok  # defaults omitted, like java-tron


# -------------------------------------------------------------------------------------------- freshness


def test_pb_fresh(tmp_path: Path) -> None:
    """The committed devnet/pb equals a fresh `make devnet-proto` (byte for byte)."""
    subprocess.run(
        ["make", "-s", "devnet-proto", f"DEVNET_PB_OUT={tmp_path}"], cwd=ROOT, check=True, capture_output=True
    )
    fresh = sorted(p.name for p in (tmp_path / "devnet" / "pb").iterdir())
    committed = sorted(p.name for p in (ROOT / "devnet" / "pb").iterdir() if p.is_file())
    assert fresh == committed
    _, mismatch, errors = filecmp.cmpfiles(
        tmp_path / "devnet" / "pb", ROOT / "devnet" / "pb", fresh, shallow=False
    )
    assert mismatch == [] and errors == []
