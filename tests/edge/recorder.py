"""A stand-in upstream for edge tests: one gRPC server that answers every method and records what arrived.

Every RPC gets an empty message (valid for any response type, so REST calls answer 200 ``{...}`` with the
defaults) and the call's method, metadata and request bytes are kept, so a test can tell exactly which
requests the edge let through, with which identity metadata and body. grpc.health.v1 checks answer
SERVING and are not recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2

from tests.harness.pki import credentials

HEALTH_CHECK = "/grpc.health.v1.Health/Check"


@dataclass(frozen=True)
class Call:
    """One request that reached the upstream."""

    method: str
    metadata: dict[str, str]
    request: bytes = b""  # the serialized request message, as it arrived

    @property
    def request_id(self) -> str:
        return self.metadata.get("x-request-id", "")


@dataclass
class Recorder:
    """The calls seen so far (thread-safe)."""

    port: int = 0
    _calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def with_request_id(self, request_id: str) -> list[Call]:
        """The calls that carried ``x-request-id: request_id`` (Envoy's id for one request)."""
        return [c for c in self.calls if c.request_id == request_id]


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        metadata = {k: v for k, v in handler_call_details.invocation_metadata if isinstance(v, str)}
        if method == HEALTH_CHECK:
            serving = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
            return grpc.unary_unary_rpc_method_handler(lambda _req, _ctx: serving.SerializeToString())

        def answer(request: bytes, _context: grpc.ServicerContext) -> bytes:
            self.recorder.add(Call(method, metadata, request))
            return b""

        return grpc.unary_unary_rpc_method_handler(answer)


@contextmanager
def recording_upstream(identity: str = "recorder") -> Iterator[Recorder]:
    """Run a recorder on a free loopback port until the block ends (presenting `identity`'s certificate:
    by default one naming all six services)."""
    recorder = Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((_Handler(recorder),))
    # Mutual TLS like a service, with a certificate naming all six services (Envoy checks the SAN).
    recorder.port = server.add_secure_port("127.0.0.1:0", credentials(identity).server())
    server.start()
    try:
        yield recorder
    finally:
        server.stop(grace=None).wait(5)
