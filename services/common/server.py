"""grpc.aio server bootstrap shared by the six processes.

A service declares itself once, in services/<name>/service.py, as a `ServiceSpec`: its settings class,
its build function (servicers from a `Runtime`), its indexes and whether it is finished; its __main__
calls `run(SERVICE)`.

Start-up: parse the service's settings and read its TLS identity (exit 2 with one line on bad values or
missing certificates), JSON logging, build the servicers and register the whole contract
(services.common.contract), library health (NOT_SERVING until MongoDB answers and the indexes exist: the
service's and the idempotency store's) and reflection, bind with mutual TLS (services.common.tls; the
interceptor authorises each call by the peer's certificate), serve health alone in plaintext for probes
and metrics. A watcher keeps health in step with MongoDB reachability; another sweeps request records
past their retention. Shutdown on SIGTERM/SIGINT: health -> NOT_SERVING (load balancers stop sending),
wait the drain delay, stop the server with a grace period for in-flight RPCs, wait for idempotent first
attempts still running, then close clients and Mongo.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common import audit, audit_rpc, idempotency, reflection, tls, tracing
from services.common.clients import ServiceClients
from services.common.contract import registrations
from services.common.interceptors import ServerInterceptor
from services.common.logging import get_logger, setup_logging
from services.common.metrics import start_metrics_server
from services.common.mongo import IndexSpec, ServiceDatabase
from services.common.settings import ServiceName, Settings, load_settings

log = get_logger("services.server")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SWEEP_SECONDS = 3600.0  # request records past retention are deleted about this often

S = TypeVar("S", bound=Settings)


@dataclass
class Runtime(Generic[S]):
    """What a service's build function gets: its settings, its database view, internal clients, the
    idempotency store its `@idempotent` RPCs use and its audit log (docs/audit.md)."""

    settings: S
    db: ServiceDatabase
    clients: ServiceClients
    idempotency: idempotency.IdempotencyStore
    audit: audit.AuditLog
    _on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def on_stop(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` at shutdown, after the server stopped (close sessions, stop loops)."""
        self._on_stop.append(hook)


@dataclass(frozen=True)
class ServiceSpec(Generic[S]):
    """One service: what `run` needs to serve it.

    `build` returns the servicers of its contract (every gRPC service in tronpay.<name>.v1). A finished
    service implements every RPC there (checked at start-up, by mypy and by tests); an unfinished one
    (`finished=False`) answers UNIMPLEMENTED, naming the method, for whatever it does not implement yet."""

    name: ServiceName
    settings: type[S]
    build: Callable[[Runtime[S]], Awaitable[Sequence[object]]]
    indexes: Sequence[IndexSpec] = ()
    finished: bool = True

    @property
    def all_indexes(self) -> tuple[IndexSpec, ...]:
        """The service's indexes and those of the stores the runtime gives every service."""
        return (*idempotency.INDEXES, *audit.INDEXES, *self.indexes)


async def _wait_ready(rt: Runtime[S], indexes: Sequence[IndexSpec], stop: asyncio.Event) -> None:
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
    rt: Runtime[S],
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


