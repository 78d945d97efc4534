"""The one canonical java-tron JSON <-> protobuf codec (JsonFormat + Util.packTransaction semantics).

Output (java-tron `JsonFormat.printToString(msg, visible)`): only non-default fields; bytes as lowercase hex,
except address fields (base58check) and name fields (UTF-8) when visible=true; int64 as JSON numbers;
enums by name; maps as [{"key", "value"}] lists.
Input (`JsonFormat.merge`): unknown and null keys skipped; bytes hex (visible=false) or base58/UTF-8 for
address/name fields (visible=true); enums by name or number, an all-lower-case name gets its first letter
upper-cased; ints must be JSON integers.
The txID is always computed from our own re-encoding of raw_data, never from client-sent txID/raw_data_hex.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from google.protobuf import any_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from devnet import crypto
from devnet.pb import contract_pb2, tron_pb2

Transaction = tron_pb2.Transaction
ContractType = tron_pb2.Transaction.Contract.ContractType
M = TypeVar("M", bound=Message)

TYPE_URL_PREFIX = "type.googleapis.com/protocol."
# Our .proto package is not java-tron's `protocol`, so tronpy's own generated `protocol.*` modules can be
# loaded in the same process. The package never reaches the wire: type_url is TYPE_URL_PREFIX + message name.
PROTO_PREFIX = tron_pb2.DESCRIPTOR.package + "."
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class CodecError(ValueError):
    """Bad JSON or protobuf input; str(err) is a java-tron style message."""


class ContractParseError(CodecError):
    """A raw_data.contract entry could not be parsed (unknown type, bad value).

    java-tron's packTransaction silently drops such a contract, so broadcasting it ends in
    CONTRACT_VALIDATE_ERROR "No contract!"; callers that want that fidelity catch this subclass.
    """


# java-tron HttpSelfFormatFieldName.AddressFieldNameMap (full names): base58 when visible=true.
ADDRESS_FIELDS: frozenset[str] = frozenset(
    PROTO_PREFIX + n
    for n in """
    DelegatedResourceMessage.fromAddress DelegatedResourceMessage.toAddress
    TransactionSignWeight.approved_list TransactionApprovedList.approved_list
    AccountCreateContract.owner_address AccountCreateContract.account_address
    AccountUpdateContract.owner_address SetAccountIdContract.owner_address
    TransferContract.owner_address TransferContract.to_address
    TransferAssetContract.owner_address TransferAssetContract.to_address
    VoteAssetContract.owner_address VoteAssetContract.vote_address
    VoteWitnessContract.Vote.vote_address VoteWitnessContract.owner_address
    UpdateSettingContract.owner_address UpdateSettingContract.contract_address
    UpdateEnergyLimitContract.owner_address UpdateEnergyLimitContract.contract_address
    ClearABIContract.owner_address ClearABIContract.contract_address
    WitnessCreateContract.owner_address WitnessUpdateContract.owner_address
    AssetIssueContract.owner_address
    ParticipateAssetIssueContract.owner_address ParticipateAssetIssueContract.to_address
    FreezeBalanceContract.owner_address FreezeBalanceContract.receiver_address
    UnfreezeBalanceContract.owner_address UnfreezeBalanceContract.receiver_address
    UnfreezeAssetContract.owner_address WithdrawBalanceContract.owner_address
    UpdateAssetContract.owner_address ProposalCreateContract.owner_address
    ProposalApproveContract.owner_address ProposalDeleteContract.owner_address
    CreateSmartContract.owner_address
    TriggerSmartContract.owner_address TriggerSmartContract.contract_address
    ExchangeCreateContract.owner_address ExchangeInjectContract.owner_address
    ExchangeWithdrawContract.owner_address ExchangeTransactionContract.owner_address
    AccountPermissionUpdateContract.owner_address UpdateBrokerageContract.owner_address
    FreezeBalanceV2Contract.owner_address UnfreezeBalanceV2Contract.owner_address
    WithdrawExpireUnfreezeContract.owner_address
    DelegateResourceContract.owner_address DelegateResourceContract.receiver_address
    UnDelegateResourceContract.owner_address UnDelegateResourceContract.receiver_address
    CancelAllUnfreezeV2Contract.owner_address
    CanDelegatedMaxSizeRequestMessage.owner_address GetAvailableUnfreezeCountRequestMessage.owner_address
    CanWithdrawUnfreezeAmountRequestMessage.owner_address
    AccountId.address Vote.vote_address Proposal.proposer_address Proposal.approvals
    Exchange.creator_address Account.address Key.address DelegatedResource.from DelegatedResource.to
    Witness.address Votes.address TransactionInfo.Log.address TransactionInfo.contract_address
    BlockHeader.raw.witness_address SmartContract.origin_address SmartContract.contract_address
    InternalTransaction.caller_address InternalTransaction.transferTo_address
    DelegatedResourceAccountIndex.account DelegatedResourceAccountIndex.fromAccounts
    DelegatedResourceAccountIndex.toAccounts AccountIdentifier.address
    TransactionBalanceTrace.Operation.address
    MarketSellAssetContract.owner_address MarketCancelOrderContract.owner_address MarketOrder.owner_address
    """.split()
)

# java-tron HttpSelfFormatFieldName.NameFieldNameMap: UTF-8 text when visible=true.
NAME_FIELDS: frozenset[str] = frozenset(
    PROTO_PREFIX + n
    for n in """
    Return.message Address.host Note.memo AccountUpdateContract.account_name SetAccountIdContract.account_id
    TransferAssetContract.asset_name WitnessCreateContract.url WitnessUpdateContract.update_url
    AssetIssueContract.name AssetIssueContract.abbr AssetIssueContract.description AssetIssueContract.url
    ParticipateAssetIssueContract.asset_name UpdateAssetContract.description UpdateAssetContract.url
    ExchangeCreateContract.first_token_id ExchangeCreateContract.second_token_id
    ExchangeInjectContract.token_id ExchangeWithdrawContract.token_id ExchangeTransactionContract.token_id
    AccountId.name Exchange.first_token_id Exchange.second_token_id Account.account_name
    Account.asset_issued_name Account.asset_issued_ID Account.account_id authority.permission_name
    TransactionInfo.resMessage MarketSellAssetContract.sell_token_id MarketSellAssetContract.buy_token_id
    MarketOrder.sell_token_id MarketOrder.buy_token_id MarketOrderPair.sell_token_id
    MarketOrderPair.buy_token_id MarketPriceList.sell_token_id MarketPriceList.buy_token_id
    """.split()
)


def _contract_classes() -> dict[str, type[Message]]:
    """ContractType name -> message class, for every type whose message devnet.pb declares."""
    out: dict[str, type[Message]] = {}
    for name in ContractType.DESCRIPTOR.values_by_name:
        cls = getattr(contract_pb2, name, None)
        if isinstance(cls, type) and issubclass(cls, Message):
            out[name] = cls
    return out


CONTRACT_CLASSES: dict[str, type[Message]] = _contract_classes()


def type_url_for(type_name: str) -> str:
    return TYPE_URL_PREFIX + CONTRACT_CLASSES[type_name].DESCRIPTOR.name


# ---------------------------------------------------------------------------------------------- output


def _enum_type(fd: FieldDescriptor) -> EnumDescriptor:
    et = fd.enum_type
    if et is None:
        raise TypeError(f"{fd.full_name} is not an enum field")
    return et


def _message_type(fd: FieldDescriptor) -> Descriptor:
    mt = fd.message_type
    if mt is None:
        raise TypeError(f"{fd.full_name} is not a message field")
    return mt


def _is_repeated(fd: FieldDescriptor) -> bool:
    return bool(fd.label == FieldDescriptor.LABEL_REPEATED)  # type: ignore[attr-defined]


def _bytes_out(full_name: str, value: bytes, visible: bool) -> str:
    if visible and full_name in ADDRESS_FIELDS:
        return crypto.to_base58(value)
    if visible and full_name in NAME_FIELDS:
        return value.decode("utf-8", errors="replace")
    return value.hex()


def _scalar_out(fd: FieldDescriptor, value: Any, visible: bool) -> Any:
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return _bytes_out(fd.full_name, value, visible)
    if fd.type == FieldDescriptor.TYPE_ENUM:
        ev = _enum_type(fd).values_by_number.get(value)
        return ev.name if ev is not None else value
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return message_to_json(value, visible)
    return value


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.type == FieldDescriptor.TYPE_MESSAGE and bool(_message_type(fd).GetOptions().map_entry)


def message_to_json(msg: Message, visible: bool) -> dict[str, Any]:
    """JSON dict of any devnet.pb message as java-tron prints it (defaults omitted, key = proto name)."""
    if isinstance(msg, any_pb2.Any):
        return {"type_url": msg.type_url, "value": msg.value.hex()} if msg.ByteSize() else {}
    out: dict[str, Any] = {}
    for fd, value in msg.ListFields():  # ListFields: set fields only, in field-number order
        if _is_map(fd):
            vfd = _message_type(fd).fields_by_name["value"]
            entries = []
            for k in sorted(value):
                entry: dict[str, Any] = {"key": k}
                v = value[k]
                if v:
                    entry["value"] = _scalar_out(vfd, v, visible)
                entries.append(entry)
            out[fd.name] = entries
        elif _is_repeated(fd):
            out[fd.name] = [_scalar_out(fd, v, visible) for v in value]
        else:
            out[fd.name] = _scalar_out(fd, value, visible)
    return out


# ----------------------------------------------------------------------------------------------- input


def _hex_in(s: Any, what: str) -> bytes:
    if not isinstance(s, str):
        raise CodecError(f"Expected a hex string for {what}, got {type(s).__name__}")
    h = s[2:] if s.startswith("0x") else s
    if len(h) % 2:
        h = "0" + h  # java-tron ByteArray.fromHexString left-pads odd lengths
    try:
        return bytes.fromhex(h)
    except ValueError:
        raise CodecError(f"Invalid hex for {what}: {s!r}") from None


def _bytes_in(fd: FieldDescriptor, value: Any, visible: bool) -> bytes:
    if visible and fd.full_name in ADDRESS_FIELDS:
        if not isinstance(value, str):
            raise CodecError(f"Expected a base58 address for {fd.name}")
        try:
            return crypto.from_base58(value)
        except crypto.AddressError:
            raise CodecError(f"Invalid address for {fd.name}: {value!r}") from None
    if visible and fd.full_name in NAME_FIELDS:
        if not isinstance(value, str):
            raise CodecError(f"Expected a string for {fd.name}")
        return value.encode()
    return _hex_in(value, fd.name)


def _enum_in(fd: FieldDescriptor, value: Any) -> int:
    et = _enum_type(fd)
    if isinstance(value, bool):
        raise CodecError(f'Enum type "{et.full_name}" has no value named "{value}".')
    if isinstance(value, int):
        if value not in et.values_by_number:
            raise CodecError(f'Enum type "{et.full_name}" has no value with number {value}.')
        return value
    if not isinstance(value, str):
        raise CodecError(f'Enum type "{et.full_name}" has no value named "{value}".')
    name = value
    if name and name.isalpha() and name.islower():
        name = name[0].upper() + name[1:]  # JsonFormat: "function" -> "Function"
    ev = et.values_by_name.get(name)
    if ev is None:
        raise CodecError(f'Enum type "{et.full_name}" has no value named "{value}".')
    return ev.number


def _int_in(fd: FieldDescriptor, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"Expected an integer for {fd.name}, got {value!r}")
    is32 = fd.cpp_type == FieldDescriptor.CPPTYPE_INT32
    lo, hi = (INT32_MIN, INT32_MAX) if is32 else (INT64_MIN, INT64_MAX)
    if fd.cpp_type in (FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64):
        lo = 0
    if not lo <= value <= hi:
        raise CodecError(f"Number out of range for {fd.name}: {value}")
    return value


def _scalar_in(fd: FieldDescriptor, value: Any, visible: bool) -> Any:
    t = fd.type
    if t == FieldDescriptor.TYPE_BYTES:
        return _bytes_in(fd, value, visible)
    if t == FieldDescriptor.TYPE_ENUM:
        return _enum_in(fd, value)
    if t == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise CodecError(f"Expected a string for {fd.name}, got {value!r}")
        return value
    if t == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise CodecError(f"Expected true or false for {fd.name}, got {value!r}")
        return value
    if fd.cpp_type in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CodecError(f"Expected a number for {fd.name}, got {value!r}")
        return float(value)
    return _int_in(fd, value)


def _merge(obj: Any, msg: Message, visible: bool) -> None:
    if not isinstance(obj, Mapping):
        raise CodecError(f"Expected a JSON object for {msg.DESCRIPTOR.full_name}")
    desc = cast(Descriptor, msg.DESCRIPTOR)
    if desc.full_name == "google.protobuf.Any":
        _merge_any(obj, msg)  # type: ignore[arg-type]
        return
    for key, value in obj.items():
        fd = desc.fields_by_name.get(key)
        if fd is None or value is None:
            continue  # java-tron skips unknown and null keys
        if _is_map(fd):
            _merge_map(fd, value, getattr(msg, key), visible)
        elif _is_repeated(fd):
            # JsonFormat takes a bare value as a one-element list (TronWeb may send "actives": {...})
            items = value if isinstance(value, list) else [value]
            container = getattr(msg, key)
            for item in items:
                if item is None:
                    continue
                if fd.type == FieldDescriptor.TYPE_MESSAGE:
                    _merge(item, container.add(), visible)
                else:
                    container.append(_scalar_in(fd, item, visible))
        else:
            # JsonFormat sets a singular field once per array element: the last one wins
            for item in value if isinstance(value, list) else [value]:
                if item is None:
                    continue
                if fd.type == FieldDescriptor.TYPE_MESSAGE:
                    sub = type(getattr(msg, key))()
                    _merge(item, sub, visible)
                    getattr(msg, key).CopyFrom(sub)
                    getattr(msg, key).SetInParent()  # a present key makes the sub-message present, even as {}
                else:
                    setattr(msg, key, _scalar_in(fd, item, visible))


def _merge_map(fd: FieldDescriptor, value: Any, container: Any, visible: bool) -> None:
    kfd = _message_type(fd).fields_by_name["key"]
    vfd = _message_type(fd).fields_by_name["value"]
    items: list[tuple[Any, Any]] = []
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list):
        for e in value:
            if not isinstance(e, Mapping):
                raise CodecError(f"Expected key/value objects in {fd.name}")
            items.append((e.get("key", ""), e.get("value", 0)))
    else:
        raise CodecError(f"Expected a JSON array for {fd.name}")
    for k, v in items:
        container[_scalar_in(kfd, k, visible)] = _scalar_in(vfd, v, visible)


def _merge_any(obj: Mapping[str, Any], msg: any_pb2.Any) -> None:
    type_url = obj.get("type_url")
    if type_url is not None:
        if not isinstance(type_url, str):
            raise CodecError("Expected a string for type_url")
        msg.type_url = type_url
    value = obj.get("value")
    if value is not None:
        msg.value = _hex_in(value, "value")


def message_from_json(obj: Any, cls: type[M], visible: bool) -> M:
    """Parse a JSON object into a new `cls` message (java-tron JsonFormat.merge rules)."""
    msg = cls()
    _merge(obj, msg, visible)
    return msg


# ------------------------------------------------------------------------------------------ transaction


def pack_contract(type_name: str, msg: Message, permission_id: int = 0) -> tron_pb2.Transaction.Contract:
    cls = CONTRACT_CLASSES.get(type_name)
    if cls is None or not isinstance(msg, cls):
        raise CodecError(f"contract type {type_name} does not match {type(msg).__name__}")
    contract = tron_pb2.Transaction.Contract(type=ContractType.Value(type_name), Permission_id=permission_id)
    contract.parameter.type_url = type_url_for(type_name)
    contract.parameter.value = msg.SerializeToString()
    return contract


def _contract_from_json(obj: Any, visible: bool) -> tron_pb2.Transaction.Contract:
    if not isinstance(obj, Mapping):
        raise ContractParseError("Expected a JSON object in raw_data.contract")
    type_name = obj.get("type")
    if not isinstance(type_name, str) or not type_name:
        raise ContractParseError("no type in the transaction")
    if type_name not in ContractType.DESCRIPTOR.values_by_name:
        raise ContractParseError(f"invalid contractType: {type_name}")
    cls = CONTRACT_CLASSES.get(type_name)
    if cls is None:
        raise ContractParseError(f"contract type {type_name} is not supported by this node")
    parameter = obj.get("parameter")
    if not isinstance(parameter, Mapping) or not isinstance(parameter.get("value"), Mapping):
        raise ContractParseError(f"{type_name}: parameter.value must be a JSON object")
    try:
        inner = message_from_json(parameter["value"], cls, visible)
    except ContractParseError:
        raise
    except CodecError as exc:
        raise ContractParseError(f"{type_name}: {exc}") from None
    contract = tron_pb2.Transaction.Contract()
    # Like packTransaction: rebuild the value bytes, keep every other key of the contract JSON.
    rest = {k: v for k, v in obj.items() if k != "parameter"}
    _merge(rest, contract, visible)
    type_url = parameter.get("type_url")
    if type_url is not None:
        if not isinstance(type_url, str):
            raise ContractParseError(f"{type_name}: type_url must be a string")
        contract.parameter.type_url = type_url
    contract.parameter.value = inner.SerializeToString()
    return contract


def transaction_from_json(obj: Any, visible: bool) -> tron_pb2.Transaction:
    """Rebuild a Transaction from the JSON a client sends (tronpy/TronWeb broadcast, getsignweight).

    raw_data is re-encoded from its JSON fields; txID / raw_data_hex / visible keys are ignored. The
    client's type_url is kept (it is hashed); `unpack_contract` later rejects a non-canonical one.
    """
    if not isinstance(obj, Mapping):
        raise CodecError("Expected a JSON object for the transaction")
    raw_json = obj.get("raw_data")
    if not isinstance(raw_json, Mapping):
        raise CodecError("raw_data is missing or not a JSON object")
    tx = tron_pb2.Transaction()
    contracts = raw_json.get("contract")
    if contracts is not None and not isinstance(contracts, list):
        raise CodecError("raw_data.contract must be a JSON array")
    _merge({k: v for k, v in raw_json.items() if k != "contract"}, tx.raw_data, visible)
    for c in contracts or []:
        tx.raw_data.contract.append(_contract_from_json(c, visible))
    _merge({k: obj[k] for k in ("signature", "ret") if k in obj}, tx, visible)
    return tx


def tx_id(tx: tron_pb2.Transaction) -> bytes:
    return crypto.sha256(tx.raw_data.SerializeToString())


def unpack_contract(tx: tron_pb2.Transaction) -> tuple[str, Message]:
    """(ContractType name, inner message) of the single contract; CodecError on anything java-tron rejects."""
    if len(tx.raw_data.contract) != 1:
        raise CodecError("act size should be exactly 1, this is extend feature")
    contract = tx.raw_data.contract[0]
    ev = ContractType.DESCRIPTOR.values_by_number.get(contract.type)
    if ev is None or ev.name not in CONTRACT_CLASSES:
        raise CodecError(f"contract type {contract.type} is not supported by this node")
    expected = type_url_for(ev.name)
    if contract.parameter.type_url != expected:
        raise CodecError(
            f"contract type error, expected type [{CONTRACT_CLASSES[ev.name].DESCRIPTOR.name}], "
            f"real type [{contract.parameter.type_url}]"
        )
    try:
        inner = CONTRACT_CLASSES[ev.name].FromString(contract.parameter.value)
    except DecodeError as exc:
        raise CodecError(f"Protocol message of {ev.name} is invalid: {exc}") from None
    return ev.name, inner


def _contract_to_json(contract: tron_pb2.Transaction.Contract, visible: bool) -> dict[str, Any]:
    type_name = ContractType.Name(contract.type) if contract.type in ContractType.values() else contract.type
    cls = CONTRACT_CLASSES.get(type_name) if isinstance(type_name, str) else None
    value: dict[str, Any] | None = None
    if cls is not None:
        try:
            value = message_to_json(cls.FromString(contract.parameter.value), visible)
        except DecodeError:
            value = None
    out: dict[str, Any] = {
        "parameter": {"value": value, "type_url": contract.parameter.type_url},
        "type": type_name,
    }
    if contract.Permission_id > 0:
        out["Permission_id"] = contract.Permission_id
    return out


def transaction_to_json(
    tx: tron_pb2.Transaction, visible: bool, *, include_visible: bool = True
) -> dict[str, Any]:
    """java-tron Util.printTransactionToJSON (+ the "visible" key its builder endpoints add)."""
    out: dict[str, Any] = {}
    if include_visible:
        out["visible"] = visible
    raw_bytes = tx.raw_data.SerializeToString()
    out["txID"] = crypto.sha256(raw_bytes).hex()
    raw = message_to_json(tx.raw_data, visible)
    raw["contract"] = [_contract_to_json(c, visible) for c in tx.raw_data.contract]
    out["raw_data"] = raw
    out["raw_data_hex"] = raw_bytes.hex()
    if tx.signature:
        out["signature"] = [s.hex() for s in tx.signature]
    if tx.ret:
        out["ret"] = [message_to_json(r, visible) for r in tx.ret]
    return out


# ------------------------------------------------------------------------------------ blocks and infos


def block_id(header_raw: tron_pb2.BlockHeader.raw) -> bytes:
    """sha256(raw) with its first 8 bytes replaced by the big-endian block number."""
    digest = crypto.sha256(header_raw.SerializeToString())
    return header_raw.number.to_bytes(8, "big") + digest[8:]


def block_to_json(block: tron_pb2.Block, visible: bool) -> dict[str, Any]:
    """java-tron Util.printBlockToJSON: blockID, block_header, and transactions when there are any."""
    out: dict[str, Any] = {"blockID": block_id(block.block_header.raw_data).hex()}
    out["block_header"] = message_to_json(block.block_header, visible)
    if block.transactions:
        out["transactions"] = [
            transaction_to_json(t, visible, include_visible=False) for t in block.transactions
        ]
    return out


def transaction_info_to_json(info: tron_pb2.TransactionInfo, visible: bool) -> dict[str, Any]:
    """TransactionInfo JSON; Log.address is stored as 20 bytes (TVM form) as in java-tron.

    visible=false prints log addresses as 40 hex chars (no 41); visible=true prefixes 0x41 and prints
    base58 (GetTransactionInfoByIdServlet.convertLogAddressToTronAddress).
    """
    out = message_to_json(info, visible)
    for log_json, log in zip(out.get("log", []), info.log, strict=True):
        if not log.address:
            continue
        addr20 = log.address[-20:]
        log_json["address"] = crypto.to_base58(b"\x41" + addr20) if visible else addr20.hex()
    return out
