"""java-tron HTTP API (/wallet/*, /walletsolidity/*) over the `Node` facade.

Transport rules follow java-tron's Jetty servlets: POST with a JSON body (empty = {}) or GET with a query
string, always HTTP 200 with JSON, "not found" = {}, failures = {"Error": "<java class> : <message>"}.
One catch-all route per prefix dispatches through a dict: the broadcast path stays short.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, overload

from aiohttp import web

from devnet import codec, crypto
from devnet.node import ContractExeError, ContractValidateError, Node
from devnet.pb import contract_pb2, tron_pb2

log = logging.getLogger("devnet.api")

MAX_BODY = 4 * 1024 * 1024  # java-tron's default node.http maxMessageSize
NODE_KEY = web.AppKey("node", Node)


class RawJson(bytes):
    """An answer already serialized (json_response sends it as is)."""


class RenderCache:
    """Serialized JSON of blocks and of their receipts, by block id: a block id fixes the content, so a client
    syncing the chain (block by block or in ranges) does not pay the rendering again. LRU, bounded by size."""

    def __init__(self, limit_bytes: int = 512 * 1024 * 1024) -> None:
        self._items: OrderedDict[tuple[bytes, bool, str], bytes] = OrderedDict()
        self._size = 0
        self._limit = limit_bytes

    def get(self, key: tuple[bytes, bool, str], render: Callable[[], Any]) -> bytes:
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        data = _dumps(render())
        self._items[key] = data
        self._size += len(data)
        while self._size > self._limit and self._items:
            _, old = self._items.popitem(last=False)
            self._size -= len(old)
        return data


RENDER_KEY = web.AppKey("render_cache", RenderCache)
DROP_BROADCAST = "devnet.drop_broadcast"  # request flag set by the fault middleware (control.py)
JSON_CT = "application/json"
CODE_VERSION = "4.8.1"


class JavaError(Exception):
    """Rendered as java-tron's Util.printErrorMsg: {"Error": "class <java class> : <message>"}."""

    def __init__(self, java_class: str, message: str) -> None:
        super().__init__(message)
        self.java_class = java_class
        self.message = message

    def body(self) -> dict[str, str]:
        return {"Error": f"class {self.java_class} : {self.message}"}


def npe() -> JavaError:
    return JavaError("java.lang.NullPointerException", "null")


def bad_param(message: str) -> JavaError:
    return JavaError("java.lang.IllegalArgumentException", message)


