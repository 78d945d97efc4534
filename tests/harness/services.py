"""pytest plugin: the six services as real subprocesses (`python -m services.<name>`) on free ports.

Fixtures:
  service_factory (function) -> ServiceFactory: `start(*names, node_url=..., env=...)` returns a Cluster
      whose processes are stopped at test end. Every start gets its own database in the session's FerretDB.
  cluster (session) -> Cluster: all six services against the session FerretDB and the `devnet` fixture.
A Cluster maps service name -> ServiceProcess (`.target`, `.port`, `.channel()`, `.stop()`, `.start()`,
`.restart()`, `.log()`); all processes share one environment, so they dial each other on their ports, over
mutual TLS with the run's development certificates (tests/harness/pki.py). `.channel()` talks as the edge
for an admin token by default; `.channel(identity="usdt-manager")` as that service.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.server import ServiceSpec
from services.common.settings import ServiceName
from tests.harness.ferretdb import FerretDB
from tests.harness.net import free_port
from tests.harness.pki import channel as pki_channel
from tests.harness.pki import pki_dir

REPO = Path(__file__).resolve().parents[2]
SERVICES = tuple(s.value for s in ServiceName)
UNREACHABLE_NODE = "http://127.0.0.1:9"  # discard port: for tests that never reach the node


def service_specs() -> list[ServiceSpec[Any]]:
    """Each service's declaration (services/<name>/service.py SERVICE), in ServiceName order."""
    return [importlib.import_module(f"services.{name}.service").SERVICE for name in SERVICES]


def _serving(target: str, service: str, timeout: float = 1.0) -> bool:
    with pki_channel(target, service, identity="operator", roles=()) as ch:
        try:
            resp = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)


@dataclass
class ServiceProcess:
    """One service subprocess; its stdout/stderr (JSON logs) go to log_path."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        """host:port to dial."""
        return f"127.0.0.1:{self.port}"

    @property
    def health_target(self) -> str:
        """host:port of the plaintext health-only listener (grpc.health.v1 and nothing else)."""
        return f"127.0.0.1:{self.env['HEALTH_PORT']}"

    @property
    def peer(self) -> str:
        """The service's certificate identity (its dashed name)."""
        return self.name.replace("_", "-")

    def start(self, wait: bool = True, timeout: float = 30.0) -> None:
        """Spawn the process; with wait, block until it reports SERVING on grpc.health.v1."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_serving(timeout)

    def wait_serving(self, timeout: float = 30.0) -> None:
        """Block until SERVING, or raise with the log tail when the process died or timed out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log()[-3000:]}"
                )
            if _serving(self.target, self.peer):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not SERVING after {timeout}s:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (graceful drain), SIGKILL if it overstays; returns the exit code."""
        proc, self.process = self.process, None
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        return int(proc.returncode)

    def restart(self) -> None:
        """Stop, then start again on the same port, env and database."""
        self.stop()
        self.start()

    def channel(self, identity: str = "edge", **identity_metadata: Any) -> grpc.Channel:
        """A new sync mutual-TLS channel to the service as `identity` (default: the edge for an admin token;
        roles=, subject=, tenant= change the end user; close it, or use it as a context manager)."""
        return pki_channel(self.target, self.peer, identity=identity, **identity_metadata)

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Cluster:
    """Services started together with one shared environment."""

    env: dict[str, str]
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.processes[name]

    def stop(self) -> None:
        """Stop every process."""
        for proc in self.processes.values():
            proc.stop()


def cluster_env(
    ferretdb: FerretDB, db_name: str, node_url: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """Environment for services: fresh ports for all six, FerretDB, the node URL, fast drain."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_PORT", "_HOST"))}
    env.update(
        PYTHONPATH=os.pathsep.join(
            p for p in [str(REPO / "gen"), str(REPO), os.environ.get("PYTHONPATH")] if p
        ),
        TRON_NETWORK="devnet",
        TRON_NODE_URL=node_url,
        MONGODB_URI=ferretdb.uri,
        PAYMENT_DB_NAME=db_name,
        SHUTDOWN_DRAIN_SECONDS="0.1",
        SHUTDOWN_GRACE_SECONDS="2",
        PYTHONUNBUFFERED="1",
        TLS_DIR=str(pki_dir()),
    )
    for name in SERVICES:
        env[f"{name.upper()}_PORT"] = str(free_port())
    env.update(extra or {})
    return env


class ServiceFactory:
    """Starts services for one test and stops them at its end."""

    def __init__(self, ferretdb: FerretDB, log_dir: Path) -> None:
        self._ferretdb, self._log_dir = ferretdb, log_dir
        self._clusters: list[Cluster] = []

    def start(
        self,
        *names: str,
        node_url: str = UNREACHABLE_NODE,
        env: dict[str, str] | None = None,
        db_name: str | None = None,
        wait: bool = True,
    ) -> Cluster:
        """Start the named services (all six when none are named) in parallel and wait for SERVING."""
        chosen: Iterable[str] = names or SERVICES
        cluster = Cluster(cluster_env(self._ferretdb, db_name or self._ferretdb.db_name(), node_url, env))
        self._clusters.append(cluster)
        for name in chosen:
            penv = {**cluster.env, "METRICS_PORT": str(free_port()), "HEALTH_PORT": str(free_port())}
            log = self._log_dir / f"{name}-{cluster.env[f'{name.upper()}_PORT']}.log"
            proc = ServiceProcess(name, int(cluster.env[f"{name.upper()}_PORT"]), penv, log)
            cluster.processes[name] = proc
            proc.start(wait=False)
        if wait:
            try:
                for proc in cluster.processes.values():
                    proc.wait_serving(60)
            except BaseException:
                cluster.stop()  # a fixture that fails before yielding gets no teardown
                raise
        return cluster

    def close(self) -> None:
        """Stop everything this factory started."""
        for cluster in self._clusters:
            cluster.stop()


@pytest.fixture
def service_factory(ferretdb: FerretDB, tmp_path: Path) -> Iterator[ServiceFactory]:
    """Start services as subprocesses for one test."""
    factory = ServiceFactory(ferretdb, tmp_path)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def cluster(ferretdb: FerretDB, devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """All six services for the session, against the session FerretDB and devnet."""
    factory = ServiceFactory(ferretdb, tmp_path_factory.mktemp("services"))
    try:
        yield factory.start(node_url=devnet.url)
    finally:
        factory.close()
