"""broadcasttransaction / broadcasthex: java-tron response codes and shapes, raw HTTP."""

from __future__ import annotations

import copy
import json

from devnet import crypto
from tests.harness.devnet import Devnet


def _code(out: dict) -> str:
    return out.get("code", "SUCCESS" if out.get("result") is True else "?")


def _msg(out: dict) -> str:
    return bytes.fromhex(out.get("message", "")).decode()


def test_success_then_duplicate(devnet: Devnet) -> None:
    tx = devnet.transfer_tx(devnet.funded[5], devnet.new_account()["hex"], 1_000_000)
    assert devnet.broadcast(tx) == {"result": True, "txid": tx["txID"]}
    dup = devnet.broadcast(tx)  # still pending or already in a block: either way a duplicate
    assert _code(dup) == "DUP_TRANSACTION_ERROR" and dup["txid"] == tx["txID"]
    assert devnet.wait_for_tx(tx["txID"])["id"] == tx["txID"]
    assert _code(devnet.broadcast(tx)) == "DUP_TRANSACTION_ERROR"


def test_expired_and_tapos(devnet: Devnet) -> None:
    owner, to = devnet.funded[5], devnet.new_account()["hex"]
    ref = devnet.ref_block()
    head_ts = devnet.post("wallet/getnowblock")["block_header"]["raw_data"]["timestamp"]
    expired = devnet.transfer_tx(owner, to, 5, ref={**ref, "expiration": head_ts - 1000})
    out = devnet.broadcast(expired)
    assert _code(out) == "TRANSACTION_EXPIRATION_ERROR", out
    too_far = devnet.transfer_tx(owner, to, 6, ref={**ref, "expiration": head_ts + 25 * 3600 * 1000})
    assert _code(devnet.broadcast(too_far)) == "TRANSACTION_EXPIRATION_ERROR"
    tapos = devnet.transfer_tx(owner, to, 7, ref={**ref, "ref_block_hash": "00" * 8})
    out = devnet.broadcast(tapos)
    assert _code(out) == "TAPOS_ERROR" and "Tapos" in _msg(out)


def test_signature_errors(devnet: Devnet) -> None:
    owner, to = devnet.funded[5], devnet.new_account()["hex"]
    tx = devnet.make_tx(
        "TransferContract", {"owner_address": owner["hex"], "to_address": to, "amount": 8}, devnet.ref_block()
    )
    wrong = devnet.sign(copy.deepcopy(tx), devnet.new_account()["private_key"])
    out = devnet.broadcast(wrong)
    assert _code(out) == "SIGERROR"
    assert _msg(out).startswith("Validate signature error: ") and "not contained of permission" in _msg(out)
    twice = devnet.sign(copy.deepcopy(tx), owner["private_key"], owner["private_key"])
    out = devnet.broadcast(twice)
    # java-tron counts signatures against the permission's keys before looking for doubles
    assert _code(out) == "SIGERROR" and "Signature count is 2 more than key counts" in _msg(out)
    garbage = {**copy.deepcopy(tx), "signature": ["00" * 65]}
    assert _code(devnet.broadcast(garbage)) == "SIGERROR"
    # v = 27/28 (TronWeb style) is accepted like v = 0/1
    good = devnet.sign(copy.deepcopy(tx), owner["private_key"])
    sig = bytearray(bytes.fromhex(good["signature"][0]))
    sig[64] += 27
    good["signature"] = [sig.hex()]
    assert devnet.broadcast(good)["result"] is True


def test_validate_errors(devnet: Devnet) -> None:
    ghost = devnet.new_account()
    out = devnet.broadcast(devnet.transfer_tx(ghost, devnet.funded[5]["hex"], 1))
    assert _code(out) == "CONTRACT_VALIDATE_ERROR", out
    poor = devnet.funded[5]
    balance = devnet.post("wallet/getaccount", {"address": poor["hex"]})["balance"]
    out = devnet.broadcast(devnet.transfer_tx(poor, devnet.new_account()["hex"], balance * 2))
    assert _code(out) == "CONTRACT_VALIDATE_ERROR"
    assert _msg(out).startswith("Contract validate error : ")
    out = devnet.broadcast({"raw_data": {"contract": [], **devnet.ref_block()}, "signature": []})
    assert _code(out) == "CONTRACT_VALIDATE_ERROR" and "No contract" in _msg(out)


def test_too_big(devnet: Devnet) -> None:
    owner = devnet.funded[5]
    ref = {**devnet.ref_block(), "data": "ab" * 520_000}
    tx = devnet.make_tx(
        "TransferContract",
        {"owner_address": owner["hex"], "to_address": devnet.funded[6]["hex"], "amount": 9},
        ref,
    )
    out = devnet.broadcast(devnet.sign(tx, owner["private_key"]))
    assert _code(out) == "TOO_BIG_TRANSACTION_ERROR", _code(out)


def test_broadcasthex(devnet: Devnet) -> None:
    owner, to = devnet.funded[6], devnet.new_account()
    tx = devnet.transfer_tx(owner, to["hex"], 1_234_567)
    raw = bytes.fromhex(devnet.post("wallet/getsignweight", tx)["transaction"]["transaction"]["raw_data_hex"])
    sig = bytes.fromhex(tx["signature"][0])
    full = b"\x0a" + _varint(len(raw)) + raw + b"\x12" + _varint(len(sig)) + sig
    out = devnet.post("wallet/broadcasthex", {"transaction": full.hex()})
    assert out["result"] is True and out["code"] == "SUCCESS" and out["txid"] == tx["txID"]
    # TronWeb JSON.parse()s this string: java-tron's generic JsonFormat print of the Transaction, so no
    # txID / raw_data_hex and the contract parameter still packed (hex value)
    printed = json.loads(out["transaction"])
    assert set(printed) == {"raw_data", "signature"} and printed["signature"] == tx["signature"]
    param = printed["raw_data"]["contract"][0]["parameter"]
    assert param["type_url"] == "type.googleapis.com/protocol.TransferContract"
    inner = bytes.fromhex(param["value"])
    assert (
        bytes.fromhex(to["hex"]) in inner
        and printed["raw_data"]["ref_block_bytes"] == tx["raw_data"]["ref_block_bytes"]
    )
    again = devnet.post("wallet/broadcasthex", {"transaction": full.hex()})
    assert again["result"] is False and again["code"] == "DUP_TRANSACTION_ERROR"
    assert again["message"] == "Dup transaction."  # plain text here, unlike broadcasttransaction
    devnet.wait_for_tx(tx["txID"])
    assert (
        devnet.post("wallet/getaccount", {"address": to["address"], "visible": True})["balance"] == 1_234_567
    )
    assert crypto.from_base58(to["address"]).hex() == to["hex"]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)
