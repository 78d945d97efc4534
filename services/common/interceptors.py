"""The one server interceptor every service runs, applied to every RPC in this order:

1. call context: the peer's certificate identity (services.common.tls) and, from such a peer, the request
   id and end-user identity metadata into a contextvar (logs, outgoing calls, tenancy);
2. metrics for every RPC, and one JSON log line for each RPC that fails or changes state (its request has a
   request_id, which every mutating RPC has); successful reads log at DEBUG only, since the edge's access
   log already records every request and a line per read was a measurable part of a read's cost; with
   tracing on (services.common.tracing), a span of our own RPCs that continues the caller's traceparent;
3. authorization (services.common.access.decide): the edge only for public RPCs the token's roles allow,
   a service or tool only for its grants -> PERMISSION_DENIED naming the rule, logged as a security event;
4. request validation with protovalidate -> INVALID_ARGUMENT + google.rpc.BadRequest;
5. errors: DomainError -> its code + ErrorInfo; anything unexpected -> INTERNAL, generic message,
   stack trace in the server log only.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import protovalidate
from google.protobuf.message import Message
from pymongo.errors import ConnectionFailure

from services.common import access, context, errors, metrics, tls, tracing
from services.common.audit import AuditEvent, AuditLog, Outcome
from services.common.logging import get_logger

log = get_logger("services.rpc")

# Only our own contracts carry validation rules; health/reflection skip that step and log at DEBUG.
OWN_PREFIX = "/tronpay."


def _path(violation: protovalidate.Violation) -> str:
    """Dotted field path of a violation, with [index] / ["key"] subscripts."""
    parts: list[str] = []
    path = violation.proto.field
    for el in path.elements if path is not None else ():
        part = el.field_name
        sub = el.subscript  # protobuf-py Oneof(field, value) for repeated/map elements
        if sub is not None:
            part += f'["{sub.value}"]' if sub.field == "string_key" else f"[{sub.value}]"
        parts.append(part)
    return ".".join(parts)


def violations_of(validator: protovalidate.Validator, request: Message) -> list[errors.FieldViolation]:
    """protovalidate violations of a request, as field violations (empty when valid)."""
    out = []
    for v in validator.collect_violations(request):
        pb = v.proto
        out.append(errors.FieldViolation(field=_path(v), description=pb.message, reason=pb.rule_id))
    return out


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """See the module docstring."""

    def __init__(self, service: str, audit_log: AuditLog | None = None) -> None:
        self._service = service
        self._validator = protovalidate.Validator()
        self._audit = audit_log  # authorization failures are audit events

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        method: str = details.method
        md: Any = details.invocation_metadata
        own = method.startswith(OWN_PREFIX)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method, md, own),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(handler.unary_stream, method, md, own),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method, md, own, streaming_request=True),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._streaming(handler.stream_stream, method, md, own, streaming_request=True),
            handler.request_deserializer,
            handler.response_serializer,
        )

    # -- wrappers ---------------------------------------------------------------------------------

    def _validate(self, request: Any, own: bool) -> None:
        if own and isinstance(request, Message):
            found = violations_of(self._validator, request)
            if found:
                raise errors.InvalidArgument(
                    "invalid request: " + "; ".join(f"{v.field}: {v.description}" for v in found[:5]), found
                )

    def _requests(self, requests: AsyncIterator[Any], own: bool) -> AsyncIterator[Any]:
        async def checked() -> AsyncIterator[Any]:
            async for req in requests:
                self._validate(req, own)
                yield req

        return checked()

    def _unary(self, behavior: Any, method: str, md: Any, own: bool, streaming_request: bool = False) -> Any:
        async def wrapper(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with _Call(self, method, md, own, ctx) as call:
                await call.authorize()
                if streaming_request:
                    request = self._requests(request, own)
                else:
                    self._validate(request, own)
                    call.changes_state = changes_state(request)
                result = behavior(request, ctx)
                if inspect.isawaitable(result):
                    result = await result
                call.ok()
                return result

        return wrapper

    def _streaming(
        self, behavior: Any, method: str, md: Any, own: bool, streaming_request: bool = False
    ) -> Any:
        async def wrapper(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with _Call(self, method, md, own, ctx) as call:
                await call.authorize()
                if streaming_request:
                    request = self._requests(request, own)
                else:
                    self._validate(request, own)
                result = behavior(request, ctx)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                elif inspect.isawaitable(result):  # servicer wrote with ctx.write()
                    await result
                call.ok()

        return wrapper


def changes_state(request: Any) -> bool:
    """Whether a request is a mutation: every mutating RPC takes a request_id (a contract test checks it)."""
    return isinstance(request, Message) and "request_id" in request.DESCRIPTOR.fields_by_name


class _Call:
    """One RPC's context binding, metrics, access log and exception mapping."""

    changes_state = True  # until the request says otherwise (a streamed request is logged)

    def __init__(
        self,
        owner: ServerInterceptor,
        method: str,
        md: Any,
        own: bool,
        ctx: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        self._owner, self._method, self._own, self._ctx = owner, method, own, ctx
        self._md = md
        self._peer = tls.peer_of(ctx)
        self._call = context.from_metadata(md, method, self._peer)
        self._code = grpc.StatusCode.UNKNOWN
        self._svc, self._name = metrics.split_method(method)

    async def authorize(self) -> None:
        """PERMISSION_DENIED unless the peer (and, through the edge, the token's roles) may call this RPC."""
        denial = access.decide(self._method, self._peer, self._call.roles)
        if denial is None:
            return
        rpc = self._method.lstrip("/")
        log.warning(
            "denied %s: %s",
            rpc,
            denial.value,
            extra={"fields": {"security_event": "authorization_failure", "rule": denial.value}},
        )
        if self._owner._audit is not None:
            try:
                unknown = denial is access.Denial.NO_PEER_IDENTITY  # a certificate naming no peer
                await self._owner._audit.append(
                    AuditEvent.AUTHENTICATION_FAILED if unknown else AuditEvent.AUTHORIZATION_FAILED,
                    resource=rpc,
                    outcome=Outcome.DENIED,
                    details={"rule": denial.value},
                )
            except Exception as exc:  # the database is away: still a denial (the warning above stays)
                log.error("audit append failed: %s", exc.__class__.__name__)
        raise errors.PermissionDenied(
            f"{self._call.caller or 'an unidentified peer'} may not call {rpc} ({denial.value})",
            reason=denial.value,
            metadata={"method": rpc},
        )

    def ok(self) -> None:
        code = self._ctx.code()  # a servicer may have set one without raising
        self._code = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK

    async def __aenter__(self) -> _Call:
        self._token = context.bind(self._call)
        self._span = tracing.start_server_span(self._method, self._md)  # None unless tracing is on
        self._start = time.perf_counter()
        metrics.RPC_STARTED.labels(self._svc, self._name).inc()
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        try:
            if exc is not None:
                await self._handle(exc)
            return False
        finally:
            self._finish()

    async def _handle(self, exc: BaseException) -> None:
        if isinstance(exc, errors.DomainError):
            self._code = exc.code
            status = errors.to_status(exc, self._owner._service)
            await self._ctx.abort(status.code, status.details, status.trailing_metadata)
        elif isinstance(exc, grpc.aio.AbortError):  # the servicer aborted itself
            code = self._ctx.code()
            self._code = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
        elif isinstance(exc, asyncio.CancelledError):
            self._code = grpc.StatusCode.CANCELLED
        elif isinstance(exc, ConnectionFailure):  # the database is down (incl. selection timeouts): retryable
            down = errors.Unavailable("the database is unavailable", reason="DATABASE_UNAVAILABLE")
            await self._handle(down)
        elif isinstance(exc, Exception):
            self._code = grpc.StatusCode.INTERNAL
            log.error("unhandled exception in %s", self._method, exc_info=exc)
            status = errors.internal_status()
            await self._ctx.abort(status.code, status.details, status.trailing_metadata)

    def _finish(self) -> None:
        elapsed = time.perf_counter() - self._start
        code = self._code.name
        metrics.RPC_HANDLED.labels(self._svc, self._name, code).inc()
        metrics.RPC_SECONDS.labels(self._svc, self._name).observe(elapsed)
        fields = {"fields": {"grpc_code": code, "duration_ms": round(elapsed * 1000, 2)}}
        if self._own and (self._code is not grpc.StatusCode.OK or self.changes_state):
            log.info("rpc %s %s", self._method, code, extra=fields)
        else:
            log.debug("rpc %s %s", self._method, code, extra=fields)
        tracing.end_server_span(self._span, self._code)
        context.reset(self._token)
