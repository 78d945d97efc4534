"""gRPC server reflection, by caller: the edge sees the cluster's public API, the mesh sees this service.

Through the edge (grpcurl `list` / `describe` against :8080) a client may discover every public RPC of the
six services and nothing internal: Envoy sends reflection to any one service, and for the edge's
certificate every service answers from the same catalogue, a descriptor pool of the public services whose
methods are only those of services.common.access.PUBLIC (internal RPCs such as RequestEnergy are cut out
of their service descriptors; their messages stay, as field types may share them). Any other peer of the
mesh (an operator tool, another service) gets the service's own contract, health, reflection and audit,
as grpc_reflection serves them by default.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer
from grpc_reflection.v1alpha.reflection import SERVICE_NAME

from services.common import access, tls
from services.common.settings import ServiceName


@functools.cache
def public_catalogue() -> tuple[descriptor_pool.DescriptorPool, tuple[str, ...]]:
    """The pool of the public API and the names of its services (those with at least one public RPC)."""
    for name in ServiceName:  # load every service's descriptors into the default pool
        importlib.import_module(f"tronpay.{name.value}.v1.{name.value}_pb2")
    default = descriptor_pool.Default()
    public: dict[str, set[str]] = {}
    for rpc in access.PUBLIC:
        service, _, method = rpc.partition("/")
        public.setdefault(service, set()).add(method)
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: Any) -> None:
        if file.name in added:
            return
        for dep in file.dependencies:
            add(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        for service in proto.service:
            methods = public.get(f"{proto.package}.{service.name}", set())
            kept = [m for m in service.method if m.name in methods]
            del service.method[:]
            service.method.extend(kept)
        kept_services = [s for s in proto.service if s.method]
        del proto.service[:]
        proto.service.extend(kept_services)
        pool.AddSerializedFile(proto.SerializeToString())
        added.add(file.name)

    for service in sorted(public):
        add(default.FindServiceByName(service).file)
    return pool, tuple(sorted(public))


class ReflectionByCaller(reflection_pb2_grpc.ServerReflectionServicer):
    """The edge's certificate gets the public catalogue; every other peer this service's own services."""

    def __init__(self, own_services: Sequence[str]) -> None:
        pool, names = public_catalogue()
        self._public = ReflectionServicer([*names, SERVICE_NAME], pool=pool)
        self._own = ReflectionServicer(own_services)

    async def ServerReflectionInfo(  # noqa: N802 - the gRPC method name
        self,
        request_iterator: AsyncIterator[reflection_pb2.ServerReflectionRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[reflection_pb2.ServerReflectionResponse]:
        chosen = self._public if tls.peer_of(context) is access.Peer.EDGE else self._own
        async for response in chosen.ServerReflectionInfo(request_iterator, context):
            yield response


def add_to_server(contract: Sequence[str], server: grpc.aio.Server) -> None:
    """Serve reflection on `server`: the catalogue to the edge; to everyone else `contract` (the service's
    own gRPC services), health and reflection."""
    own = [*contract, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, SERVICE_NAME]
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(ReflectionByCaller(own), server)
