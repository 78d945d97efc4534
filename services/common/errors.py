"""Domain errors and their wire form: google.rpc.Status with ErrorInfo / BadRequest details.

Service code raises these; the error interceptor turns them into the gRPC status and the
`grpc-status-details-bin` trailer that Envoy renders as a JSON body. Anything else that escapes a
servicer becomes INTERNAL with a generic message (details stay in the server log).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN_SUFFIX = ".tronpay.example"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad request field: `field` is a dotted path (`recipients[2].amount`)."""

    field: str
    description: str
    reason: str = ""


class DomainError(Exception):
    """Base of errors a service raises on purpose. `reason` is UPPER_SNAKE_CASE and stable."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    default_reason = "UNKNOWN"

    def __init__(self, message: str, *, reason: str | None = None, metadata: Mapping[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}

    def extra_details(self) -> list[any_pb2.Any]:
        """Details beyond ErrorInfo (subclasses add BadRequest etc.)."""
        return []


class InvalidArgument(DomainError):
    """The request is malformed; carries field violations."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        violations: Iterable[FieldViolation] = (),
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ):
        super().__init__(message, reason=reason, metadata=metadata)
        self.violations = list(violations)

    def extra_details(self) -> list[any_pb2.Any]:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description, reason=v.reason
                )
                for v in self.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        return [packed]


class NotFound(DomainError):
    """The named resource does not exist."""

    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    """A resource with that identity exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """The system is not in the state the operation needs (e.g. insufficient balance)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A concurrency conflict; the client may retry the whole operation."""

    code = grpc.StatusCode.ABORTED
    default_reason = "ABORTED"


class Unauthenticated(DomainError):
    """The caller's credentials (a token, a webhook signature) are missing or wrong (HTTP 401)."""

    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    """The caller may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class ResourceExhausted(DomainError):
    """A quota or rate limit was hit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    """A dependency (TRON node, database, another service) cannot be reached; retryable."""

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class DeadlineExceeded(DomainError):
    """A dependency did not answer in time."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    default_reason = "DEADLINE_EXCEEDED"


class Unimplemented(DomainError):
    """The RPC exists in the contract but is not implemented yet."""

    code = grpc.StatusCode.UNIMPLEMENTED
    default_reason = "NOT_IMPLEMENTED"


def error_domain(service: str) -> str:
    """ErrorInfo.domain of a service ('tron_client' -> 'tron-client.tronpay.example')."""
    return service.replace("_", "-") + DOMAIN_SUFFIX


def to_status(err: DomainError, service: str) -> grpc.Status:
    """The gRPC status (code, message, rich-details trailer) for a domain error."""
    info = any_pb2.Any()
    info.Pack(
        error_details_pb2.ErrorInfo(reason=err.reason, domain=error_domain(service), metadata=err.metadata)
    )
    rich = status_pb2.Status(
        code=err.code.value[0], message=err.message, details=[info, *err.extra_details()]
    )
    return rpc_status.to_status(rich)


def internal_status() -> grpc.Status:
    """INTERNAL with a generic message: internals never leave the process."""
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message="internal error"))


def status_from_error(err: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The rich google.rpc.Status of a failed call, read from `grpc-status-details-bin` (or None)."""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None
