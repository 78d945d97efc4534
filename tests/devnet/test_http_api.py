"""java-tron HTTP API shapes served by the devnet (raw HTTP, no client library)."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.harness.devnet import Devnet


def test_nodeinfo_block_strings(devnet: Devnet) -> None:
    info = devnet.post("wallet/getnodeinfo")
    num, block_id = info["block"].replace("Num:", "").split(",ID:")
    snum, sid = info["solidityBlock"].replace("Num:", "").split(",ID:")
    assert int(num) - int(snum) == devnet.solidity_lag or int(snum) == 0
    assert len(block_id) == 64 and int(block_id[:16], 16) == int(num)
    assert len(sid) == 64 and int(sid[:16], 16) == int(snum)
    assert info["configNodeInfo"]["codeVersion"]


def test_nowblock_get_and_post_on_both_prefixes(devnet: Devnet) -> None:
    devnet.wait_for_block(devnet.solidity_lag + 1)
    for prefix in ("wallet", "walletsolidity"):
        got = devnet.get(f"{prefix}/getnowblock")
        posted = devnet.post(f"{prefix}/getnowblock")
        for block in (got, posted):
            assert {"blockID", "block_header"} <= block.keys()
            assert int(block["blockID"][:16], 16) == block["block_header"]["raw_data"]["number"]
    head = devnet.post("wallet/getnowblock")["block_header"]["raw_data"]["number"]
    solid = devnet.post("walletsolidity/getnowblock")["block_header"]["raw_data"]["number"]
    assert solid < head
    assert head - solid <= devnet.solidity_lag + 1  # one block may land between the two calls


def test_block_queries(devnet: Devnet) -> None:
    devnet.wait_for_block(5)
    b3 = devnet.post("wallet/getblockbynum", {"num": 3})
    assert b3["block_header"]["raw_data"]["number"] == 3
    assert devnet.post("wallet/getblockbyid", {"value": b3["blockID"]})["blockID"] == b3["blockID"]
    assert devnet.get("wallet/getblockbynum", num=3)["blockID"] == b3["blockID"]
    assert devnet.post("wallet/getblock", {"id_or_num": "3"})["blockID"] == b3["blockID"]
    assert (
        devnet.post("wallet/getblock", {"id_or_num": b3["blockID"], "detail": True})["blockID"]
        == b3["blockID"]
    )
    head = devnet.post("wallet/getblock", {"detail": False})
    assert "transactions" not in head
    assert devnet.post("wallet/getblockbynum", {"num": 10**9}) == {}
    assert devnet.post("wallet/getblockbyid", {"value": "00" * 32}) == {}
    assert "Error" in devnet.post("wallet/getblock", {"id_or_num": "-1"})
    rng = devnet.post("wallet/getblockbylimitnext", {"startNum": 1, "endNum": 4})["block"]
    assert [b["block_header"]["raw_data"]["number"] for b in rng] == [1, 2, 3]
    assert devnet.post("wallet/getblockbylimitnext", {"startNum": 4, "endNum": 4}) == {}
    assert devnet.post("wallet/getblockbylimitnext", {"startNum": 0, "endNum": 500}) == {}
    latest = devnet.post("wallet/getblockbylatestnum", {"num": 2})["block"]
    nums = [b["block_header"]["raw_data"]["number"] for b in latest]
    assert len(nums) == 2 and nums[1] == nums[0] + 1
    # The devnet fixture is shared, so block 1 may hold another test's transactions: compare shapes.
    b1_txids = [tx["txID"] for tx in devnet.post("wallet/getblockbynum", {"num": 1}).get("transactions", [])]
    infos = devnet.post("wallet/gettransactioninfobyblocknum", {"num": 1})
    assert [info["id"] for info in infos] == b1_txids
    assert all(info["blockNumber"] == 1 for info in infos)
    assert devnet.post("wallet/gettransactioncountbyblocknum", {"num": 1}) == {"count": len(b1_txids)}
    assert devnet.post("wallet/listnodes") == {} and devnet.get("wallet/listproposals") == {}
    ranked = devnet.post("wallet/getpaginatednowwitnesslist", {"offset": 0, "limit": 5, "visible": True})
    assert ranked["witnesses"][0]["address"] == devnet.witness["address"]
    assert devnet.post("wallet/getpaginatednowwitnesslist", {"offset": 0, "limit": 0}) == {}
    assert devnet.get("wallet/getnextmaintenancetime")["num"] > 0


def test_walletsolidity_never_serves_above_solid(devnet: Devnet) -> None:
    st = devnet.status()
    above = st["solid"] + 1
    assert above <= st["head"]
    assert devnet.post("walletsolidity/getblockbynum", {"num": st["head"] + 5}) == {}
    head_block = devnet.post("wallet/getblockbynum", {"num": st["head"]})
    solid_now = devnet.status()["solid"]
    if st["head"] > solid_now:
        assert devnet.post("walletsolidity/getblockbyid", {"value": head_block["blockID"]}) == {}


def test_chain_parameters(devnet: Devnet) -> None:
    params = devnet.post("wallet/getchainparameters")["chainParameter"]
    by_key = {p["key"]: p.get("value") for p in params}
    assert by_key["getEnergyFee"] == 100
    assert by_key["getTransactionFee"] == 1000
    assert by_key["getFreeNetLimit"] == 600
    assert all(p.get("value", 1) != 0 for p in params)  # zero values are printed without "value"
    prices = devnet.post("wallet/getenergyprices")["prices"]
    assert prices.startswith("0:") and prices.endswith(":100")
    assert devnet.post("wallet/getbandwidthprices")["prices"].endswith(":1000")


def test_getaccount_forms(devnet: Devnet) -> None:
    acc = devnet.funded[0]
    visible = devnet.post("wallet/getaccount", {"address": acc["address"], "visible": True})
    assert visible["address"] == acc["address"] and visible["balance"] > 0
    hexed = devnet.post("wallet/getaccount", {"address": acc["hex"]})
    assert hexed["address"] == acc["hex"] and hexed["balance"] > 0
    assert devnet.get("wallet/getaccount", address=acc["hex"])["address"] == acc["hex"]
    assert devnet.post("walletsolidity/getaccount", {"address": acc["hex"]})["address"] == acc["hex"]
    unknown = devnet.new_account()
    assert devnet.post("wallet/getaccount", {"address": unknown["address"], "visible": True}) == {}
    assert devnet.post("wallet/getaccountresource", {"address": unknown["hex"]}) == {}
    res = devnet.post("wallet/getaccountnet", {"address": acc["hex"]})
    assert res["freeNetLimit"] == 600
    assert isinstance(devnet.post("wallet/getReward", {"address": acc["address"]})["reward"], int)
    assert isinstance(devnet.post("wallet/getReward", {"address": acc["hex"]})["reward"], int)
    assert "Error" in devnet.post("wallet/getReward", {"address": "Tnotanaddress"})
    assert devnet.post("wallet/validateaddress", {"address": acc["address"]})["result"] is True
    assert devnet.post("wallet/validateaddress", {"address": acc["hex"][:-2] + "00"})["result"] in (
        True,
        False,
    )


def test_usdt_contract_abi(devnet: Devnet) -> None:
    sc = devnet.post("wallet/getcontract", {"value": devnet.usdt, "visible": True})
    assert sc["contract_address"] == devnet.usdt
    fns = [e for e in sc["abi"]["entrys"] if e.get("type") == "Function"]
    assert fns and all("stateMutability" in e for e in fns)
    info = devnet.get("wallet/getcontractinfo", value=devnet.usdt, visible="true")
    assert info["runtimecode"] and info["smart_contract"]["contract_address"] == devnet.usdt


def test_triggerconstant_and_trigger_build(devnet: Devnet) -> None:
    holder = devnet.funded[0]
    param = holder["hex"][2:].rjust(64, "0")
    body = {
        "owner_address": holder["hex"],
        "contract_address": devnet.usdt_hex,
        "function_selector": "decimals()",
    }
    out = devnet.post("wallet/triggerconstantcontract", body)
    assert out["result"] == {"result": True}
    assert int(out["constant_result"][0], 16) == 6
    assert out["energy_used"] > 0
    est = devnet.post(
        "wallet/estimateenergy", {**body, "function_selector": "balanceOf(address)", "parameter": param}
    )
    assert est["result"] == {"result": True} and est["energy_required"] > 0
    to = devnet.new_account()
    trig = devnet.post(
        "wallet/triggersmartcontract",
        {
            **body,
            "function_selector": "transfer(address,uint256)",
            "parameter": to["hex"][2:].rjust(64, "0") + format(1, "064x"),
            "fee_limit": 50_000_000,
            "call_value": 0,
        },
    )
    assert trig["result"] == {"result": True}
    tx = trig["transaction"]
    assert tx["raw_data"]["fee_limit"] == 50_000_000
    assert tx["txID"] == hashlib.sha256(bytes.fromhex(tx["raw_data_hex"])).hexdigest()
    value = tx["raw_data"]["contract"][0]["parameter"]["value"]
    assert value["data"].startswith("a9059cbb") and "call_value" not in value
    missing = devnet.post("wallet/triggerconstantcontract", {**body, "contract_address": to["hex"]})
    assert missing["result"]["code"] == "CONTRACT_VALIDATE_ERROR"
    no_owner = devnet.post("wallet/triggersmartcontract", {"contract_address": body["contract_address"]})
    assert no_owner["result"]["code"] == "OTHER_ERROR"


def test_broadcast_error_shapes(devnet: Devnet) -> None:
    owner, other = devnet.funded[0], devnet.funded[1]
    tx = devnet.transfer_tx(owner, other["hex"], 1)
    tx["signature"] = []  # unsigned
    out = devnet.broadcast(tx)
    assert out["code"] == "SIGERROR" and out["txid"] == tx["txID"]
    assert bytes.fromhex(out["message"]).decode().startswith("Validate signature error")
    assert "result" not in out or out["result"] is False
    vis = devnet.post("wallet/broadcasttransaction", {**_visible(tx, owner, other), "visible": True})
    assert vis["code"] == "SIGERROR" and vis["message"].startswith("Validate signature error")
    empty = devnet.broadcast({"raw_data": {"contract": []}})
    assert empty.get("code") == "CONTRACT_VALIDATE_ERROR" or "Error" in empty


def _visible(tx: dict, owner: dict, other: dict) -> dict:
    import copy

    out = copy.deepcopy(tx)
    value = out["raw_data"]["contract"][0]["parameter"]["value"]
    value["owner_address"], value["to_address"] = owner["address"], other["address"]
    return out


def test_getsignweight_shape(devnet: Devnet) -> None:
    owner = devnet.funded[0]
    tx = devnet.make_tx(
        "TransferContract",
        {"owner_address": owner["hex"], "to_address": devnet.funded[1]["hex"], "amount": 5},
        devnet.ref_block(),
    )
    w = devnet.post("wallet/getsignweight", tx)
    assert w["result"]["code"] == "NOT_ENOUGH_PERMISSION"
    assert w["permission"]["keys"][0]["address"] == owner["hex"]
    inner = w["transaction"]["transaction"]
    assert inner["txID"] == hashlib.sha256(bytes.fromhex(inner["raw_data_hex"])).hexdigest()
    signed = devnet.sign(tx, owner["private_key"])
    w2 = devnet.post("wallet/getsignweight", signed)
    assert w2["result"] == {} and w2["current_weight"] == 1 and w2["approved_list"] == [owner["hex"]]


def test_getsignweight_error_codes_follow_the_java_exception(devnet: Devnet) -> None:
    """Wallet.getTransactionSignWeight: PermissionException → PERMISSION_ERROR, a signature shorter than
    65 bytes → SIGNATURE_FORMAT_ERROR, an unrecoverable one → COMPUTE_ADDRESS_ERROR (permission shown)."""
    owner = devnet.funded[0]
    tx = devnet.make_tx(
        "TransferContract",
        {"owner_address": owner["hex"], "to_address": devnet.funded[1]["hex"], "amount": 5},
        devnet.ref_block(),
    )
    stranger = devnet.sign(dict(tx, signature=[]), devnet.new_account()["private_key"])
    w = devnet.post("wallet/getsignweight", stranger)
    assert w["result"]["code"] == "PERMISSION_ERROR"
    assert "but it is not contained of permission." in w["result"]["message"]
    assert w["permission"]["keys"][0]["address"] == owner["hex"] and "approved_list" not in w
    short = devnet.post("wallet/getsignweight", dict(tx, signature=["00" * 10]))
    assert short["result"] == {"code": "SIGNATURE_FORMAT_ERROR", "message": "Signature size is 10"}
    garbage = devnet.post("wallet/getsignweight", dict(tx, signature=["00" * 65]))
    assert garbage["result"]["code"] == "COMPUTE_ADDRESS_ERROR" and "permission" in garbage
    # broadcast reports every one of them as SIGERROR
    assert devnet.broadcast(dict(tx, signature=["00" * 10]))["code"] == "SIGERROR"


BAD_BODIES = [
    ("wallet/getaccount", b"{not json"),
    ("wallet/getaccount", b"[1,2,3]"),
    ("wallet/getaccount", b'{"address": 12345}'),
    ("wallet/getaccount", b'{"address": "zz-not-hex"}'),
    ("wallet/getaccount", b'{"address": "Tbadbase58", "visible": true}'),
    ("wallet/getblockbynum", b'{"num": "abc"}'),
    ("wallet/getblockbynum", b'{"num": {"x": 1}}'),
    ("wallet/getblockbyid", b'{"value": "xyz"}'),
    ("wallet/gettransactionbyid", b'{"value": 7}'),
    ("wallet/gettransactioninfobyid", b'{"value": "abc"}'),
    ("wallet/broadcasttransaction", b"{}"),
    ("wallet/broadcasttransaction", b'{"raw_data": 5}'),
    ("wallet/broadcasttransaction", b'{"raw_data": {"contract": [{"type": "Nope"}]}}'),
    (
        "wallet/broadcasttransaction",
        b'{"raw_data": {"contract": [{"type": "TransferContract", "parameter": '
        b'{"value": {"amount": "lots"}}}]}, "signature": ["zz"]}',
    ),
    ("wallet/broadcasthex", b'{"transaction": "0a0b0c"}'),
    ("wallet/broadcasthex", b'{"transaction": "not hex"}'),
    ("wallet/getsignweight", b'{"raw_data": {"contract": "x"}}'),
    ("wallet/triggerconstantcontract", b'{"owner_address": "41", "contract_address": 3}'),
    (
        "wallet/triggersmartcontract",
        b'{"owner_address": [], "contract_address": "41", "function_selector": 1}',
    ),
    ("wallet/estimateenergy", b'{"owner_address": "zz", "data": "zz"}'),
    ("wallet/getcontract", b'{"value": "41"}'),
    ("wallet/getdelegatedresourcev2", b'{"fromAddress": "x", "toAddress": 1}'),
    ("wallet/getcandelegatedmaxsize", b'{"owner_address": "41", "type": "weird"}'),
    ("wallet/getblockbylimitnext", b'{"startNum": "a", "endNum": null}'),
    ("wallet/createtransaction", b'{"owner_address": "41", "to_address": "zz", "amount": -1}'),
    ("walletsolidity/getaccount", b"\xff\xfe\x00"),
]


@pytest.mark.parametrize(("path", "body"), BAD_BODIES)
def test_bad_input_gives_java_error_json(devnet: Devnet, path: str, body: bytes) -> None:
    resp = devnet.http.post("/" + path, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 200
    assert "Traceback" not in resp.text
    out = resp.json()
    assert isinstance(out, dict)
    if "Error" in out:
        assert out["Error"].startswith("class ") or out["Error"].startswith("INVALID")
    else:  # java-tron answers some bad input with {} or a Return code
        assert out == {} or "code" in out or "code" in out.get("result", {})
    assert "blockID" in devnet.post("wallet/getnowblock")  # still serving


def test_oversize_body_and_unknown_paths(devnet: Devnet) -> None:
    big = b'{"address": "' + b"a" * (5 * 1024 * 1024) + b'"}'
    resp = devnet.http.post("/wallet/getaccount", content=big)
    assert resp.status_code == 200
    assert "body size is too big" in resp.json()["Error"]
    assert devnet.http.get("/wallet/triggersmartcontract").text == ""  # POST-only servlet
    assert devnet.http.post("/wallet/nosuchendpoint", json={}).status_code == 404
    assert devnet.http.post("/walletsolidity/broadcasttransaction", json={}).status_code == 404
    assert "blockID" in devnet.post("wallet/getnowblock")


def test_json_content_type(devnet: Devnet) -> None:
    resp = httpx.post(devnet.url + "/wallet/getnowblock")
    assert resp.headers["content-type"].startswith("application/json")


def test_node_side_builders(devnet: Devnet) -> None:
    owner, to = devnet.funded[7], devnet.new_account()
    tx = devnet.post(
        "wallet/createtransaction",
        {"owner_address": owner["address"], "to_address": to["address"], "amount": 1_000, "visible": True},
    )
    assert tx["visible"] is True and tx["raw_data"]["contract"][0]["type"] == "TransferContract"
    assert tx["txID"] == hashlib.sha256(bytes.fromhex(tx["raw_data_hex"])).hexdigest()
    ref_num = int(tx["raw_data"]["ref_block_bytes"], 16)  # short chain: the low 2 bytes are the number
    assert (
        devnet.post("wallet/getblockbynum", {"num": ref_num})["blockID"][16:32]
        == tx["raw_data"]["ref_block_hash"]
    )
    assert ref_num <= devnet.status()["solid"]  # java-tron builders reference the solid block
    signed = devnet.sign(tx, owner["private_key"])
    assert devnet.broadcast(signed)["result"] is True
    assert devnet.wait_for_tx(signed["txID"])["id"] == signed["txID"]

    ghost = devnet.new_account()
    err = devnet.post(
        "wallet/createtransaction", {"owner_address": ghost["hex"], "to_address": owner["hex"], "amount": 5}
    )
    assert err["Error"].startswith("class org.tron.core.exception.ContractValidateException : ")
    frz = devnet.post(
        "wallet/freezebalancev2",
        {"owner_address": owner["hex"], "frozen_balance": 2_000_000, "resource": "ENERGY"},
    )
    value = frz["raw_data"]["contract"][0]["parameter"]["value"]
    assert value == {"owner_address": owner["hex"], "frozen_balance": 2_000_000, "resource": "ENERGY"}
    small = devnet.post("wallet/freezebalancev2", {"owner_address": owner["hex"], "frozen_balance": 1})
    assert "frozenBalance must be greater than or equal to 1 TRX" in small["Error"]
    deploy = devnet.post(
        "wallet/deploycontract",
        {
            "owner_address": owner["hex"],
            "abi": "[]",
            "bytecode": "6080604052",
            "fee_limit": 10**9,
            "name": "X",
        },
    )
    assert len(deploy["contract_address"]) == 42 and deploy["raw_data"]["fee_limit"] == 10**9
