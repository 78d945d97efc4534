"""Every real transaction in tron-vectors.json: same txID via our JSON encoder and via its raw hex,
and every signature recovers to the listed signer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devnet import codec, crypto
from devnet.pb import tron_pb2

# A verbatim copy of the shared reference file (../shared/reference/tron-vectors.json), so CI needs no
# files outside the repository.
VECTORS_PATH = Path(__file__).parent / "data" / "tron-vectors.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text())


def java_tron_json(v: dict[str, Any], visible: bool) -> dict[str, Any]:
    """The vector's decoded fields in the shape java-tron / tronpy / TronWeb use on the wire."""
    raw = {k: val for k, val in v["decoded"].items() if k != "contract"}
    contracts = []
    for ct in v["decoded"]["contract"]:
        value = json.loads(json.dumps(ct["value"]))
        if visible:
            value = _to_base58(value, codec.CONTRACT_CLASSES[ct["type"]].DESCRIPTOR.full_name)
        contracts.append({"parameter": {"value": value, "type_url": ct["type_url"]}, "type": ct["type"]})
    raw["contract"] = contracts
    return {"visible": visible, "txID": "00" * 32, "raw_data": raw, "signature": v["signatures"]}


def _to_base58(obj: Any, prefix: str) -> Any:
    """Rewrite address fields (java-tron's list) of a hex-form contract value into base58."""
    if isinstance(obj, list):
        return [_to_base58(x, prefix) for x in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for k, val in obj.items():
        full = f"{prefix}.{k}"
        if full in codec.ADDRESS_FIELDS and isinstance(val, str):
            out[k] = crypto.to_base58(bytes.fromhex(val))
        elif k == "votes":
            out[k] = _to_base58(val, prefix + ".Vote")
        else:
            out[k] = val
    return out


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"][:3] for v in VECTORS])
@pytest.mark.parametrize("visible", [False, True])
def test_vector_txid_from_json(v: dict[str, Any], visible: bool) -> None:
    tx = codec.transaction_from_json(java_tron_json(v, visible), visible)
    assert tx.raw_data.SerializeToString().hex() == v["raw_data_hex"]
    assert codec.tx_id(tx).hex() == v["txID"]
    # printing it back and parsing again is stable
    js = codec.transaction_to_json(tx, visible)
    assert js["txID"] == v["txID"] and js["raw_data_hex"] == v["raw_data_hex"]
    assert codec.tx_id(codec.transaction_from_json(js, visible)).hex() == v["txID"]
    type_name, _ = codec.unpack_contract(tx)
    assert type_name == v["decoded"]["contract"][0]["type"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"][:3] for v in VECTORS])
def test_vector_txid_from_raw_hex(v: dict[str, Any]) -> None:
    raw = tron_pb2.Transaction.raw.FromString(bytes.fromhex(v["raw_data_hex"]))
    tx = tron_pb2.Transaction(raw_data=raw, signature=[bytes.fromhex(s) for s in v["signatures"]])
    assert raw.SerializeToString().hex() == v["raw_data_hex"]
    assert codec.tx_id(tx).hex() == v["txID"]
    if v.get("full_tx_hex"):
        full = bytes.fromhex(v["full_tx_hex"])
        assert tron_pb2.Transaction.FromString(full) == tx
        assert tx.SerializeToString() == full


@pytest.mark.parametrize("v", [v for v in VECTORS if v["signatures"]], ids=lambda v: v["name"][:3])
def test_vector_signatures_recover(v: dict[str, Any]) -> None:
    digest = bytes.fromhex(v["txID"])
    signers = [crypto.to_base58(crypto.recover_address(digest, bytes.fromhex(s))) for s in v["signatures"]]
    assert signers == v["signers"]
    owner = v["decoded"]["contract"][0]["value"]["owner_address"]
    assert crypto.from_base58(v["signers"][0]).hex() == owner
    # the same signature with TronWeb's v = 27/28 recovers to the same signer
    sig = bytearray.fromhex(v["signatures"][0])
    sig[64] += 27
    assert crypto.to_base58(crypto.recover_address(digest, bytes(sig))) == v["signers"][0]


def test_vectors_copy_matches_shared_reference() -> None:
    shared = Path("/work/shared/reference/tron-vectors.json")
    if not shared.exists():
        pytest.skip("shared reference folder not mounted")
    assert shared.read_bytes() == VECTORS_PATH.read_bytes()
    assert len(VECTORS) >= 6


# Two consecutive real Nile block headers (documentation-en getnowblock / getblockbylatestnum examples).
NILE_BLOCKS = [
    {
        "blockID": "0000000003fe266bf6b6d392f654dc2e5011601546ed04623d9fcc4e9d439a25",
        "block_header": {
            "raw_data": {
                "number": 66987627,
                "txTrieRoot": "f8156964cc3e5793a368f938a18ea45c02bd48fe3a412f7091ce8d9ef56df174",
                "witness_address": "41e7860196ad5b5718c1d6326babab039b70b8c1cd",
                "parentHash": "0000000003fe266a65d5194c947f6f7a059d4646c8e9a5293226bc7fdcfc775e",
                "version": 34,
                "timestamp": 1777445307000,
            },
            "witness_signature": "55a29981b2ba121613788de5d1b6bd87579ef63479f4fbb7bc99b1c72176948"
            "7023cb74ea3b604778ed448bf1c90db3db0fd8fedc85102cfda4231fd1c75d6e100",
        },
    },
    {
        "blockID": "0000000003fe266c55d8ec678995cff469dd46ee18671a96f5866f8cb227eed8",
        "block_header": {
            "raw_data": {
                "number": 66987628,
                "txTrieRoot": "1e45d06980078902492470bbce85cf652261f50881503ee81df6fd041af98848",
                "witness_address": "416606973497a56dcfcedb684e60a2386f2ae39db5",
                "parentHash": "0000000003fe266bf6b6d392f654dc2e5011601546ed04623d9fcc4e9d439a25",
                "version": 34,
                "timestamp": 1777445310000,
            },
            "witness_signature": "22bb7fdb5cdd33b8eca9104925f0dbd89f65d8e6ee4f7eed6f21d81b1428977e"
            "521865406b3ef70abc77b051d930081c2b9e368dc3f2c20c4b5e31187ba945bd00",
        },
    },
]


@pytest.mark.parametrize("blk", NILE_BLOCKS, ids=lambda b: str(b["block_header"]["raw_data"]["number"]))
def test_real_block_id_and_witness_signature(blk: dict[str, Any]) -> None:
    header = codec.message_from_json(blk["block_header"], tron_pb2.BlockHeader, False)
    assert codec.block_id(header.raw_data).hex() == blk["blockID"]
    digest = crypto.sha256(header.raw_data.SerializeToString())
    assert crypto.recover_address(digest, header.witness_signature) == header.raw_data.witness_address
    printed = codec.block_to_json(tron_pb2.Block(block_header=header), False)
    assert printed == blk
