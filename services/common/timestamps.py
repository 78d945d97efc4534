"""datetime <-> google.protobuf.Timestamp, the one conversion every service's convert module uses."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """The Timestamp of an aware datetime (None stays None, so an unset field stays unset)."""
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def timestamp_ms(ms: int) -> timestamp_pb2.Timestamp | None:
    """The Timestamp of epoch milliseconds (0 or less: unset)."""
    if ms <= 0:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromMilliseconds(ms)
    return ts
