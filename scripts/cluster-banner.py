"""`make up` helper: wait until the cluster is ready, print its addresses and the devnet accounts, then idle.

It stays alive (honcho stops everything when one process exits) and never fails the cluster: if a
part is not ready in time it says which and keeps waiting.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.settings import ServiceName, Settings, parse_settings
from tools import devtoken

# The ports (*_PORT variables and defaults) every service reads: the shared Settings, not one service's own,
# so a bad variable only one service reads does not stop the banner.
SETTINGS = parse_settings(Settings, SERVICE_NAME=ServiceName.TRON_CLIENT)
SERVICES = tuple(ServiceName)
EDGE_PORT = int(os.environ.get("EDGE_PORT", "8080"))
MONGO_PORT = int(os.environ.get("MONGO_PORT", "27017"))
DEVNET_PORT = int(os.environ.get("DEVNET_PORT", "8091"))
ACCOUNTS = Path(os.environ.get("DEVNET_DATA", ".data/devnet")) / "accounts.json"
ADMIN_TOKEN_TTL = 24 * 3600


def _admin_token() -> str | None:
    """An admin token from the development key (tools/devtoken.py), or None when the edge trusts another
    JWKS (EDGE_JWKS_FILE / EDGE_JWKS_URI): then tokens come from that identity provider."""
    if os.environ.get("EDGE_JWKS_FILE") or os.environ.get("EDGE_JWKS_URI"):
        return None
    audience = (os.environ.get("EDGE_JWT_AUDIENCES") or devtoken.DEFAULT_AUDIENCE).split(",")[0].strip()
    return str(
        devtoken.load_or_create().token(
            subject="admin",
            roles=["admin"],
            issuer=os.environ.get("EDGE_JWT_ISSUER") or devtoken.DEFAULT_ISSUER,
            audience=audience,
            ttl_seconds=ADMIN_TOKEN_TTL,
        )
    )


def _port(name: ServiceName) -> int:
    return SETTINGS.port_of(name)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _health_port(name: ServiceName) -> int:
    return parse_settings(Settings, SERVICE_NAME=name).health_port


def _serving(port: int) -> bool:
    """SERVING on the plaintext health-only port (every other RPC needs a mesh certificate)."""
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
    out += [f"{n.value} :{_port(n)}" for n in SERVICES if not _serving(_health_port(n))]
    if not _listening(EDGE_PORT):
        out.append(f"envoy :{EDGE_PORT}")
    return out


def _rest_height(token: str | None) -> str:
    path = "/api/v1/tron/network/height"
    url = f"http://127.0.0.1:{EDGE_PORT}{path}"
    conn = http.client.HTTPConnection("127.0.0.1", EDGE_PORT, timeout=5)
    try:
        conn.request("GET", path, headers={"authorization": f"Bearer {token}"} if token else {})
        resp = conn.getresponse()
        return f"GET {url} -> {resp.status} {resp.read().decode()[:200]}"
    except Exception as exc:  # the banner reports, it never fails the cluster
        return f"GET {url} -> {exc}"
    finally:
        conn.close()


def banner() -> str:
    try:
        token = _admin_token()
    except Exception as exc:  # the banner reports, it never fails the cluster
        token, token_note = None, f"  admin token unavailable: {exc}"
    else:
        token_note = (
            f"  admin token (24 h; `make token ROLE=... SUBJECT=... TENANT=...` for others):\n    {token}"
            if token
            else "  tokens: from the identity provider the edge trusts (EDGE_JWKS_FILE / EDGE_JWKS_URI)"
        )
    lines = [
        "",
        "=" * 78,
        "TRON payment cluster is up",
        f"  REST     http://127.0.0.1:{EDGE_PORT}/api/v1/...   (e.g. /api/v1/tron/network/info)",
        f"  gRPC     127.0.0.1:{EDGE_PORT} through Envoy (native gRPC, same listener)",
    ]
    lines += [
        f"  {n.value:<16} grpc 127.0.0.1:{_port(n)} (mTLS)  metrics :{_port(n) + 1000}"
        f"  health :{_health_port(n)}"
        for n in SERVICES
    ]
    lines += [
        f"  devnet   http://127.0.0.1:{DEVNET_PORT}",
        f"  mongodb  mongodb://127.0.0.1:{MONGO_PORT}/ (FerretDB)",
    ]
    lines += ["", token_note, "", "  " + _rest_height(token), ""]
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
    with contextlib.suppress(KeyboardInterrupt):
        main()
