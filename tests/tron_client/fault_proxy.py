"""A second, faulty endpoint of the SAME devnet chain: an HTTP reverse proxy running the devnet's own fault
middleware and /devnet/faults API (devnet/control.py) in front of an upstream devnet.

Two devnet processes would be two different chains (a transaction built on one fails TAPOS on the other),
so a pool test needs two URLs of one chain, one of them faulty: this proxy. It also records the
TRON-PRO-API-KEY header it receives, so tests can check per-node API keys.

Run: `python -m tests.tron_client.fault_proxy --upstream URL --port N`; `FaultProxy` starts it as a
subprocess.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.harness.net import free_port

ROOT = Path(__file__).resolve().parents[2]


def build_app(upstream: str) -> Any:
    import aiohttp
    from aiohttp import web

    from devnet import control

    app = web.Application(middlewares=[control.fault_middleware])
    app[control.FAULTS_KEY] = control.Faults()
    seen_keys: list[str] = []

    async def keys(request: web.Request) -> web.Response:
        return web.json_response({"keys": sorted(set(seen_keys))})

    async def forward(request: web.Request) -> web.Response:
        if "TRON-PRO-API-KEY" in request.headers:
            seen_keys.append(request.headers["TRON-PRO-API-KEY"])
            del seen_keys[:-100]
        session: aiohttp.ClientSession = request.app["session"]
        async with session.request(
            request.method,
            upstream + request.path_qs,
            data=await request.read(),
            headers={"Content-Type": "application/json"},
        ) as resp:
            return web.Response(body=await resp.read(), status=resp.status, content_type="application/json")

    async def on_startup(app: web.Application) -> None:
        app["session"] = aiohttp.ClientSession()

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_route("GET", "/devnet/faults", control._wrap(control.faults))
    app.router.add_route("POST", "/devnet/faults", control._wrap(control.faults))
    app.router.add_route("DELETE", "/devnet/faults", control._wrap(control.faults))
    app.router.add_get("/devnet/proxy-keys", keys)
    app.router.add_route("*", "/{tail:(wallet|walletsolidity)/.*}", forward)
    return app


async def _serve(upstream: str, port: int) -> None:
    from aiohttp import web

    runner = web.AppRunner(build_app(upstream), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


class FaultProxy:
    """The proxy as a subprocess; `set_faults`/`clear_faults` take the devnet's FaultConfig fields."""

    def __init__(self, upstream: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.tron_client.fault_proxy",
                "--upstream",
                upstream,
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/devnet/faults", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    out = self.proc.stdout.read() if self.proc.stdout else b""
                    raise RuntimeError(f"fault proxy exited: {out!r}") from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("fault proxy did not start")

    def set_faults(self, **cfg: Any) -> dict[str, Any]:
        resp = httpx.post(self.url + "/devnet/faults", json=cfg, timeout=5)
        resp.raise_for_status()
        return dict(resp.json())

    def clear_faults(self) -> dict[str, Any]:
        resp = httpx.delete(self.url + "/devnet/faults", timeout=5)
        resp.raise_for_status()
        return dict(resp.json())

    def counts(self) -> dict[str, int]:
        return dict(httpx.get(self.url + "/devnet/faults", timeout=5).json()["counts"])

    def seen_api_keys(self) -> list[str]:
        return list(httpx.get(self.url + "/devnet/proxy-keys", timeout=5).json()["keys"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    asyncio.run(_serve(args.upstream.rstrip("/"), args.port))