class RawError(Exception):
    """An error body java-tron prints without the class prefix (e.g. getReward's "INVALID address")."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.body = body


@dataclass(slots=True)
class Ctx:
    node: Node
    params: dict[str, Any]
    visible: bool
    solid: bool
    request: web.Request


Handler = Callable[[Ctx], Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    fn: Handler
    solidity: bool = False  # also served under /walletsolidity/
    get: bool = True  # GET implemented (triggers/estimate are POST-only: GET answers an empty body)
    query_visible: bool = False  # `visible` only from the query string (getnowblock & co.)


# ---------------------------------------------------------------------------------------------------
# input helpers (java-tron/fastjson coercions: "5" is a number, "true" a boolean)


def _int(ctx: Ctx, key: str, default: int = 0) -> int:
    v = ctx.params.get(key)
    if v is None or v == "":
        return default
    if isinstance(v, bool):
        raise bad_param(f"{key} must be a number")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            pass
    raise JavaError("java.lang.NumberFormatException", f'For input string: "{v}"')


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        return v.strip().lower() == "true"
    if isinstance(v, int | float):
        return v != 0
    return False


def _str(ctx: Ctx, key: str) -> str | None:
    v = ctx.params.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise bad_param(f"{key} must be a string")
    return v


def _hex(s: str, key: str) -> bytes:
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise JavaError(
            "org.bouncycastle.util.encoders.DecoderException",
            f"exception decoding Hex string: invalid {key}",
        ) from None


@overload
def _address(ctx: Ctx, key: str, required: Literal[True]) -> bytes: ...
@overload
def _address(ctx: Ctx, key: str, required: bool = False) -> bytes | None: ...
def _address(ctx: Ctx, key: str, required: bool = False) -> bytes | None:
    """An address field as JsonFormat reads it: base58check when visible, else hex."""
    s = _str(ctx, key)
    if not s:
        if required:
            raise JavaError("java.security.InvalidParameterException", f"{key} isn't set.")
        return None
    if ctx.visible:
        try:
            return crypto.from_base58(s)
        except crypto.AddressError:
            raise npe() from None
    return _hex(s, key)


def _addr_text(addr: bytes, visible: bool) -> str:
    return crypto.to_base58(addr) if visible and len(addr) == 21 else addr.hex()


def _text(message: str, visible: bool) -> str:
    """Return.message / resMessage: UTF-8 text when visible, else hex of it."""
    return message if visible else message.encode().hex()


def _omit_zero(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (0, None, "", [], False)}


# ---------------------------------------------------------------------------------------------------
# blocks


def _block_number(block: Any) -> int:
    return int(block.block_header.raw_data.number)


def _block_json(ctx: Ctx, block: Any, detail: bool = True) -> dict[str, Any]:
    if not detail and len(block.transactions):
        head_only = tron_pb2.Block()
        head_only.block_header.CopyFrom(block.block_header)
        block = head_only
    return codec.block_to_json(block, ctx.visible)


def _maybe_block(ctx: Ctx, block: Any, detail: bool = True) -> dict[str, Any]:
    return {} if block is None else _block_json(ctx, block, detail)


def _block_bytes(ctx: Ctx, block: Any) -> bytes:
    key = (ctx.node.block_id(block), ctx.visible, "block")
    return ctx.request.app[RENDER_KEY].get(key, lambda: codec.block_to_json(block, ctx.visible))


def getnowblock(ctx: Ctx) -> dict[str, Any]:
    block = ctx.node.solid_block() if ctx.solid else ctx.node.head_block()
    return _block_json(ctx, block)


def getblock(ctx: Ctx) -> dict[str, Any]:
    detail = _bool(ctx.params.get("detail", False))
    key = ctx.params.get("id_or_num")
    if key is None or key == "":
        block = ctx.node.solid_block() if ctx.solid else ctx.node.head_block()
        return _block_json(ctx, block, detail)
    s = str(key).strip()
    if len(s) == 64:
        try:
            block_id = bytes.fromhex(s)
        except ValueError:
            raise JavaError("java.lang.IllegalArgumentException", "id must be legal block hash.") from None
        return _maybe_block(ctx, ctx.node.block_by_id(block_id, solid=ctx.solid), detail)
    try:
        num = int(s)
    except ValueError:
        raise JavaError("java.lang.IllegalArgumentException", "id must be legal block hash.") from None
    if num < 0:
        raise JavaError("java.lang.IllegalArgumentException", "num must be non-positive number.")
    return _maybe_block(ctx, ctx.node.block_by_number(num, solid=ctx.solid), detail)


def getblockbynum(ctx: Ctx) -> dict[str, Any] | RawJson:
    num = _int(ctx, "num")
    block = ctx.node.block_by_number(num, solid=ctx.solid) if num >= 0 else None
    return {} if block is None else RawJson(_block_bytes(ctx, block))


def getblockbyid(ctx: Ctx) -> dict[str, Any]:
    value = _str(ctx, "value") or ""
    block_id = _hex(value, "value")
    if len(block_id) != 32:
        return {}
    return _maybe_block(ctx, ctx.node.block_by_id(block_id, solid=ctx.solid))


def _block_list(ctx: Ctx, blocks: list[Any]) -> dict[str, Any] | RawJson:
    if not blocks:
        return {}
    return RawJson(b'{"block":[' + b",".join(_block_bytes(ctx, b) for b in blocks) + b"]}")


def getblockbylimitnext(ctx: Ctx) -> dict[str, Any] | RawJson:
    start, end = _int(ctx, "startNum"), _int(ctx, "endNum")
    if start < 0 or end <= start or end - start > 100:
        return {}
    return _block_list(ctx, ctx.node.blocks_range(start, end, solid=ctx.solid))


def getblockbylatestnum(ctx: Ctx) -> dict[str, Any] | RawJson:
    num = _int(ctx, "num")
    if not 0 < num < 100:
        return {}
    top = ctx.node.solid_number() if ctx.solid else ctx.node.head_number()
    return _block_list(ctx, ctx.node.blocks_range(max(0, top - num + 1), top + 1, solid=ctx.solid))


def gettransactioninfobyblocknum(ctx: Ctx) -> list[dict[str, Any]] | RawJson:
    num = _int(ctx, "num")
    block = ctx.node.block_by_number(num, solid=ctx.solid) if num >= 0 else None
    if block is None:
        return []
    infos = ctx.node.transaction_infos_in_block(num, solid=ctx.solid)
    key = (ctx.node.block_id(block), ctx.visible, "infos")
    render = lambda: [codec.transaction_info_to_json(i, ctx.visible) for i in infos]  # noqa: E731
    return RawJson(ctx.request.app[RENDER_KEY].get(key, render))


def getnodeinfo(ctx: Ctx) -> dict[str, Any]:
    node = ctx.node
    head, solid = node.head_block(), node.solid_block()
    return {
        "beginSyncNum": _block_number(solid),
        "block": f"Num:{_block_number(head)},ID:{node.block_id(head).hex()}",
        "solidityBlock": f"Num:{_block_number(solid)},ID:{node.block_id(solid).hex()}",
        "currentConnectCount": 0,
        "activeConnectCount": 0,
        "passiveConnectCount": 0,
        "totalFlow": 0,
        "peerList": [],
        "configNodeInfo": {
            "codeVersion": CODE_VERSION,
            "p2pVersion": "0",
            "versionName": "devnet",
            "versionNum": "18631",
            "listenPort": 18888,
            "discoverEnable": False,
            "activeNodeSize": 0,
            "passiveNodeSize": 0,
            "sendNodeSize": 0,
            "maxConnectCount": 30,
            "sameIpMaxConnectCount": 2,
            "backupListenPort": 10001,
            "backupMemberSize": 0,
            "backupPriority": 8,
            "dbVersion": 2,
            "minParticipationRate": 0,
            "supportConstant": True,
            "minTimeRatio": 0.0,
            "maxTimeRatio": 5.0,
            "allowCreationOfContracts": 1,
            "allowAdaptiveEnergy": 0,
        },
        "machineInfo": {
            "threadCount": 1,
            "deadLockThreadCount": 0,
            "cpuCount": os.cpu_count() or 1,
            "totalMemory": 0,
            "freeMemory": 0,
            "cpuRate": 0.0,
            "javaVersion": "devnet",
            "osName": os.uname().sysname,
            "jvmTotalMemory": 0,
            "jvmFreeMemory": 0,
            "processCpuRate": 0.0,
            "memoryDescInfoList": [],
            "deadLockThreadInfoList": [],
        },
        "cheatWitnessInfoMap": {},
    }


def getchainparameters(ctx: Ctx) -> dict[str, Any]:
    out = []
    for key, value in ctx.node.chain_parameters():
        out.append({"key": key, "value": value} if value else {"key": key})
    return {"chainParameter": out}


def _prices(ctx: Ctx, name: str) -> dict[str, Any]:
    return {"prices": ctx.node.params.price_history(name)}


def getenergyprices(ctx: Ctx) -> dict[str, Any]:
    return _prices(ctx, "getEnergyFee")


def getbandwidthprices(ctx: Ctx) -> dict[str, Any]:
    return _prices(ctx, "getTransactionFee")


def getmemofee(ctx: Ctx) -> dict[str, Any]:
    return _prices(ctx, "getMemoFee")


def listwitnesses(ctx: Ctx) -> dict[str, Any]:
    return {"witnesses": [codec.message_to_json(w, ctx.visible) for w in ctx.node.witnesses(solid=ctx.solid)]}


def getpaginatednowwitnesslist(ctx: Ctx) -> dict[str, Any]:
    """Witnesses by current vote count, highest first, sliced by offset/limit (limit <= 1000)."""
    offset, limit = _int(ctx, "offset"), _int(ctx, "limit")
    if offset < 0 or not 0 < limit <= 1000:
        return {}
    ranked = sorted(ctx.node.witnesses(solid=ctx.solid), key=lambda w: -w.voteCount)[offset : offset + limit]
    return {"witnesses": [codec.message_to_json(w, ctx.visible) for w in ranked]} if ranked else {}


def getnextmaintenancetime(ctx: Ctx) -> dict[str, Any]:
    return {"num": ctx.node.next_maintenance_time()}


# ---------------------------------------------------------------------------------------------------
# accounts & resources


def getaccount(ctx: Ctx) -> dict[str, Any]:
    addr = _address(ctx, "address")
    if addr is None:
        return {}
    acc = ctx.node.account(addr, solid=ctx.solid)
    return {} if acc is None else codec.message_to_json(acc, ctx.visible)


def getaccountresource(ctx: Ctx) -> dict[str, Any]:
    addr = _address(ctx, "address")
    res = None if addr is None else ctx.node.account_resource(addr, solid=ctx.solid)
    return res or {}


def getaccountnet(ctx: Ctx) -> dict[str, Any]:
    addr = _address(ctx, "address")
    res = None if addr is None else ctx.node.account_net(addr, solid=ctx.solid)
    return res or {}


def validateaddress(ctx: Ctx) -> dict[str, Any]:
    s = ctx.params.get("address")
    if not isinstance(s, str):
        return {"result": False, "message": "Length error"}
    try:
        if len(s) == 42:
            crypto.from_hex(s)
            return {"result": True, "message": "Hex string format"}
        if len(s) == 34:
            crypto.from_base58(s)
            return {"result": True, "message": "Base58check format"}
        if len(s) == 28:
            raw = base64.b64decode(s, validate=True)
            if crypto.is_address(raw):
                return {"result": True, "message": "Base64 format"}
            return {"result": False, "message": "Invalid address"}
    except (crypto.AddressError, ValueError):
        return {"result": False, "message": "Invalid address"}
    return {"result": False, "message": "Length error"}


def _prefix_address(ctx: Ctx) -> bytes | None:
    """getReward/getBrokerage: '41…' is hex, anything else base58, whatever `visible` says."""
    s = ctx.params.get("address")
    if s is None or s == "":
        return None
    if not isinstance(s, str):
        raise RawError({"Error": "INVALID address, address must be a string"})
    try:
        return crypto.from_hex(s) if s.startswith("41") else crypto.from_base58(s)
    except crypto.AddressError as exc:
        raise RawError({"Error": f"INVALID address, {exc}"}) from None


def getreward(ctx: Ctx) -> dict[str, Any]:
    addr = _prefix_address(ctx)
    return {"reward": 0 if addr is None else ctx.node.reward(addr, solid=ctx.solid)}


def getbrokerage(ctx: Ctx) -> dict[str, Any]:
    addr = _prefix_address(ctx)
    return {"brokerage": 0 if addr is None else ctx.node.brokerage(addr)}


def getdelegatedresourcev2(ctx: Ctx) -> dict[str, Any]:
    src, dst = _address(ctx, "fromAddress"), _address(ctx, "toAddress")
    if src is None or dst is None:
        return {}
    out = []
    for entry in ctx.node.delegated_resource(src, dst, solid=ctx.solid):
        item = {k: (_addr_text(v, ctx.visible) if k in ("from", "to") else v) for k, v in entry.items()}
        out.append(_omit_zero(item))
    return {"delegatedResource": out} if out else {}


def getdelegatedresourceaccountindexv2(ctx: Ctx) -> dict[str, Any]:
    addr = _address(ctx, "value")
    if addr is None:
        return {}
    froms, tos = ctx.node.delegated_resource_index(addr, solid=ctx.solid)
    if not froms and not tos:
        return {}
    out: dict[str, Any] = {"account": _addr_text(addr, ctx.visible)}
    if froms:
        out["fromAccounts"] = [_addr_text(a, ctx.visible) for a in froms]
    if tos:
        out["toAccounts"] = [_addr_text(a, ctx.visible) for a in tos]
    return out


def getcandelegatedmaxsize(ctx: Ctx) -> dict[str, Any]:
    addr = _address(ctx, "owner_address")
    resource = _resource(ctx.params.get("type", 0))
    size = 0 if addr is None else ctx.node.can_delegate_max(addr, resource, solid=ctx.solid)
    return _omit_zero({"max_size": size})


def _resource(v: Any) -> int:
    names = {"BANDWIDTH": 0, "ENERGY": 1, "TRON_POWER": 2}
    if isinstance(v, str) and v.upper() in names:
        return names[v.upper()]
    try:
        return int(v)
    except (TypeError, ValueError):
        raise bad_param(f"Invalid resource type: {v}") from None


def getavailableunfreezecount(ctx: Ctx) -> dict[str, Any]:
    addr = _address(ctx, "owner_address")
    count = 0 if addr is None else ctx.node.available_unfreeze_count(addr, solid=ctx.solid)
    return _omit_zero({"count": count})


def getcanwithdrawunfreezeamount(ctx: Ctx) -> dict[str, Any]:
    addr = _address(ctx, "owner_address")
    ts = _int(ctx, "timestamp", int(time.time() * 1000))
    amount = 0 if addr is None else ctx.node.can_withdraw_unfreeze_amount(addr, ts, solid=ctx.solid)
    return _omit_zero({"amount": amount})


# ---------------------------------------------------------------------------------------------------
# transactions


def _tx_from_body(ctx: Ctx) -> Any:
    if not ctx.params:
        raise npe()
    try:
        return codec.transaction_from_json(ctx.params, ctx.visible)
    except codec.CodecError as exc:
        raise _codec_error(exc) from None


def _codec_error(exc: Exception) -> JavaError:
    msg = str(exc)
    if msg.startswith("class "):
        cls, _, rest = msg[6:].partition(" : ")
        return JavaError(cls, rest)
    return JavaError("org.tron.core.services.http.JsonFormat$ParseException", msg)


def broadcasttransaction(ctx: Ctx) -> dict[str, Any]:
    tx = _tx_from_body(ctx)
    if ctx.request.get(DROP_BROADCAST):
        # fault injection: the node "accepts" the tx but it never reaches the pool
        return {"result": True, "txid": codec.tx_id(tx).hex()}
    res = ctx.node.broadcast(tx)
    if res.ok:
        return {"result": True, "txid": res.txid.hex()}
    return {"code": res.code, "txid": res.txid.hex(), "message": _text(res.message, ctx.visible)}


def broadcasthex(ctx: Ctx) -> dict[str, Any]:
    raw = _str(ctx, "transaction")
    if raw is None:
        raise npe()
    try:
        tx = tron_pb2.Transaction.FromString(_hex(raw, "transaction"))
    except JavaError:
        raise
    except Exception as exc:  # protobuf DecodeError
        raise JavaError("com.google.protobuf.InvalidProtocolBufferException", str(exc)) from None
    txid = codec.tx_id(tx).hex()
    if ctx.request.get(DROP_BROADCAST):
        code, message, ok = "SUCCESS", "", True
    else:
        res = ctx.node.broadcast(tx)
        code, message, ok, txid = res.code, res.message, res.ok, res.txid.hex()
    return {
        "result": ok,
        "code": code,
        "message": message,
        # JsonFormat.printToString(transaction, true): the generic protobuf print, not printTransactionToJSON
        # (no txID / raw_data_hex; contract parameters stay packed: {"type_url", "value": hex})
        "transaction": json.dumps(codec.message_to_json(tx, True), separators=(",", ":")),
        "txid": txid,
    }


def _tx_ext(ctx: Ctx, tx: Any, txid: bytes) -> dict[str, Any]:
    return {
        "result": {"result": True},
        "txid": txid.hex(),
        "transaction": codec.transaction_to_json(tx, ctx.visible, include_visible=False),
    }


def _sign_check(ctx: Ctx, tx: Any, r: dict[str, Any], ok_code: str, out: dict[str, Any]) -> dict[str, Any]:
    """getsignweight / getapprovedlist tail: `result` (code only when not ok_code) and the transaction."""
    result: dict[str, Any] = {}
    if r["code"] != ok_code:
        result["code"] = r["code"]
    if r["message"]:
        result["message"] = r["message"]
    out["result"] = result
    out["transaction"] = _tx_ext(ctx, tx, r["txid"])
    return out


def getsignweight(ctx: Ctx) -> dict[str, Any]:
    tx = _tx_from_body(ctx)
    w = ctx.node.sign_weight(tx)
    out: dict[str, Any] = {}
    if w["permission"] is not None:
        out["permission"] = codec.message_to_json(w["permission"], ctx.visible)
    if w["approved_list"]:
        out["approved_list"] = [_addr_text(a, ctx.visible) for a in w["approved_list"]]
    if w["current_weight"]:
        out["current_weight"] = w["current_weight"]
    return _sign_check(ctx, tx, w, "ENOUGH_PERMISSION", out)


def getapprovedlist(ctx: Ctx) -> dict[str, Any]:
    tx = _tx_from_body(ctx)
    r = ctx.node.approved_list(tx)
    out: dict[str, Any] = {}
    if r["approved_list"]:
        out["approved_list"] = [_addr_text(a, ctx.visible) for a in r["approved_list"]]
    return _sign_check(ctx, tx, r, "SUCCESS", out)


def _txid_param(ctx: Ctx) -> bytes | None:
    value = _str(ctx, "value") or ""
    txid = _hex(value, "value")
    return txid if len(txid) == 32 else None


def gettransactionbyid(ctx: Ctx) -> dict[str, Any]:
    txid = _txid_param(ctx)
    tx = None if txid is None else ctx.node.transaction(txid, solid=ctx.solid)
    return {} if tx is None else codec.transaction_to_json(tx, ctx.visible, include_visible=False)


def gettransactioninfobyid(ctx: Ctx) -> dict[str, Any]:
    txid = _txid_param(ctx)
    info = None if txid is None else ctx.node.transaction_info(txid, solid=ctx.solid)
    return {} if info is None else codec.transaction_info_to_json(info, ctx.visible)


# ---------------------------------------------------------------------------------------------------
# node-side builders (unsigned transactions referencing the solid block, as java-tron does)


def _new_tx(ctx: Ctx, type_name: str, msg: Any, fee_limit: int = 0) -> Any:
    node = ctx.node
    ref = node.reference_block(solid=True)
    ref_id = node.block_id(ref)
    tx = tron_pb2.Transaction()
    raw = tx.raw_data
    raw.ref_block_bytes = ref_id[6:8]
    raw.ref_block_hash = ref_id[8:16]
    raw.expiration = int(node.head_block().block_header.raw_data.timestamp) + 60_000
    raw.timestamp = int(time.time() * 1000)
    permission_id = _int(ctx, "Permission_id")
    raw.contract.append(codec.pack_contract(type_name, msg, permission_id))
    if fee_limit:
        raw.fee_limit = fee_limit
    return tx


def _created(ctx: Ctx, tx: Any) -> dict[str, Any]:
    return codec.transaction_to_json(tx, ctx.visible)


def _contract_error(exc: ContractValidateError) -> JavaError:
    return JavaError("org.tron.core.exception.ContractValidateException", exc.message)


def _builder(type_name: str, cls: Any) -> Handler:
    def build(ctx: Ctx) -> dict[str, Any]:
        body = {k: v for k, v in ctx.params.items() if k not in ("visible", "Permission_id", "extra_data")}
        try:
            msg = codec.message_from_json(body, cls, ctx.visible)
        except codec.CodecError as exc:
            raise _codec_error(exc) from None
        try:
            ctx.node.validate_contract(type_name, msg)
        except ContractValidateError as exc:
            raise _contract_error(exc) from None
        tx = _new_tx(ctx, type_name, msg)
        extra = _str(ctx, "extra_data")
        if extra:
            tx.raw_data.data = extra.encode() if ctx.visible else _hex(extra, "extra_data")
        return _created(ctx, tx)

    return build


def createtransaction(ctx: Ctx) -> dict[str, Any]:
    return _builder("TransferContract", contract_pb2.TransferContract)(ctx)


def deploycontract(ctx: Ctx) -> dict[str, Any]:
    owner = _address(ctx, "owner_address", required=True)
    abi = ctx.params.get("abi") or []
    if isinstance(abi, str):
        try:
            abi = json.loads(abi)
        except ValueError:
            raise JavaError("com.alibaba.fastjson.JSONException", "abi is not valid JSON") from None
    bytecode = _hex(_str(ctx, "bytecode") or "", "bytecode") + _hex(_str(ctx, "parameter") or "", "parameter")
    new = {
        "origin_address": ctx.params.get("owner_address"),
        "abi": {"entrys": abi if isinstance(abi, list) else abi.get("entrys", [])},
        "bytecode": bytecode.hex(),
        "call_value": _int(ctx, "call_value"),
        "consume_user_resource_percent": _int(ctx, "consume_user_resource_percent"),
        "origin_energy_limit": _int(ctx, "origin_energy_limit"),
    }
    if ctx.params.get("name"):
        new["name"] = ctx.params["name"]
    body = {
        "owner_address": ctx.params.get("owner_address"),
        "new_contract": new,
        "call_token_value": _int(ctx, "call_token_value"),
        "token_id": _int(ctx, "token_id"),
    }
    try:
        msg = codec.message_from_json(body, contract_pb2.CreateSmartContract, ctx.visible)
    except codec.CodecError as exc:
        raise _codec_error(exc) from None
    tx = _new_tx(ctx, "CreateSmartContract", msg, _int(ctx, "fee_limit"))
    out = _created(ctx, tx)
    out.setdefault("contract_address", "41" + crypto.keccak256(codec.tx_id(tx) + owner)[12:].hex())
    return out


BUILDERS: dict[str, tuple[str, Any]] = {
    "freezebalancev2": ("FreezeBalanceV2Contract", contract_pb2.FreezeBalanceV2Contract),
    "unfreezebalancev2": ("UnfreezeBalanceV2Contract", contract_pb2.UnfreezeBalanceV2Contract),
    "withdrawexpireunfreeze": ("WithdrawExpireUnfreezeContract", contract_pb2.WithdrawExpireUnfreezeContract),
    "cancelallunfreezev2": ("CancelAllUnfreezeV2Contract", contract_pb2.CancelAllUnfreezeV2Contract),
    "delegateresource": ("DelegateResourceContract", contract_pb2.DelegateResourceContract),
    "undelegateresource": ("UnDelegateResourceContract", contract_pb2.UnDelegateResourceContract),
    "votewitnessaccount": ("VoteWitnessContract", contract_pb2.VoteWitnessContract),
    "withdrawbalance": ("WithdrawBalanceContract", contract_pb2.WithdrawBalanceContract),
    "accountpermissionupdate": (
        "AccountPermissionUpdateContract",
        contract_pb2.AccountPermissionUpdateContract,
    ),
    "createaccount": ("AccountCreateContract", contract_pb2.AccountCreateContract),
}


# ---------------------------------------------------------------------------------------------------
# smart contracts


def _call_data(ctx: Ctx) -> bytes:
    """data = keccak(function_selector)[:4] ‖ parameter, or the raw `data` field without a selector."""
    selector = _str(ctx, "function_selector")
    if selector:
        return crypto.keccak256(selector.encode())[:4] + _hex(_str(ctx, "parameter") or "", "parameter")
    return _hex(_str(ctx, "data") or "", "data")


def _trigger_msg(ctx: Ctx, owner: bytes, contract: bytes | None, data: bytes) -> Any:
    msg = contract_pb2.TriggerSmartContract(owner_address=owner, data=data)
    if contract:
        msg.contract_address = contract
    msg.call_value = _int(ctx, "call_value")
    msg.call_token_value = _int(ctx, "call_token_value")
    msg.token_id = _int(ctx, "token_id")
    return msg


def _ret_error(code: str, message: str, visible: bool) -> dict[str, Any]:
    return {"result": {"code": code, "message": _text(message, visible)}}


def _other_error(exc: JavaError, visible: bool) -> dict[str, Any]:
    return _ret_error("OTHER_ERROR", f"class {exc.java_class} : {exc.message}".replace('"', "'"), visible)


def _constant(ctx: Ctx, owner: bytes, contract: bytes | None, data: bytes, tx: Any) -> dict[str, Any]:
    fee_limit = _int(ctx, "fee_limit")
    res = ctx.node.trigger_constant(
        owner, contract, data, call_value=_int(ctx, "call_value"), fee_limit=fee_limit, solid=ctx.solid
    )
    result: dict[str, Any] = {"result": True}
    failed = res.result != "SUCCESS"
    if failed:
        result["message"] = _text(res.message or f"{res.result}", ctx.visible)
    out: dict[str, Any] = {"result": result}
    if res.energy_used:
        out["energy_used"] = res.energy_used
    if res.energy_penalty:
        out["energy_penalty"] = res.energy_penalty
    out["constant_result"] = [res.return_data.hex()]
    if res.logs:
        out["logs"] = [
            _omit_zero(
                {"address": lg.address.hex(), "topics": [t.hex() for t in lg.topics], "data": lg.data.hex()}
            )
            for lg in res.logs
        ]
    txj = codec.transaction_to_json(tx, ctx.visible)
    txj["ret"] = [{"ret": "FAILED"}] if failed else [{}]
    out["transaction"] = txj
    return out


def triggersmartcontract(ctx: Ctx) -> dict[str, Any]:
    try:
        owner = _address(ctx, "owner_address", required=True)
        contract = _address(ctx, "contract_address", required=True)
        if not _str(ctx, "function_selector") and not _str(ctx, "data"):
            raise JavaError("java.security.InvalidParameterException", "function_selector isn't set.")
        data = _call_data(ctx)
        msg = _trigger_msg(ctx, owner, contract, data)
        sc = ctx.node.contract(contract)
        if sc is None:
            return _ret_error(
                "CONTRACT_VALIDATE_ERROR", "No contract or not a valid smart contract", ctx.visible
            )
        tx = _new_tx(ctx, "TriggerSmartContract", msg, _int(ctx, "fee_limit"))
        if _is_constant(sc, data):
            return _constant(ctx, owner, contract, data, tx)
    except JavaError as exc:
        return _other_error(exc, ctx.visible)
    except ContractValidateError as exc:
        return _ret_error("CONTRACT_VALIDATE_ERROR", exc.message, ctx.visible)
    return {"result": {"result": True}, "transaction": codec.transaction_to_json(tx, ctx.visible)}


def _is_constant(sc: Any, data: bytes) -> bool:
    """java-tron runs a trigger as a constant call when the ABI marks the selector view/pure."""
    if len(data) < 4:
        return False
    for entry in sc.abi.entrys:
        if entry.type != 2:  # Function
            continue
        sig = f"{entry.name}({','.join(p.type for p in entry.inputs)})"
        if crypto.keccak256(sig.encode())[:4] == data[:4]:
            return entry.constant or entry.stateMutability in (1, 2)  # Pure, View
    return False


def _validate_call_params(ctx: Ctx) -> None:
    """Util.validateParameter for triggerconstantcontract / estimateenergy."""
    if not _str(ctx, "owner_address"):
        raise JavaError("java.security.InvalidParameterException", "owner_address isn't set.")
    if not _str(ctx, "contract_address") and not _str(ctx, "data"):
        raise JavaError(
            "java.security.InvalidParameterException",
            "At least one of contract_address and data must be set.",
        )
    if not _str(ctx, "contract_address") and _str(ctx, "function_selector") and _str(ctx, "data"):
        raise JavaError(
            "java.security.InvalidParameterException",
            "While trying to deploy, function_selector and data can not be both set.",
        )


def triggerconstantcontract(ctx: Ctx) -> dict[str, Any]:
    try:
        _validate_call_params(ctx)
        owner = _address(ctx, "owner_address", required=True)
        contract = _address(ctx, "contract_address")
        data = _call_data(ctx)
        tx = _new_tx(
            ctx, "TriggerSmartContract", _trigger_msg(ctx, owner, contract, data), _int(ctx, "fee_limit")
        )
        return _constant(ctx, owner, contract, data, tx)
    except JavaError as exc:
        return _other_error(exc, ctx.visible)
    except ContractValidateError as exc:
        return _ret_error("CONTRACT_VALIDATE_ERROR", exc.message, ctx.visible)


def estimateenergy(ctx: Ctx) -> dict[str, Any]:
    try:
        _validate_call_params(ctx)
        owner = _address(ctx, "owner_address", required=True)
        contract = _address(ctx, "contract_address")
        data = _call_data(ctx)
        energy = ctx.node.estimate_energy(
            owner, contract, data, call_value=_int(ctx, "call_value"), solid=ctx.solid
        )
    except JavaError as exc:
        return _other_error(exc, ctx.visible)
    except ContractValidateError as exc:
        return _ret_error("CONTRACT_VALIDATE_ERROR", exc.message, ctx.visible)
    except ContractExeError as exc:
        return _ret_error("CONTRACT_EXE_ERROR", exc.message, ctx.visible)
    return {"result": {"result": True}, "energy_required": energy}


def getcontract(ctx: Ctx) -> dict[str, Any]:
    addr = _address(ctx, "value")
    sc = None if addr is None else ctx.node.contract(addr, solid=ctx.solid)
    return {} if sc is None else codec.message_to_json(sc, ctx.visible)


def getcontractinfo(ctx: Ctx) -> dict[str, Any]:
    addr = _address(ctx, "value")
    info = None if addr is None else ctx.node.contract_info(addr, solid=ctx.solid)
    if info is None:
        return {}
    state = _omit_zero(dict(info.get("contract_state") or {}))
    return {
        "smart_contract": codec.message_to_json(info["smart_contract"], ctx.visible),
        "runtimecode": bytes(info.get("runtimecode") or b"").hex(),
        "contract_state": state,
    }


# ---------------------------------------------------------------------------------------------------
# routing

ENDPOINTS: dict[str, Endpoint] = {
    "getnodeinfo": Endpoint(getnodeinfo, solidity=True, query_visible=True),
    "getnowblock": Endpoint(getnowblock, solidity=True, query_visible=True),
    "getblock": Endpoint(getblock, solidity=True),
    "getblockbynum": Endpoint(getblockbynum, solidity=True),
    "getblockbyid": Endpoint(getblockbyid, solidity=True),
    "getblockbylimitnext": Endpoint(getblockbylimitnext, solidity=True),
    "getblockbylatestnum": Endpoint(getblockbylatestnum, solidity=True),
    "gettransactioninfobyblocknum": Endpoint(gettransactioninfobyblocknum, solidity=True),
    "getchainparameters": Endpoint(getchainparameters, query_visible=True),
    "listwitnesses": Endpoint(listwitnesses, solidity=True, query_visible=True),
    "getnextmaintenancetime": Endpoint(getnextmaintenancetime),
    "getpaginatednowwitnesslist": Endpoint(getpaginatednowwitnesslist, solidity=True),
    "getenergyprices": Endpoint(getenergyprices, solidity=True),
    "getbandwidthprices": Endpoint(getbandwidthprices, solidity=True),
    "getmemofee": Endpoint(getmemofee),
    "getaccount": Endpoint(getaccount, solidity=True),
    "getaccountresource": Endpoint(getaccountresource),
    "getaccountnet": Endpoint(getaccountnet),
    "validateaddress": Endpoint(validateaddress),
    "getReward": Endpoint(getreward, solidity=True),
    "getBrokerage": Endpoint(getbrokerage, solidity=True),
    "getdelegatedresourcev2": Endpoint(getdelegatedresourcev2, solidity=True),
    "getdelegatedresourceaccountindexv2": Endpoint(getdelegatedresourceaccountindexv2, solidity=True),
    "getcandelegatedmaxsize": Endpoint(getcandelegatedmaxsize, solidity=True),
    "getavailableunfreezecount": Endpoint(getavailableunfreezecount, solidity=True),
    "getcanwithdrawunfreezeamount": Endpoint(getcanwithdrawunfreezeamount, solidity=True),
    "broadcasttransaction": Endpoint(broadcasttransaction, get=False),
    "broadcasthex": Endpoint(broadcasthex, get=False),
    "getsignweight": Endpoint(getsignweight, get=False),
    "getapprovedlist": Endpoint(getapprovedlist, get=False),
    "gettransactionbyid": Endpoint(gettransactionbyid, solidity=True),
    "gettransactioninfobyid": Endpoint(gettransactioninfobyid, solidity=True),
    "createtransaction": Endpoint(createtransaction, get=False),
    "deploycontract": Endpoint(deploycontract, get=False),
    "triggersmartcontract": Endpoint(triggersmartcontract, get=False),
    "triggerconstantcontract": Endpoint(triggerconstantcontract, solidity=True, get=False),
    "estimateenergy": Endpoint(estimateenergy, solidity=True, get=False),
    "getcontract": Endpoint(getcontract),
    "getcontractinfo": Endpoint(getcontractinfo),
}
for _name, (_type, _cls) in BUILDERS.items():
    ENDPOINTS[_name] = Endpoint(_builder(_type, _cls), get=False)


def _empty(ctx: Ctx) -> dict[str, Any]:
    """The devnet has no peers, TRC10 assets, proposals or exchanges: java-tron prints an empty list as {}."""
    return {}


for _name in (
    "listnodes",
    "getassetissuelist",
    "getpaginatedassetissuelist",
    "getassetissuebyaccount",
    "getassetissuebyid",
    "getassetissuebyname",
    "getassetissuelistbyname",
    "listproposals",
    "getpaginatedproposallist",
    "getproposalbyid",
    "listexchanges",
    "getpaginatedexchangelist",
    "getexchangebyid",
    "getaccountbyid",  # SetAccountIdContract is not supported
):
    ENDPOINTS[_name] = Endpoint(_empty, solidity=_name != "listnodes")


def gettransactioncountbyblocknum(ctx: Ctx) -> dict[str, Any]:
    block = ctx.node.block_by_number(_int(ctx, "num"), solid=ctx.solid)
    return {} if block is None else {"count": len(block.transactions)}


ENDPOINTS["gettransactioncountbyblocknum"] = Endpoint(gettransactioncountbyblocknum, solidity=True)


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """Read at most `limit` bytes; a larger body is refused the way java-tron's checkBodySize does."""
    if request.content_length is not None and request.content_length > limit:
        raise JavaError("java.lang.Exception", f"body size is too big, the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise JavaError("java.lang.Exception", f"body size is too big, the limit is {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """fastjson JSON.parseObject: empty → {}, anything but an object is an error."""
    if not body.strip():
        return {}
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        pos = getattr(exc, "pos", 0)
        raise JavaError("com.alibaba.fastjson.JSONException", f"syntax error, pos {pos}") from None
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise JavaError("java.lang.ClassCastException", f"{type(obj).__name__} cannot be cast to JSONObject")
    return obj


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(obj: Any) -> web.Response:
    body = (obj if isinstance(obj, RawJson) else _dumps(obj)) + b"\n"
    return web.Response(body=body, content_type=JSON_CT, charset="utf-8")


async def _dispatch(request: web.Request, solid: bool) -> web.Response:
    name = request.match_info["name"]
    ep = ENDPOINTS.get(name)
    if ep is None or (solid and not ep.solidity):
        return web.Response(status=404, text=f"Not Found: {request.path}")
    try:
        if request.method == "GET":
            if not ep.get:
                return web.Response(body=b"", content_type=JSON_CT, charset="utf-8")
            params: dict[str, Any] = dict(request.query)
            visible = _bool(params.get("visible", False))
        elif request.method == "POST":
            params = parse_json_object(await read_body(request))
            visible = _bool(params.get("visible", False))
            if ep.query_visible:
                visible = _bool(request.query.get("visible", False))
        else:
            return web.Response(status=405, text="Method Not Allowed")
        ctx = Ctx(request.app[NODE_KEY], params, visible, solid, request)
        return json_response(ep.fn(ctx))
    except JavaError as exc:
        return json_response(exc.body())
    except RawError as exc:
        return json_response(exc.body)
    except ContractValidateError as exc:
        return json_response(_contract_error(exc).body())
    except codec.CodecError as exc:
        return json_response(_codec_error(exc).body())
    except Exception as exc:  # never a traceback on the wire; the server keeps serving
        log.exception("unexpected error in %s", request.path)
        return json_response({"Error": f"class java.lang.Exception : {type(exc).__name__}: {exc}"})


async def wallet(request: web.Request) -> web.Response:
    return await _dispatch(request, False)


async def wallet_solidity(request: web.Request) -> web.Response:
    return await _dispatch(request, True)


def add_routes(app: web.Application, node: Node) -> None:
    app[NODE_KEY] = node
    app[RENDER_KEY] = RenderCache()
    app.router.add_route("*", "/wallet/{name}", wallet)
    app.router.add_route("*", "/walletsolidity/{name}", wallet_solidity)