async def _sweep_requests(rt: Runtime[S], stop: asyncio.Event) -> None:
    """Delete request records past their retention about every SWEEP_SECONDS (each replica does it)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SWEEP_SECONDS)
        if stop.is_set():
            return
        try:
            swept = await rt.idempotency.sweep()
        except Exception as exc:  # the database is down: health reports it; sweep again next time
            log.warning("request sweep failed: %s", exc.__class__.__name__)
            continue
        if swept:
            log.info("swept %d expired request records", swept)


async def _health_only_server(hs: health.aio.HealthServicer, host: str, port: int) -> grpc.aio.Server | None:
    """grpc.health.v1 and nothing else, in plaintext, for probes without a client certificate."""
    if port == 0:
        return None
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    try:
        server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        log.error("cannot listen on %s:%d for health (port in use?)", host, port)
        raise SystemExit(1) from None
    await server.start()
    return server


async def serve(spec: ServiceSpec[S], settings: S, credentials: tls.Credentials) -> None:
    """Run one service until SIGTERM/SIGINT, then drain and stop."""
    name = settings.SERVICE_NAME
    db = ServiceDatabase.connect(settings)
    rt = Runtime(
        settings,
        db,
        ServiceClients(settings, credentials),
        idempotency.IdempotencyStore(db),
        audit.AuditLog(db),
    )
    server = grpc.aio.server(
        interceptors=[ServerInterceptor(name.value, rt.audit)],
        options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 8 * 1024 * 1024)],
    )
    regs = registrations(name.value, await spec.build(rt), finished=spec.finished)
    for reg in regs:
        reg.add_to_server(reg.servicer, server)
    audit_rpc.add_to_server(audit_rpc.AuditServicer(rt.audit), server)  # every service's own log
    names = [*(r.full_name for r in regs), audit_rpc.SERVICE_NAME]
    hs = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    for n in ("", *names):
        await hs.set(n, NOT_SERVING)
    reflection.add_to_server(names, server)
    address = f"{settings.BIND_HOST}:{settings.port}"
    try:
        server.add_secure_port(address, credentials.server())
    except RuntimeError:
        log.error("cannot listen on %s (port in use?)", address)
        raise SystemExit(1) from None
    await server.start()
    health_server = await _health_only_server(hs, settings.BIND_HOST, settings.health_port)
    start_metrics_server(settings.metrics_port, settings.BIND_HOST)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # What start-up built lives as long as the process: frozen, a full collection no longer walks it (such a
    # walk is a stall of tens of milliseconds in the tail of every request's latency).
    gc.freeze()
    background = [
        asyncio.create_task(_watch_health(rt, hs, names, spec.all_indexes, stop)),
        asyncio.create_task(_sweep_requests(rt, stop)),
    ]
    log.info(
        "serving %s on %s",
        name.dashed,
        address,
        extra={
            "fields": {
                "grpc_services": names,
                "metrics_port": settings.metrics_port,
                "health_port": settings.health_port,
                "network": settings.TRON_NETWORK.value,
                "finished": spec.finished,
            }
        },
    )
    await stop.wait()

    log.info("draining")
    await hs.enter_graceful_shutdown()
    await asyncio.sleep(settings.SHUTDOWN_DRAIN_SECONDS)
    await server.stop(settings.SHUTDOWN_GRACE_SECONDS)
    if health_server is not None:
        await health_server.stop(0)
    # A mutation whose caller went away still runs to its end and stores its result before Mongo closes.
    await rt.idempotency.drain(settings.SHUTDOWN_GRACE_SECONDS)
    await rt.audit.drain(settings.SHUTDOWN_GRACE_SECONDS)
    for task in background:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for hook in rt._on_stop:
        await hook()
    await rt.clients.close()
    await rt.db.close()
    await asyncio.to_thread(tracing.shutdown)  # the spans still queued
    log.info("stopped")


def run(spec: ServiceSpec[S]) -> None:
    """Entry point of `python -m services.<name>`."""
    settings = load_settings(spec.name, spec.settings)
    try:
        credentials = tls.Credentials.load(settings.TLS_DIR, spec.name.dashed)
    except tls.TlsError as err:
        print(f"{spec.name.dashed}: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(spec.name.dashed, "DEBUG" if settings.DEBUG else settings.LOG_LEVEL)
    tracing.setup(spec.name.dashed, settings.OTEL_EXPORTER_OTLP_ENDPOINT)
    try:
        asyncio.run(serve(spec, settings, credentials))
    except KeyboardInterrupt:  # a second Ctrl-C during drain
        sys.exit(130)


__all__ = ["Runtime", "ServiceSpec", "run", "serve"]
