"""Minimal protobuf wire-format decoder (varint, 64-bit, length-delimited, 32-bit); no schema needed."""

from __future__ import annotations

from .errors import MalformedTransaction

VARINT, I64, LEN, I32 = 0, 1, 2, 5


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, new position); at most 10 bytes, as protobuf allows."""
    result = 0
    for shift in range(0, 70, 7):
        if pos >= len(buf):
            raise MalformedTransaction("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
    raise MalformedTransaction("varint too long")


def iter_fields(buf: bytes) -> list[tuple[int, int, int | bytes, int, int]]:
    """Every top-level field as (number, wire type, value, start offset, end offset)."""
    out: list[tuple[int, int, int | bytes, int, int]] = []
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise MalformedTransaction("field number 0")
        value: int | bytes
        if wt == VARINT:
            value, pos = read_varint(buf, pos)
        elif wt == LEN:
            n, pos = read_varint(buf, pos)
            if pos + n > len(buf):
                raise MalformedTransaction("truncated length-delimited field")
            value, pos = bytes(buf[pos : pos + n]), pos + n
        elif wt in (I64, I32):
            width = 8 if wt == I64 else 4
            if pos + width > len(buf):
                raise MalformedTransaction("truncated fixed-width field")
            value, pos = int.from_bytes(buf[pos : pos + width], "little"), pos + width
        else:
            raise MalformedTransaction("unsupported wire type")
        out.append((num, wt, value, start, pos))
    return out


def field_boundaries(buf: bytes) -> list[int]:
    """End offsets of the top-level fields (where a Ledger chunk may be cut)."""
    return [end for *_, end in iter_fields(buf)]


def as_int64(v: int) -> int:
    """Interpret a varint as a signed int64 (negatives are 10-byte two's complement)."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


class Fields:
    """Last-wins view of one message's fields (proto3 singular semantics) plus repeated access."""

    def __init__(self, buf: bytes) -> None:
        self._by_num: dict[int, list[tuple[int, int | bytes]]] = {}
        for num, wt, value, _, _ in iter_fields(buf):
            self._by_num.setdefault(num, []).append((wt, value))

    def get_int(self, num: int, default: int = 0) -> int:
        vals = self._by_num.get(num)
        if not vals:
            return default
        wt, v = vals[-1]
        if wt != VARINT or not isinstance(v, int):
            raise MalformedTransaction(f"field {num}: expected a varint")
        return as_int64(v)

    def get_bytes(self, num: int, default: bytes = b"") -> bytes:
        vals = self._by_num.get(num)
        if not vals:
            return default
        wt, v = vals[-1]
        if wt != LEN or not isinstance(v, bytes):
            raise MalformedTransaction(f"field {num}: expected length-delimited")
        return v

    def get_all_bytes(self, num: int) -> list[bytes]:
        out = []
        for wt, v in self._by_num.get(num, ()):
            if wt != LEN or not isinstance(v, bytes):
                raise MalformedTransaction(f"field {num}: expected length-delimited")
            out.append(v)
        return out

    def numbers(self) -> set[int]:
        return set(self._by_num)
