"""The Containerfile (no container engine here, so it is never built in CI): its shape, and its file
layout run for real: the paths it COPYs plus the locked environment installed as it installs it
(`uv sync --frozen --no-dev --no-editable`), outside the repository, serving all six services."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.settings import ServiceName
from tests.harness.ferretdb import FerretDB
from tests.harness.net import free_port
from tests.harness.pki import pki_dir
from tests.k8s.conftest import REPO_ROOT
from tests.k8s.test_manifests import public_services

CONTAINERFILE = REPO_ROOT / "Containerfile"


def stages() -> list[list[tuple[str, str]]]:
    """The Containerfile's stages as lists of (instruction, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    out: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            out.append([])
        out[-1].append((instruction.upper(), args.strip()))
    return out


def copies(stage: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(source, destination) of the stage's COPYs from the build context."""
    out = []
    for instruction, args in stage:
        if instruction == "COPY" and not args.startswith("--from"):
            *sources, dest = shlex.split(args)
            out += [(s, dest) for s in sources]
    return out


def test_containerfile_shape(builds: dict[str, list[dict[str, Any]]]) -> None:
    build, runtime = stages()
    python = (REPO_ROOT / "pyproject.toml").read_text()
    minor = tomllib.loads(python)["project"]["requires-python"].strip("=.*")  # "3.11"
    for stage in (build, runtime):
        image = stage[0][1].split()[0]
        # A pinned patch release of the project's Python, never a floating tag.
        assert re.fullmatch(rf"python:{re.escape(minor)}\.\d+-slim-\w+", image), image
    runs = " ".join(a for i, a in build if i == "RUN")
    uv_version = re.search(r"^UV_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert uv_version and f"uv=={uv_version.group(1)}" in runs  # the uv the Makefile installs
    assert "uv sync --frozen --no-dev" in runs
    assert ("COPY", "--from=build /app/.venv /app/.venv") in runtime
    user = [a for i, a in runtime if i == "USER"]
    assert user == ["10001:10001"]  # non-root, numeric (runAsNonRoot can check it)
    for docs in builds.values():
        for d in docs:
            if d["kind"] == "Deployment" and d["spec"]["template"]["spec"]["containers"][0][
                "image"
            ].startswith(("tronpay", "registry.example.com/tronpay/")):
                assert d["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
    for source, _ in copies(build) + copies(runtime):
        assert (REPO_ROOT / source).exists(), source


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/app as the Containerfile lays it out, in a temporary directory."""
    build, runtime = stages()
    base = tmp_path_factory.mktemp("image")
    context, app = base / "build", base / "app"
    for source, dest in copies(build):
        _copy(REPO_ROOT / source, context, dest)
    # The caller's environment (index, proxy and certificate settings) minus the active virtualenv.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    env |= {
        "UV_PROJECT_ENVIRONMENT": str(app / ".venv"),
        "UV_PYTHON_DOWNLOADS": "never",
        # The interpreter behind the project's .venv: the image's Python stands in for it.
        "UV_PYTHON": getattr(sys, "_base_executable", sys.executable),
    }
    subprocess.run(
        [*_uv(), "sync", "--frozen", "--no-dev", "--no-editable", "--quiet"],
        cwd=context,
        env=env,
        check=True,
        timeout=600,
    )
    for source, dest in copies(runtime):
        _copy(REPO_ROOT / source, app, dest)
    return app


def _copy(source: Path, workdir: Path, dest: str) -> None:
    """COPY semantics for the cases the Containerfile uses: a directory's contents into dest, a file into a
    dest directory (dest ending in /) or to dest."""
    target = workdir / dest.removeprefix("./")
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    else:
        if dest.endswith("/") or dest in (".", "./"):
            target = target / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


@pytest.fixture
def started(
    image_root: Path, ferretdb: FerretDB, tmp_path: Path
) -> Iterator[dict[ServiceName, tuple[int, subprocess.Popen[bytes]]]]:
    """The six services from the image layout (cwd /, PYTHONPATH=/app as in the image), on loopback, with
    the tests' mesh certificates; yields each one's plaintext health port (what the kubelet probes)."""
    ports = {s: free_port() for s in ServiceName}
    health_ports = {s: free_port() for s in ServiceName}
    env = {
        "PATH": f"{image_root / '.venv' / 'bin'}:/usr/bin:/bin",
        "PYTHONPATH": str(image_root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "BIND_HOST": "127.0.0.1",  # 0.0.0.0 in the pods; tests stay on loopback
        "METRICS_PORT": "0",
        "MONGODB_URI": ferretdb.uri,
        "PAYMENT_DB_NAME": ferretdb.db_name("image"),
        "TRON_NODE_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: health follows MongoDB only
        "TRON_SYNC_ENABLED": "false",
        "TLS_DIR": str(pki_dir()),
        **{f"{s.name}_PORT": str(p) for s, p in ports.items()},
    }
    procs: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as logs:  # the logs close once every process has stopped
        try:
            for service in ServiceName:
                log = logs.enter_context(open(tmp_path / f"{service.dashed}.log", "wb"))
                procs.append(
                    subprocess.Popen(
                        ["python", "-m", f"services.{service.value}"],
                        cwd="/",
                        env={**env, "HEALTH_PORT": str(health_ports[service])},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            yield {s: (health_ports[s], proc) for s, proc in zip(ServiceName, procs, strict=True)}
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


def test_the_image_layout_serves_the_six_services(
    started: dict[ServiceName, tuple[int, subprocess.Popen[bytes]]], image_root: Path, tmp_path: Path
) -> None:
    public = public_services()
    deadline = time.monotonic() + 90
    pending, exited = dict(started), {}
    while pending and time.monotonic() < deadline:
        for service, (health_port, proc) in list(pending.items()):
            if proc.poll() is not None:
                exited[service] = pending.pop(service)
                continue
            with grpc.insecure_channel(f"127.0.0.1:{health_port}") as channel:
                try:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(service=public[service.value]), timeout=2
                    )
                except grpc.RpcError:
                    continue
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                del pending[service]
        time.sleep(0.5)
    logs = {s.dashed: (tmp_path / f"{s.dashed}.log").read_text()[-1500:] for s in {**pending, **exited}}
    assert not pending and not exited, f"not SERVING from the image layout: {logs}"
    # The dev overlay runs the devnet from the same image; its genesis deploys USDT from contracts/artifacts.
    devnet = subprocess.run(
        [
            "python",
            "-c",
            "import json, devnet.__main__, devnet.genesis as g; json.loads(g.ARTIFACT.read_text())",
        ],
        cwd="/",
        env={"PATH": f"{image_root / '.venv' / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(image_root)},
        capture_output=True,
        timeout=60,
    )
    assert devnet.returncode == 0, devnet.stderr
