"""tronpay.audit.v1.AuditService: verify and export the serving service's audit log (services.common.audit).

Every service serves it next to its own contract; it is internal (no REST binding, operator only).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from tronpay.audit.v1 import audit_pb2 as pb
from tronpay.audit.v1 import audit_pb2_grpc

from services.common.audit import Anchor, AuditLog, canonical

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AuditService"].full_name
add_to_server = audit_pb2_grpc.add_AuditServiceServicer_to_server


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _event_type(name: Any) -> pb.AuditRecord.EventType.ValueType:
    """The enum value of a stored event type; UNSPECIFIED for one this version does not know."""
    try:
        return pb.AuditRecord.EventType.Value(f"EVENT_TYPE_{name}")
    except ValueError:
        return pb.AuditRecord.EVENT_TYPE_UNSPECIFIED


def _outcome(name: Any) -> pb.AuditRecord.Outcome.ValueType:
    try:
        return pb.AuditRecord.Outcome.Value(f"OUTCOME_{name}")
    except ValueError:
        return pb.AuditRecord.OUTCOME_UNSPECIFIED


def _details_json(details: Any) -> str:
    try:
        return canonical(details).decode()
    except (TypeError, ValueError):  # an altered record; VerifyAuditLog calls it MALFORMED
        return ""


def to_proto(record: Mapping[str, Any]) -> pb.AuditRecord:
    """A JSON-form record as the wire message; fields an altered record lacks or mistypes stay unset."""
    actor = record.get("actor")
    actor = actor if isinstance(actor, Mapping) else {}
    roles, version = actor.get("roles"), record.get("version")
    out = pb.AuditRecord(
        seq=record["seq"],
        service=_text(record.get("service")),
        event_type=_event_type(record.get("event_type")),
        actor=pb.AuditRecord.Actor(
            subject=_text(actor.get("subject")),
            caller=_text(actor.get("caller")),
            method=_text(actor.get("method")),
            request_id=_text(actor.get("request_id")),
            roles=[r for r in roles if isinstance(r, str)] if isinstance(roles, list) else [],
            tenant=_text(actor.get("tenant")),
        ),
        resource=_text(record.get("resource")),
        outcome=_outcome(record.get("outcome")),
        details_json=_details_json(record.get("details", {})),
        prev_hash=_text(record.get("prev_hash")),
        hash=_text(record.get("hash")),
        version=version if isinstance(version, int) and 0 <= version < 2**31 else 0,
    )
    with contextlib.suppress(KeyError, TypeError, ValueError):  # an altered record's time stays unset
        out.event_time.FromDatetime(datetime.fromisoformat(record["event_time"]))
    return out


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """Reads the log it is given; appending happens where the events happen (AuditLog.append)."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log

    async def VerifyAuditLog(  # noqa: N802  # the RPC's name
        self, request: pb.VerifyAuditLogRequest, context: Any
    ) -> pb.VerifyAuditLogResponse:
        anchor = Anchor(request.anchor.seq, request.anchor.hash) if request.HasField("anchor") else None
        result = await self._log.verify(anchor)
        response = pb.VerifyAuditLogResponse(intact=result.intact, record_count=result.count)
        if result.head is not None:
            response.head.CopyFrom(pb.ChainAnchor(seq=result.head.seq, hash=result.head.hash))
        if result.broken is not None:
            response.first_break.CopyFrom(
                pb.ChainBreak(
                    seq=result.broken.seq,
                    reason=pb.ChainBreak.Reason.Value(f"REASON_{result.broken.reason}"),
                    description=result.broken.description,
                )
            )
        return response

    async def ExportAuditLog(  # noqa: N802  # the RPC's name
        self, request: pb.ExportAuditLogRequest, context: Any
    ) -> AsyncIterator[pb.ExportAuditLogResponse]:
        # An async generator itself: that is how grpc.aio (and the interceptor) recognise a streaming handler.
        async for record in self._log.export(request.after_seq):
            yield pb.ExportAuditLogResponse(record=to_proto(record))
