"""grpc.aio server bootstrap shared by the six processes.

Start-up: parse settings (exit 2 with one line on bad values), JSON logging, build the servicers,
register library health (NOT_SERVING until MongoDB answers and the service's indexes exist) and
reflection, bind, serve metrics. A watcher keeps health in step with MongoDB reachability.
Shutdown on SIGTERM/SIGINT: health -> NOT_SERVING (load balancers stop sending), wait the drain
delay, stop the server with a grace period for in-flight RPCs, then close clients and Mongo.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common import errors
from services.common.clients import ServiceClients
from services.common.interceptors import ServerInterceptor
from services.common.logging import get_logger, setup_logging
from services.common.metrics import start_metrics_server
from services.common.mongo import IndexSpec, ServiceDatabase
from services.common.settings import ServiceName, Settings, load_settings

log = get_logger("services.server")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class Registration:
    """One gRPC service to serve: its servicer, the generated add_*_to_server, its full name."""

    servicer: object
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    full_name: str


@dataclass
class Runtime:
    """What a service's build function gets: settings, its database view, internal clients."""

    settings: Settings
    db: ServiceDatabase
    clients: ServiceClients
    _on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def on_stop(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` at shutdown, after the server stopped (close sessions, stop loops)."""
        self._on_stop.append(hook)


BuildFn = Callable[[Runtime], Awaitable[Sequence[Registration]]]


def with_unimplemented_defaults(cls: type) -> type:
    """Class decorator: RPCs the servicer does not override answer UNIMPLEMENTED, naming the method.

    The generated base methods are sync and say only 'Method not implemented!'.
    """
    base = next(b for b in cls.__mro__[1:] if b.__module__.endswith("_pb2_grpc"))
    for name, member in vars(base).items():
        if name.startswith("_") or not callable(member) or getattr(cls, name) is not member:
            continue

        def make(method: str) -> Callable[..., Awaitable[Any]]:
            async def unimplemented(self: Any, request: Any, context: Any) -> Any:
                raise errors.Unimplemented(f"not implemented yet: {method}", metadata={"method": method})

            unimplemented.__name__ = method
            return unimplemented

        setattr(cls, name, make(name))
    return cls


async def _wait_ready(rt: Runtime, indexes: Sequence[IndexSpec], stop: asyncio.Event) -> None:
    """Retry until MongoDB answers and the indexes exist (the server already accepts connections)."""
    delay = 0.2
    while not stop.is_set():
        try:
            await rt.db.ping()
            await rt.db.bootstrap(indexes)
            return
        except Exception as exc:  # unreachable DB or a bad index: stay NOT_SERVING, keep trying
            log.warning(
                "database not ready: %s", exc.__class__.__name__, extra={"fields": {"error": str(exc)}}
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, rt.settings.HEALTH_POLL_SECONDS)


async def _watch_health(
    rt: Runtime,
    hs: health.aio.HealthServicer,
    names: Sequence[str],
    indexes: Sequence[IndexSpec],
    stop: asyncio.Event,
) -> None:
    await _wait_ready(rt, indexes, stop)
    current = None
    while not stop.is_set():
        try:
            await rt.db.ping()
            status = SERVING
        except Exception:  # reported through health, not as a crash
            status = NOT_SERVING
        if status != current and not stop.is_set():
            for name in ("", *names):
                await hs.set(name, status)
            log.info("health %s", health_pb2.HealthCheckResponse.ServingStatus.Name(status))
            current = status
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rt.settings.HEALTH_POLL_SECONDS)


async def serve(settings: Settings, build: BuildFn, indexes: Sequence[IndexSpec] = ()) -> None:
    """Run one service until SIGTERM/SIGINT, then drain and stop."""
    name = settings.SERVICE_NAME
    rt = Runtime(settings=settings, db=ServiceDatabase.connect(settings), clients=ServiceClients(settings))
    server = grpc.aio.server(
        interceptors=[ServerInterceptor(name.value)],
        options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 8 * 1024 * 1024)],
    )
    regs = await build(rt)
    for reg in regs:
        reg.add_to_server(reg.servicer, server)
    names = [r.full_name for r in regs]
    hs = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    for n in ("", *names):
        await hs.set(n, NOT_SERVING)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    address = f"{settings.BIND_HOST}:{settings.port}"
    try:
        server.add_insecure_port(address)
    except RuntimeError:
        log.error("cannot listen on %s (port in use?)", address)
        raise SystemExit(1) from None
    await server.start()
    start_metrics_server(settings.metrics_port, settings.BIND_HOST)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_health(rt, hs, names, indexes, stop))
    log.info(
        "serving %s on %s",
        name.dashed,
        address,
        extra={
            "fields": {
                "grpc_services": names,
                "metrics_port": settings.metrics_port,
                "network": settings.TRON_NETWORK.value,
            }
        },
    )
    await stop.wait()

    log.info("draining")
    await hs.enter_graceful_shutdown()
    await asyncio.sleep(settings.SHUTDOWN_DRAIN_SECONDS)
    await server.stop(settings.SHUTDOWN_GRACE_SECONDS)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    for hook in rt._on_stop:
        await hook()
    await rt.clients.close()
    await rt.db.close()
    log.info("stopped")


def run(service: ServiceName, build: BuildFn, indexes: Sequence[IndexSpec] = ()) -> None:
    """Entry point of `python -m services.<name>`."""
    settings = load_settings(service)
    setup_logging(service.dashed, "DEBUG" if settings.DEBUG else settings.LOG_LEVEL)
    try:
        asyncio.run(serve(settings, build, indexes))
    except KeyboardInterrupt:  # a second Ctrl-C during drain
        sys.exit(130)


__all__ = ["Registration", "Runtime", "run", "serve", "with_unimplemented_defaults"]
