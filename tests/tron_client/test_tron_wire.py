"""services/common/tron against the public vectors: byte-exact re-encoding, txID, signatures, addresses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import coincurve
import pytest
from eth_utils import keccak

from services.common.tron import address, tx, wire

VECTORS = json.loads((Path(__file__).parents[1] / "devnet" / "data" / "tron-vectors.json").read_text())
ENUMS = {"resource": tx.RESOURCE_CODES}


def _expected_value(value: dict[str, Any]) -> dict[str, Any]:
    """A vector's decoded contract JSON in wire-dict form (hex -> bytes, enum names -> numbers)."""
    out: dict[str, Any] = {}
    for k, v in value.items():
        if k in ENUMS:
            v = ENUMS[k][v]
        if isinstance(v, str):
            v = bytes.fromhex(v)
        elif isinstance(v, list):
            v = [_expected_value(x) for x in v]
        if v not in (0, b""):
            out[k] = v
    return out


@pytest.mark.parametrize("vec", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_roundtrip(vec: dict[str, Any]) -> None:
    raw = bytes.fromhex(vec["raw_data_hex"])
    assert tx.txid(raw) == vec["txID"]
    d = tx.decode_raw(raw)
    want = vec["decoded"]
    assert d.raw["ref_block_bytes"].hex() == want["ref_block_bytes"]
    assert d.raw["ref_block_hash"].hex() == want["ref_block_hash"]
    assert d.raw["expiration"] == want["expiration"]
    assert d.raw.get("timestamp", 0) == want.get("timestamp", 0)
    assert d.raw.get("fee_limit", 0) == want.get("fee_limit", 0)
    assert d.raw.get("data", b"").hex() == want.get("data", "")
    (contract,) = want["contract"]
    assert d.contract_type == contract["type"] and d.type_url == contract["type_url"]
    assert d.value == _expected_value(contract["value"])
    # Our encoder rebuilds the very same bytes from the decoded fields.
    assert wire.encode("Transaction.raw", d.raw) == raw
    block_id = bytes(8) + d.raw["ref_block_hash"] + bytes(16)
    ref = tx.RefBlock(int.from_bytes(d.raw["ref_block_bytes"], "big"), block_id, 0)
    rebuilt = tx.build_raw(
        d.contract_type,
        d.value,
        ref,
        expiration_ms=d.raw["expiration"],
        timestamp_ms=d.raw.get("timestamp", 0),
        fee_limit=d.raw.get("fee_limit", 0),
        data=d.raw.get("data", b""),
        permission_id=d.permission_id,
    )
    assert rebuilt == raw


@pytest.mark.parametrize("vec", [v for v in VECTORS if v["signatures"]], ids=lambda v: v["name"])
def test_vector_signatures_recover_to_signers(vec: dict[str, Any]) -> None:
    digest = bytes.fromhex(vec["txID"])
    got = []
    for sig_hex in vec["signatures"]:
        sig = bytes.fromhex(sig_hex)
        pub = coincurve.PublicKey.from_signature_and_message(
            sig[:64] + bytes([sig[64] % 27]), digest, hasher=None
        )
        got.append(address.to_base58(b"\x41" + keccak(pub.format(compressed=False)[1:])[12:]))
    assert got == vec["signers"]
    if "full_tx_hex" in vec:
        full = bytes.fromhex(vec["full_tx_hex"])
        raw, sigs = tx.decode_transaction(full)
        assert raw.hex() == vec["raw_data_hex"] and [s.hex() for s in sigs] == vec["signatures"]
        assert tx.encode_transaction(raw, sigs) == full


def test_ref_block_fields() -> None:
    block_id = bytes.fromhex("0000000003fe266bf6b6d392f654dc2e5011601546ed04623d9fcc4e9d439a25")
    ref = tx.RefBlock(66987627, block_id, 0)
    assert ref.ref_block_bytes.hex() == "266b" and ref.ref_block_hash.hex() == "f6b6d392f654dc2e"


def test_encoder_rules() -> None:
    # Zero scalars and empty bytes are omitted; a present embedded message is written even when empty;
    # repeated elements are always written; negative int64 takes 10 bytes.
    assert wire.encode("TransferContract", {"owner_address": b"", "amount": 0}) == b""
    assert wire.encode("Transaction.Contract", {"parameter": {}}) == b"\x12\x00"
    assert wire.encode("VoteWitnessContract", {"votes": [{}]}) == b"\x12\x00"
    assert wire.encode("TransferContract", {"amount": -1}) == b"\x18" + b"\xff" * 9 + b"\x01"
    assert wire.decode("TransferContract", b"\x18" + b"\xff" * 9 + b"\x01") == {"amount": -1}
    assert wire.encode_varint(300) == b"\xac\x02"
    with pytest.raises(wire.WireError):
        wire.encode("TransferContract", {"bogus": 1})
    for bad in (b"\x18", b"\x0a\x05ab", b"\x00\x00", b"\x18" + b"\xff" * 11, b"\x1b"):
        with pytest.raises(wire.WireError):
            wire.decode("TransferContract", bad)
    with pytest.raises(ValueError, match="0 contracts"):
        tx.decode_raw(wire.encode("Transaction.raw", {"contract": []}))


def test_addresses() -> None:
    a = address.from_base58("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")
    assert a.hex() == "41a614f803b6fd780986a42c78ec9c7f77e6ded13c"
    assert address.to_base58(a) == "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    assert address.from_any(a.hex()) == a and address.evm_word(a) == a[1:]
    for bad in ("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u", "hello", ""):
        with pytest.raises(address.InvalidAddress, match="not a base58check string"):
            address.from_base58(bad)
    with pytest.raises(address.InvalidAddress, match="21 bytes"):
        address.to_base58(b"\x42" + bytes(20))
