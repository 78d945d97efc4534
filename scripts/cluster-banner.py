"""`make up` helper: wait until the cluster is ready, print its addresses and the devnet accounts, then idle.

It stays alive (honcho stops everything when one process exits) and never fails the cluster: if a
part is not ready in time it says which and keeps waiting.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.settings import ServiceName, Settings, parse_settings

# The ports (*_PORT variables and defaults) every service reads: the shared Settings, not one service's own,
# so a bad variable only one service reads does not stop the banner.
SETTINGS = parse_settings(Settings, SERVICE_NAME=ServiceName.TRON_CLIENT)
SERVICES = tuple(ServiceName)
EDGE_PORT = int(os.environ.get("EDGE_PORT", "8080"))
MONGO_PORT = int(os.environ.get("MONGO_PORT", "27017"))
DEVNET_PORT = int(os.environ.get("DEVNET_PORT", "8091"))
ACCOUNTS = Path(os.environ.get("DEVNET_DATA", ".data/devnet")) / "accounts.json"


def _port(name: ServiceName) -> int:
    return SETTINGS.port_of(name)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        try:
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)


def _pending() -> list[str]:
    out = [] if _listening(MONGO_PORT) else [f"ferretdb :{MONGO_PORT}"]
    if not (ACCOUNTS.exists() and _listening(DEVNET_PORT)):
        out.append(f"devnet :{DEVNET_PORT}")
    out += [f"{n.value} :{_port(n)}" for n in SERVICES if not _serving(_port(n))]
    if not _listening(EDGE_PORT):
        out.append(f"envoy :{EDGE_PORT}")
    return out


def _rest_height() -> str:
    url = f"http://127.0.0.1:{EDGE_PORT}/api/v1/tron/network/height"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - fixed loopback URL
            return f"GET {url} -> {resp.status} {resp.read().decode()[:200]}"
    except Exception as exc:  # the banner reports, it never fails the cluster
        return f"GET {url} -> {exc}"


def banner() -> str:
    lines = [
        "",
        "=" * 78,
        "TRON payment cluster is up",
        f"  REST     http://127.0.0.1:{EDGE_PORT}/api/v1/...   (e.g. /api/v1/tron/network/info)",
        f"  gRPC     127.0.0.1:{EDGE_PORT} through Envoy (native gRPC, same listener)",
    ]
    lines += [f"  {n.value:<16} grpc 127.0.0.1:{_port(n)}  metrics :{_port(n) + 1000}" for n in SERVICES]
    lines += [
        f"  devnet   http://127.0.0.1:{DEVNET_PORT}",
        f"  mongodb  mongodb://127.0.0.1:{MONGO_PORT}/ (FerretDB)",
    ]
    lines += ["", "  " + _rest_height(), ""]
    try:
        doc = json.loads(ACCOUNTS.read_text())
        lines.append(f"  devnet accounts (private keys in {ACCOUNTS}):")
        lines += [f"    {a['address']}" for a in doc.get("accounts", [])]
        lines += [f"    token {k}: {v}" for k, v in doc.get("tokens", {}).items()]
    except (OSError, ValueError, KeyError) as exc:
        lines.append(f"  devnet accounts unavailable: {exc}")
    lines += ["  Ctrl-C stops everything.", "=" * 78]
    return "\n".join(lines)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    start = time.monotonic()
    warned = 0.0
    while pending := _pending():
        if time.monotonic() - start > 60 and time.monotonic() - warned > 30:
            print(f"still waiting for: {', '.join(pending)}", flush=True)
            warned = time.monotonic()
        time.sleep(1)
    print(banner(), flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
