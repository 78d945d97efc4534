"""`tronpay audit verify`: check the services' hash-chained audit logs (docs/audit.md).

Every service serves tronpay.audit.v1.AuditService/VerifyAuditLog for its own log, to the operator
certificate only (it has no REST binding and does not pass the edge), so this command calls each service's
own port over mutual TLS: the same walk `make audit-verify` does against MongoDB, done by the services.
"""

from __future__ import annotations

import re
from typing import Any

import click
from tronpay.audit.v1 import audit_pb2 as pb
from tronpay.audit.v1 import audit_pb2_grpc as pb_grpc

from tronpay_cli import output
from tronpay_cli.base import command
from tronpay_cli.connection import SERVICE_PORTS, App
from tronpay_cli.errors import CliError, ExitCode

_ANCHOR = re.compile(r"([1-9][0-9]*):([0-9a-f]{64})")


@click.group("audit")
def audit() -> None:
    """Audit trail: verify the services' hash-chained logs (operator certificate)."""


def _reason(value: int) -> str:
    return output.enum_name(pb.ChainBreak.Reason, value, "REASON_")


@command(audit, "verify")
@click.option(
    "--service",
    "services",
    multiple=True,
    type=click.Choice(sorted(SERVICE_PORTS)),
    help="A service whose log to verify (repeatable; default: all six).",
)
@click.option(
    "--anchor", default=None, help="SEQ:HASH of a head kept outside the database (with one --service)."
)
@click.option(
    "--addr", default=None, help="With one --service: its gRPC address (default: <SERVICE>_HOST/_PORT)."
)
def verify(app: App, services: tuple[str, ...], anchor: str | None, addr: str | None) -> None:
    """Walk each log from its first record to its head; exit 9 naming the first break."""
    chosen = services or tuple(SERVICE_PORTS)
    if (anchor or addr) and len(chosen) != 1:
        raise click.UsageError("--anchor and --addr belong to one log: name it with --service")
    request = pb.VerifyAuditLogRequest()
    if anchor:
        match = _ANCHOR.fullmatch(anchor)
        if match is None:
            raise app.error(
                ExitCode.INVALID_ARGUMENT, "--anchor: expected SEQ:HASH (64 lowercase hex digits)"
            )
        request.anchor.CopyFrom(pb.ChainAnchor(seq=int(match[1]), hash=match[2]))
    results: list[tuple[str, str, pb.VerifyAuditLogResponse | CliError]] = []
    for service in chosen:
        direct = app.operator(service, addr)
        try:
            answer: pb.VerifyAuditLogResponse | CliError = app.call(
                pb_grpc.AuditServiceStub(direct.channel).VerifyAuditLog, request, direct=direct
            )
        except CliError as failed:
            answer = failed
        results.append((service, direct.address, answer))
    if app.as_json:
        output.print_json(
            {
                "logs": [_log_json(service, target, answer) for service, target, answer in results],
                "intact": all(isinstance(a, pb.VerifyAuditLogResponse) and a.intact for _, _, a in results),
            }
        )
    else:
        rows = [_log_row(service, answer) for service, _, answer in results]
        columns = ("service", "result", "records", "head seq", "head hash", "first break")
        output.stdout.print(output.table("audit logs", columns, rows))
    broken = [s for s, _, a in results if isinstance(a, pb.VerifyAuditLogResponse) and not a.intact]
    if broken:
        raise app.error(ExitCode.OUTCOME_FAILED, f"audit chain broken: {', '.join(broken)}")
    errors = [a for _, _, a in results if isinstance(a, CliError)]
    if errors:
        raise errors[0]


def _log_json(service: str, target: str, answer: pb.VerifyAuditLogResponse | CliError) -> dict[str, Any]:
    if isinstance(answer, CliError):
        return {
            "service": service,
            "address": target,
            "error": {"status": answer.status, "message": answer.message},
        }
    return {"service": service, "address": target, "result": output.message_dict(answer)}


def _log_row(service: str, answer: pb.VerifyAuditLogResponse | CliError) -> tuple[Any, ...]:
    if isinstance(answer, CliError):
        return (service, answer.status or "error", "", "", "", answer.message)
    broken = answer.first_break
    where = (
        f"seq {broken.seq} {_reason(broken.reason)}: {broken.description}"
        if answer.HasField("first_break")
        else ""
    )
    return (
        service,
        "intact" if answer.intact else "BROKEN",
        answer.record_count,
        answer.head.seq if answer.HasField("head") else "",
        answer.head.hash if answer.HasField("head") else "",
        where,
    )
