"""Benchmark the Envoy edge: GET /api/v1/tron/network/height next to a trivial RPC, same Envoy, same run.

Both are REST GETs through the same Envoy (grpc_json_transcoder, HTTP/2 to the services), driven by wrk
(Debian package `wrk`, installed with apt-get when missing) on loopback for a bounded duration each:

* height: GET /api/v1/tron/network/height -> tron-client, which answers from its short cache of the
  devnet's head/solidified block (the real endpoint);
* trivial: a documented GET whose RPC does no I/O in its service (by default GET /api/v1/payments/{id}
  with an id its contract refuses: interceptor + validation + error mapping + Envoy's status conversion
  only, a 400);
* wallet: GET /api/v1/wallets/{id} -> wallet-manager, a MongoDB-backed read of a wallet the run creates
  through the edge first (issue 15's target: at least 0.5x the trivial RPC's throughput, p99 <= 50 ms at 32
  connections).

It prints req/s and latency percentiles of both and the ratios height/trivial. For scale it also
measures Envoy alone (``--no-envoy-only`` skips it): the same height path with an unknown query parameter,
which the transcoder rejects with a JSON 400 without calling any service.

By default it starts everything it needs on free loopback ports (FerretDB, the devnet, tron-client, the
trivial path's service, Envoy) and stops it afterwards. With ``--edge http://127.0.0.1:8080`` it uses a
running cluster (``make up``) instead.

Every request carries an admin bearer token, so the figures include the edge's JWT verification, RBAC and
rate limiter: minted with the test harness's key for the edge it starts (whose rate limits are raised out of
the way), with the development key (tools/devtoken.py) for ``--edge``; a ``make up`` edge keeps its default
limits (500 reads/s per instance) unless started with ``EDGE_RATE_LIMIT_READ_PER_SECOND``/``_BURST`` raised.

Usage: ``python benchmarks/bench_edge.py [--duration 5] [--connections 32] [--threads 2] [--edge URL]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "gen")]

HEIGHT_PATH = "/api/v1/tron/network/height"
#: A documented GET whose service does no I/O for it: the id fails its pattern (400 after validation).
TRIVIAL_PATH = "/api/v1/payments/-not-an-id-"
TRIVIAL_SERVICE = "payment_gateway"
#: Answered by Envoy itself (400, unknown query parameter): the edge's own ceiling on this machine.
ENVOY_ONLY_PATH = HEIGHT_PATH + "?no_such_parameter=1"

WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p90_us\\":%d,\\"p99_us\\":%d," ..
    "\\"max_us\\":%d,\\"non2xx\\":%d,\\"socket_errors\\":%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Result:
    """One wrk run."""

    name: str
    path: str
    status: int
    requests: int
    duration_us: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    non2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / (self.duration_us / 1e6)


def ensure_wrk() -> str:
    """The wrk binary; installs the Debian package when it is missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("wrk is not installed: sudo apt-get install -y wrk")
    print("installing wrk (apt-get) ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"],
        check=True,
        timeout=600,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get installed wrk but it is not on PATH")
    return found


#: The bearer token every request carries (set by main).
TOKEN = ""


def dev_token() -> str:
    """An admin token from the development key (tools/devtoken.py), for an edge started by `make up`."""
    from tools import devtoken

    return str(devtoken.load_or_create().token(subject="bench-edge", roles=["admin"]))


