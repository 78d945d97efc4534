"""Exit codes and one-line error messages: every failure the CLI reports goes through `CliError`.

A gRPC status maps to an exit code by what a script should do next (fix the input, fix the access, retry
later...); the message is one line on stderr, plain text or, under --json, one JSON object. The table is
printed by `tronpay --help` and docs/cli.md (a test keeps the three in step).
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import IO, Any

import click
import grpc
from google.rpc import error_details_pb2, status_pb2


class ExitCode(IntEnum):
    """The process exit codes of `tronpay`."""

    OK = 0
    ERROR = 1  # anything not below: INTERNAL, UNKNOWN, DATA_LOSS, CANCELLED, an unexpected local error
    USAGE = 2  # a bad command line (unknown option, missing argument)
    NOT_FOUND = 3  # NOT_FOUND
    INVALID_ARGUMENT = 4  # INVALID_ARGUMENT, OUT_OF_RANGE, and input refused before any call (a bad CSV line)
    FAILED_PRECONDITION = 5  # FAILED_PRECONDITION, ALREADY_EXISTS: refused in the current state
    ACCESS_DENIED = 6  # UNAUTHENTICATED, PERMISSION_DENIED: no, expired or insufficient token or certificate
    UNAVAILABLE = 7  # UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED: retry later
    UNIMPLEMENTED = 8  # UNIMPLEMENTED: the service does not serve this RPC (yet)
    OUTCOME_FAILED = 9  # the calls worked but the outcome is bad: a payout or transfer failed, a chain broke
    WAIT_TIMEOUT = 10  # --wait gave up before a final state (nothing was cancelled; look again later)


#: What each exit code means, for `tronpay --help` and docs/cli.md.
EXIT_CODE_HELP: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.ERROR: "other error (INTERNAL, UNKNOWN, an unexpected local error)",
    ExitCode.USAGE: "usage error (bad option or argument)",
    ExitCode.NOT_FOUND: "not found (NOT_FOUND)",
    ExitCode.INVALID_ARGUMENT: "invalid argument (INVALID_ARGUMENT, OUT_OF_RANGE, a bad CSV line or amount)",
    ExitCode.FAILED_PRECONDITION: "refused in the current state (FAILED_PRECONDITION, ALREADY_EXISTS)",
    ExitCode.ACCESS_DENIED: "not authenticated or not allowed (UNAUTHENTICATED, PERMISSION_DENIED)",
    ExitCode.UNAVAILABLE: "retry later (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED)",
    ExitCode.UNIMPLEMENTED: "not implemented by the service yet (UNIMPLEMENTED)",
    ExitCode.OUTCOME_FAILED: "done, but something failed: a payout FAILED, an audit chain is broken",
    ExitCode.WAIT_TIMEOUT: "--wait gave up before a final state",
}

_BY_STATUS: dict[grpc.StatusCode, ExitCode] = {
    grpc.StatusCode.NOT_FOUND: ExitCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: ExitCode.INVALID_ARGUMENT,
    grpc.StatusCode.OUT_OF_RANGE: ExitCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION: ExitCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS: ExitCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED: ExitCode.ACCESS_DENIED,
    grpc.StatusCode.PERMISSION_DENIED: ExitCode.ACCESS_DENIED,
    grpc.StatusCode.UNAVAILABLE: ExitCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: ExitCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ExitCode.UNAVAILABLE,
    grpc.StatusCode.ABORTED: ExitCode.UNAVAILABLE,
    grpc.StatusCode.UNIMPLEMENTED: ExitCode.UNIMPLEMENTED,
}


def exit_code_for(code: grpc.StatusCode) -> ExitCode:
    """The exit code of a failed call with this status."""
    return _BY_STATUS.get(code, ExitCode.ERROR)


class CliError(click.ClickException):
    """A failure reported as one line on stderr with its exit code (JSON under --json)."""

    def __init__(
        self,
        exit_code: ExitCode,
        message: str,
        *,
        status: str = "",
        reason: str = "",
        hint: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.exit_code = int(exit_code)  # type: ignore[misc]  # click's class default, set per error
        self.status = status
        self.reason = reason
        self.hint = hint
        self.details = details or {}
        self.as_json = False  # set by the command that failed when it runs under --json

    def line(self) -> str:
        """The one line this error prints."""
        if self.as_json:
            body: dict[str, Any] = {"exitCode": self.exit_code, "message": self.message}
            body |= {k: v for k, v in (("status", self.status), ("reason", self.reason)) if v}
            body |= {"hint": self.hint} if self.hint else {}
            body |= self.details
            return json.dumps({"error": body}, sort_keys=True)
        where = " ".join(part for part in (self.status, self.reason) if part)
        text = f"tronpay: error: {where + ': ' if where else ''}{self.message}"
        return f"{text} -- {self.hint}" if self.hint else text

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.line(), err=file is None, file=file)


def status_details(err: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status a service attached to a failed call (ErrorInfo, BadRequest), if any."""
    trailing = err.trailing_metadata() if isinstance(err, grpc.Call) else None
    for key, value in trailing or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def _hint(code: grpc.StatusCode, target: str, service: str) -> str:
    if service:  # a service's own port, with the operator certificate: no token involved
        prefix = service.upper().replace("-", "_")
        up = f"is {service} up at {target}? `make up`, or {prefix}_HOST / {prefix}_PORT, --addr"
        return up if code == grpc.StatusCode.UNAVAILABLE else ""
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return "set a token: export TRONPAY_TOKEN=$(make -s token ROLE=operator)"
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"is the cluster up at {target}? `make up`, or --server / TRONPAY_SERVER"
    return ""


def from_rpc_error(err: grpc.RpcError, rpc: str, target: str, service: str = "") -> CliError:
    """The CliError of a failed call of `rpc` ("Service/Method") made to `target`: the edge, or with
    `service` that service's own port (operator commands)."""
    code = err.code() if isinstance(err, grpc.Call) else grpc.StatusCode.UNKNOWN
    text = (err.details() if isinstance(err, grpc.Call) else "") or str(code.name).lower()
    reason, violations = "", []
    status = status_details(err)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [f"{v.field}: {v.description}" for v in bad.field_violations]
    if code == grpc.StatusCode.UNIMPLEMENTED:
        text = f"not served by the service yet ({text})"
    message = f"{rpc}: {text}" + (f" [{'; '.join(violations)}]" if violations else "")
    details = {"rpc": rpc} | ({"fieldViolations": violations} if violations else {})
    return CliError(
        exit_code_for(code),
        message,
        status=code.name,
        reason=reason,
        hint=_hint(code, target, service),
        details=details,
    )
