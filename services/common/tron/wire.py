"""A schema-driven protobuf wire encoder/decoder for the TRON messages the cluster builds and reads.

Values are plain dicts: bytes fields hold bytes, string fields str, varint fields int (enums and bools
as ints), message fields dicts, repeated fields lists. Encoding follows what java-tron/protobuf emit
(tron-protocol.md §1, Appendix A), which is what the txID hashes:
  * fields in ascending field-number order;
  * varint 0 and empty bytes/strings are omitted (proto3);
  * an embedded message is written when its key is present, even when it encodes to nothing;
  * repeated elements are always written; negative int64 take 10 bytes (two's complement).
Decoding skips fields the schema does not know (the node adds `ret` to Transaction, for example).

Below the schemas, the primitives work on any message: iter_fields (with byte offsets, which the Ledger
chunking needs), split_fields, and Fields, a last-wins view that checks wire types on read. Malformed
input always raises WireError; callers with their own error type (the vault) translate it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

VARINT, I64, LEN, I32 = 0, 1, 2, 5
MAX_DEPTH = 16


class WireError(ValueError):
    """Bytes that are not a well-formed message of the expected schema."""


@dataclass(frozen=True, slots=True)
class F:
    """One field: number, name, kind ('varint', 'bool', 'bytes', 'string' or a message name in SCHEMAS);
    `enum` names the enum of a varint (for the node's JSON form, which prints enums by name)."""

    num: int
    name: str
    kind: str
    repeated: bool = False
    enum: str = ""


ENUMS: dict[str, dict[int, str]] = {
    "ResourceCode": {0: "BANDWIDTH", 1: "ENERGY", 2: "TRON_POWER"},
    "PermissionType": {0: "Owner", 1: "Witness", 2: "Active"},
    # SmartContract.ABI.Entry (core/contract/smart_contract.proto)
    "EntryType": {
        0: "UnknownEntryType", 1: "Constructor", 2: "Function", 3: "Event", 4: "Fallback", 5: "Receive",
        6: "Error",
    },
    "StateMutabilityType": {
        0: "UnknownMutabilityType", 1: "Pure", 2: "View", 3: "Nonpayable", 4: "Payable",
    },
}  # fmt: skip


def _s(*fields: F) -> tuple[F, ...]:
    return tuple(sorted(fields, key=lambda f: f.num))


ADDR = "bytes"  # 21-byte TRON address

SCHEMAS: dict[str, tuple[F, ...]] = {
    # core/Tron.proto
    "Transaction": _s(F(1, "raw_data", "Transaction.raw"), F(2, "signature", "bytes", repeated=True)),
    "Transaction.raw": _s(
        F(1, "ref_block_bytes", "bytes"),
        F(3, "ref_block_num", "varint"),
        F(4, "ref_block_hash", "bytes"),
        F(8, "expiration", "varint"),
        F(10, "data", "bytes"),
        F(11, "contract", "Transaction.Contract", repeated=True),
        F(12, "scripts", "bytes"),
        F(14, "timestamp", "varint"),
        F(18, "fee_limit", "varint"),
    ),
    "Transaction.Contract": _s(
        F(1, "type", "varint"),
        F(2, "parameter", "Any"),
        F(3, "provider", "bytes"),
        F(4, "ContractName", "bytes"),
        F(5, "Permission_id", "varint"),
    ),
    "Any": _s(F(1, "type_url", "string"), F(2, "value", "bytes")),
    "Permission": _s(
        F(1, "type", "varint", enum="PermissionType"),
        F(2, "id", "varint"),
        F(3, "permission_name", "string"),
        F(4, "threshold", "varint"),
        F(5, "parent_id", "varint"),
        F(6, "operations", "bytes"),
        F(7, "keys", "Key", repeated=True),
    ),
    "Key": _s(F(1, "address", ADDR), F(2, "weight", "varint")),
    # core/contract/*.proto
    "TransferContract": _s(F(1, "owner_address", ADDR), F(2, "to_address", ADDR), F(3, "amount", "varint")),
    "TriggerSmartContract": _s(
        F(1, "owner_address", ADDR),
        F(2, "contract_address", ADDR),
        F(3, "call_value", "varint"),
        F(4, "data", "bytes"),
        F(5, "call_token_value", "varint"),
        F(6, "token_id", "varint"),
    ),
    "FreezeBalanceV2Contract": _s(
        F(1, "owner_address", ADDR),
        F(2, "frozen_balance", "varint"),
        F(3, "resource", "varint", enum="ResourceCode"),
    ),
    "UnfreezeBalanceV2Contract": _s(
        F(1, "owner_address", ADDR),
        F(2, "unfreeze_balance", "varint"),
        F(3, "resource", "varint", enum="ResourceCode"),
    ),
    "WithdrawExpireUnfreezeContract": _s(F(1, "owner_address", ADDR)),
    "DelegateResourceContract": _s(
        F(1, "owner_address", ADDR),
        F(2, "resource", "varint", enum="ResourceCode"),
        F(3, "balance", "varint"),
        F(4, "receiver_address", ADDR),
        F(5, "lock", "bool"),
        F(6, "lock_period", "varint"),
    ),
    "UnDelegateResourceContract": _s(
        F(1, "owner_address", ADDR),
        F(2, "resource", "varint", enum="ResourceCode"),
        F(3, "balance", "varint"),
        F(4, "receiver_address", ADDR),
    ),
    "VoteWitnessContract": _s(
        F(1, "owner_address", ADDR), F(2, "votes", "Vote", repeated=True), F(3, "support", "bool")
    ),
    "Vote": _s(F(1, "vote_address", ADDR), F(2, "vote_count", "varint")),
    "WithdrawBalanceContract": _s(F(1, "owner_address", ADDR)),
    "AccountPermissionUpdateContract": _s(
        F(1, "owner_address", ADDR),
        F(2, "owner", "Permission"),
        F(3, "witness", "Permission"),
        F(4, "actives", "Permission", repeated=True),
    ),
    "CreateSmartContract": _s(
        F(1, "owner_address", ADDR),
        F(2, "new_contract", "SmartContract"),
        F(3, "call_token_value", "varint"),
        F(4, "token_id", "varint"),
    ),
    "SmartContract": _s(
        F(1, "origin_address", ADDR),
        F(2, "contract_address", ADDR),
        F(3, "abi", "SmartContract.ABI"),
        F(4, "bytecode", "bytes"),
        F(5, "call_value", "varint"),
        F(6, "consume_user_resource_percent", "varint"),
        F(7, "name", "string"),
        F(8, "origin_energy_limit", "varint"),
        F(9, "code_hash", "bytes"),
        F(10, "trx_hash", "bytes"),
        F(11, "version", "varint"),
    ),
    "SmartContract.ABI": _s(F(1, "entrys", "SmartContract.ABI.Entry", repeated=True)),  # (sic)
    "SmartContract.ABI.Entry": _s(
        F(1, "anonymous", "bool"),
        F(2, "constant", "bool"),
        F(3, "name", "string"),
        F(4, "inputs", "SmartContract.ABI.Entry.Param", repeated=True),
        F(5, "outputs", "SmartContract.ABI.Entry.Param", repeated=True),
        F(6, "type", "varint", enum="EntryType"),
        F(7, "payable", "bool"),
        F(8, "stateMutability", "varint", enum="StateMutabilityType"),
    ),
    "SmartContract.ABI.Entry.Param": _s(
        F(1, "indexed", "bool"), F(2, "name", "string"), F(3, "type", "string")
    ),
}


# ---- primitives -------------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """Base-128 varint; negative values as their 64-bit two's complement (10 bytes)."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position); at most 10 bytes."""
    result = 0
    for shift in range(0, 70, 7):
        if pos >= len(buf):
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
    raise WireError("varint longer than 10 bytes")


def _key(num: int, wire_type: int) -> bytes:
    return encode_varint((num << 3) | wire_type)


def _len_field(num: int, payload: bytes) -> bytes:
    return _key(num, LEN) + encode_varint(len(payload)) + payload


INT64_MAX = 2**63 - 1  # largest protobuf int64 (amounts in our messages)


def as_int64(value: int) -> int:
    """A varint read as signed int64: truncated to 64 bits as protobuf does, negatives two's complement."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes, int, int]]:
    """Every field of one message level as (number, wire type, value, start offset, end offset)."""
    pos, end = 0, len(buf)
    while pos < end:
        start = pos
        key, pos = read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise WireError("field number 0")
        value: int | bytes
        if wt == VARINT:
            value, pos = read_varint(buf, pos)
        elif wt == LEN:
            n, pos = read_varint(buf, pos)
            if pos + n > end:
                raise WireError("truncated length-delimited field")
            value, pos = bytes(buf[pos : pos + n]), pos + n
        elif wt == I64:
            if pos + 8 > end:
                raise WireError("truncated 64-bit field")
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wt == I32:
            if pos + 4 > end:
                raise WireError("truncated 32-bit field")
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise WireError(f"unsupported wire type {wt}")
        yield num, wt, value, start, pos


def split_fields(buf: bytes) -> list[bytes]:
    """The encoded bytes of each field of one message level, in order (they concatenate back to buf)."""
    return [bytes(buf[start:end]) for *_, start, end in iter_fields(buf)]


class Fields:
    """Last-wins view of one message level (proto3 singular semantics) plus repeated access, by field
    number; a wire type other than the one asked for is a WireError."""

    def __init__(self, buf: bytes) -> None:
        self._by_num: dict[int, list[tuple[int, int | bytes]]] = {}
        for num, wt, value, _, _ in iter_fields(buf):
            self._by_num.setdefault(num, []).append((wt, value))

    def get_int(self, num: int, default: int = 0) -> int:
        """The last varint of field `num` as a signed int64."""
        vals = self._by_num.get(num)
        if not vals:
            return default
        wt, v = vals[-1]
        if wt != VARINT or not isinstance(v, int):
            raise WireError(f"field {num}: expected a varint")
        return as_int64(v)

    def get_bytes(self, num: int, default: bytes = b"") -> bytes:
        vals = self._by_num.get(num)
        if not vals:
            return default
        wt, v = vals[-1]
        if wt != LEN or not isinstance(v, bytes):
            raise WireError(f"field {num}: expected length-delimited")
        return v

    def get_all_bytes(self, num: int) -> list[bytes]:
        out = []
        for wt, v in self._by_num.get(num, ()):
            if wt != LEN or not isinstance(v, bytes):
                raise WireError(f"field {num}: expected length-delimited")
            out.append(v)
        return out


# ---- schema-driven encode / decode ------------------------------------------------------------


def encode(schema: str, msg: dict[str, Any]) -> bytes:
    """Serialize a dict as message `schema`; unknown keys are an error (they would be silently lost)."""
    fields = SCHEMAS[schema]
    unknown = set(msg) - {f.name for f in fields}
    if unknown:
        raise WireError(f"{schema}: unknown fields {sorted(unknown)}")
    out = bytearray()
    for f in fields:
        if f.name not in msg or msg[f.name] is None:
            continue
        values = msg[f.name] if f.repeated else [msg[f.name]]
        for v in values:
            out += _encode_value(f, v, always=f.repeated)
    return bytes(out)


def _encode_value(f: F, v: Any, *, always: bool) -> bytes:
    if f.kind in ("varint", "bool"):
        iv = int(v)
        return b"" if iv == 0 and not always else _key(f.num, VARINT) + encode_varint(iv)
    if f.kind in ("bytes", "string"):
        bv = v.encode() if isinstance(v, str) else bytes(v)
        return b"" if not bv and not always else _len_field(f.num, bv)
    return _len_field(f.num, encode(f.kind, v))  # embedded message: present means written


def decode(schema: str, buf: bytes, _depth: int = 0) -> dict[str, Any]:
    """Parse bytes as message `schema` into a dict (absent scalars are left out, as on the wire)."""
    if _depth > MAX_DEPTH:
        raise WireError("message nested too deeply")
    by_num = {f.num: f for f in SCHEMAS[schema]}
    out: dict[str, Any] = {}
    for num, wt, value, _, _ in iter_fields(buf):
        f = by_num.get(num)
        if f is None:
            continue
        want = VARINT if f.kind in ("varint", "bool") else LEN
        if wt != want:
            raise WireError(f"{schema}.{f.name}: wire type {wt}, want {want}")
        if isinstance(value, int):  # VARINT (the wire type was checked above): varint or bool
            v: Any = bool(value) if f.kind == "bool" else as_int64(value)
        elif f.kind == "bytes":
            v = value
        elif f.kind == "string":
            try:
                v = value.decode()
            except UnicodeDecodeError:
                raise WireError(f"{schema}.{f.name}: not UTF-8") from None
        else:
            v = decode(f.kind, value, _depth + 1)
        if f.repeated:
            out.setdefault(f.name, []).append(v)
        else:
            out[f.name] = v  # proto3: the last occurrence wins
    return out


def to_json(schema: str, msg: dict[str, Any]) -> dict[str, Any]:
    """java-tron's visible=false JSON of a decoded message: bytes as hex, enums by name, defaults left out."""
    out: dict[str, Any] = {}
    for f in SCHEMAS[schema]:
        if f.name not in msg:
            continue
        values = msg[f.name] if f.repeated else [msg[f.name]]
        conv = [_json_value(f, v) for v in values]
        out[f.name] = conv if f.repeated else conv[0]
    return out


def _json_value(f: F, v: Any) -> Any:
    if f.kind == "bytes":
        return bytes(v).hex()
    if f.kind == "varint" and f.enum:
        return ENUMS[f.enum].get(int(v), int(v))
    if f.kind in ("varint", "string"):
        return v
    if f.kind == "bool":
        return bool(v)
    return to_json(f.kind, v)