def create_wallet(base: str) -> str:
    """An HD wallet created through the edge; its id."""
    body = {
        "requestId": f"bench-edge-{time.time_ns()}",
        "wallet": {"ownerId": "bench-edge", "kind": "KIND_HD"},
    }
    request = urllib.request.Request(  # noqa: S310 - loopback URL we built
        base + "/api/v1/wallets",
        data=json.dumps(body).encode(),
        headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - loopback URL we built
        wallet_id: str = json.loads(reply.read())["wallet"]["walletId"]
    return wallet_id


def probe(url: str, timeout: float = 20.0) -> tuple[int, str]:
    """One GET with the token; returns (status, body)."""
    request = urllib.request.Request(url, headers={"authorization": f"Bearer {TOKEN}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 (loopback URL we built)
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")


def run_wrk(
    wrk: str, script: Path, name: str, base: str, path: str, duration: float, connections: int, threads: int
) -> Result:
    """Run wrk once against base+path and parse the JSON line our Lua `done` hook prints."""
    status, _ = probe(base + path)
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-H",
        f"authorization: Bearer {TOKEN}",
        "-s",
        str(script),
        base + path,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    line = next((x for x in out.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    return Result(name=name, path=path, status=status, **data)


@contextlib.contextmanager
def local_cluster(workdir: Path, trivial_service: str, envoy_concurrency: int) -> Iterator[str]:
    """FerretDB + devnet + tron-client, wallet-manager, the trivial path's service + Envoy on free ports;
    yields the URL."""
    from tests.harness.devnet import Devnet
    from tests.harness.envoy import start_edge
    from tests.harness.ferretdb import start_ferretdb, stop_ferretdb
    from tests.harness.services import ServiceFactory

    with contextlib.ExitStack() as stack:
        ferret = start_ferretdb(workdir / "ferretdb")
        stack.callback(stop_ferretdb, ferret)
        devnet = Devnet(workdir / "devnet").start()
        stack.callback(devnet.close)
        factory = ServiceFactory(ferret, workdir)
        stack.callback(factory.close)
        names = tuple(dict.fromkeys(["tron_client", "wallet_manager", trivial_service]))
        services = factory.start(*names, node_url=devnet.url)
        ports = {name: services[name].port for name in names}
        edge = stack.enter_context(
            start_edge(
                ports,
                workdir / "edge",
                wait_healthy=names,
                concurrency=envoy_concurrency,
                extra_env={"EDGE_ACCESS_LOG": str(workdir / "edge" / "access.log")},
            )
        )
        yield edge.rest_url


def main(argv: list[str] | None = None) -> int:
    """Parse options, set up (or reuse) the cluster, run wrk on both paths, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per path (default 1)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: 2 cores shared)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate height/trivial this many times")
    parser.add_argument("--edge", default=os.environ.get("BENCH_EDGE_URL"), help="use a running edge")
    parser.add_argument("--trivial-path", default=TRIVIAL_PATH)
    parser.add_argument("--trivial-service", default=TRIVIAL_SERVICE, help="service to start for it")
    parser.add_argument("--envoy-concurrency", type=int, default=1, help="Envoy worker threads")
    parser.add_argument(
        "--envoy-only", action=argparse.BooleanOptionalAction, default=True, help="also measure Envoy alone"
    )
    parser.add_argument("--report", type=Path, help="also write the key figures as JSON to this file")
    args = parser.parse_args(argv)

    wrk = ensure_wrk()
    paths = [("height", HEIGHT_PATH), ("trivial", args.trivial_path), ("wallet", "")]
    if args.envoy_only:
        paths.append(("envoy", ENVOY_ONLY_PATH))
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-edge-")))
        script = tmp / "report.lua"
        script.write_text(WRK_REPORT)
        global TOKEN
        if args.edge:
            base = args.edge.rstrip("/")
            TOKEN = dev_token()
        else:
            from tests.harness.envoy import mint

            TOKEN = mint("admin", subject="bench-edge", ttl_seconds=3600)
            print("starting FerretDB, devnet, services and Envoy on loopback ...", flush=True)
            base = stack.enter_context(local_cluster(tmp, args.trivial_service, args.envoy_concurrency))
        deadline = time.monotonic() + 30
        while (status := probe(base + HEIGHT_PATH))[0] != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"{HEIGHT_PATH} never answered 200: {status}")
            time.sleep(0.5)
        paths[2] = ("wallet", f"/api/v1/wallets/{create_wallet(base)}")
        for name, path in paths:
            status = probe(base + path)
            print(f"{name:8} {path} -> HTTP {status[0]} {status[1][:160]}")
            if status[0] == 404 or (name == "envoy" and status[0] != 400):
                raise SystemExit(f"{path}: unexpected HTTP {status[0]}")
        for name, path in paths:
            if args.warmup > 0:
                run_wrk(wrk, script, name, base, path, args.warmup, args.connections, args.threads)
        results: dict[str, list[Result]] = {name: [] for name, _ in paths}
        for _ in range(args.rounds):
            for name, path in paths:
                results[name].append(
                    run_wrk(wrk, script, name, base, path, args.duration, args.connections, args.threads)
                )

    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration:g}s x{args.rounds}, "
        f"Envoy concurrency {args.envoy_concurrency}, {os.cpu_count()} CPUs, {base}"
    )
    header = (
        ("HTTP", 4),
        ("req/s", 9),
        ("p50 ms", 8),
        ("p90 ms", 8),
        ("p99 ms", 8),
        ("non-2xx", 8),
        ("errors", 6),
    )
    print(" " * 8 + "".join(f" {title:>{width}}" for title, width in header))
    best: dict[str, Result] = {}
    for name in results:
        for r in results[name]:
            print(
                f"{name:8} {r.status:>4} {r.rps:9.0f} {r.p50_us / 1000:8.2f} {r.p90_us / 1000:8.2f} "
                f"{r.p99_us / 1000:8.2f} {r.non2xx:8d} {r.socket_errors:6d}"
            )
        best[name] = max(results[name], key=lambda r: r.rps)
    h, t = best["height"], best["trivial"]
    print(
        f"ratio height/trivial: throughput {h.rps / t.rps:.2f}x, p99 {h.p99_us / max(t.p99_us, 1):.2f}x "
        f"(height {h.rps:.0f} req/s p99 {h.p99_us / 1000:.1f} ms; trivial {t.rps:.0f} req/s "
        f"p99 {t.p99_us / 1000:.1f} ms)"
    )
    w = best["wallet"]
    print(
        f"ratio wallet/trivial: throughput {w.rps / t.rps:.2f}x (target >= 0.50), wallet p99 "
        f"{w.p99_us / 1000:.1f} ms (target <= 50 ms at 32 connections)"
    )
    if "envoy" in best:
        e = best["envoy"]
        print(f"Envoy alone (local 400): {e.rps:.0f} req/s p99 {e.p99_us / 1000:.1f} ms")
    if args.report:
        figures = {f"{name}_{key}": value for name, r in best.items()
                   for key, value in (("rps", r.rps), ("p99_ms", r.p99_us / 1000))}  # fmt: skip
        figures |= {"height_to_trivial": h.rps / t.rps, "wallet_to_trivial": w.rps / t.rps,
                    "connections": args.connections}  # fmt: skip
        args.report.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
