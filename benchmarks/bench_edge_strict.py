"""Benchmark the edge's strict JSON check: REST POSTs through Envoy with and without it, in one run.

Two Envoy edges, rendered from the same environment except ``EDGE_STRICT_JSON`` (on / off), stand in front of
one recording gRPC upstream (tests/edge/recorder.py: it answers every RPC with an empty message), so the
figures are the edge's own: JWT verification, the body check (on: envoy/strict_json.lua before the
transcoder and its guard after it), transcoding, RBAC, rate limiter, router. wrk (Debian package ``wrk``)
drives each edge in turn for a bounded duration per body, alternating on/off each round:

* ``wallet``: POST /api/v1/wallets, a typical CreateWallet body (a wallet with a signing policy, ~470 bytes);
* ``batch``: POST /api/v1/payouts/batch with ``--items`` recipients (1000 by default, ~110 KB): the
  parser's cost per byte;
* ``read``: GET /api/v1/wallets, no body: what the check costs every other request (a matcher skips the
  script without starting Lua; the guard is off on that route).

It prints req/s, latency percentiles and Envoy's CPU time per request (user + system time of the Envoy
process over the run, divided by the requests it answered: the cost that does not depend on which process
is the bottleneck on a shared machine), then the on/off ratios.

Usage: ``python benchmarks/bench_edge_strict.py [--duration 5] [--connections 32] [--rounds 2] [--items N]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "gen")]

from bench_edge import WRK_REPORT, ensure_wrk  # noqa: E402  (benchmarks/ is the script's directory)

ADDRESS = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"

#: wrk's request for a body: a POST of the file at BODY_FILE (replaced by its path; read once at start-up).
WRK_POST = """
local f = assert(io.open(BODY_FILE, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["content-type"] = "application/json"
"""


def wallet_body() -> dict[str, Any]:
    """A typical CreateWallet request: an HD wallet with a signing policy and two asset limits."""
    limit = {"per_transaction_limit": "1000000000", "daily_limit": "5000000000"}
    return {
        "request_id": "bench-strict-wallet-0001",
        "wallet": {
            "display_name": "treasury hot wallet",
            "owner_id": "merchant-0042",
            "kind": "KIND_HD",
            "labels": ["hot", "eu"],
            "policy": {
                "limits": [{"asset": "ASSET_TRX", **limit}, {"asset": "ASSET_USDT", **limit}],
                "allowed_destinations": [ADDRESS],
                "max_fee_limit_sun": "100000000",
            },
        },
    }


def batch_body(items: int) -> dict[str, Any]:
    """A CreatePayoutBatch request with `items` recipients."""
    return {
        "request_id": "bench-strict-batch-0001",
        "wallet_id": "w1",
        "asset": "ASSET_USDT",
        "items": [
            {"recipient_address": ADDRESS, "amount": str(1_000_000 + i), "reference": f"inv-{i:06d}"}
            for i in range(items)
        ],
    }


@dataclass
class Run:
    """One wrk run against one edge."""

    body: str
    strict: str
    requests: int
    duration_us: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    non2xx: int
    socket_errors: int
    envoy_cpu_s: float

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / (self.duration_us / 1e6)

    @property
    def cpu_us_per_request(self) -> float:
        """Envoy's CPU time per answered request, in microseconds."""
        return self.envoy_cpu_s * 1e6 / max(self.requests, 1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Case:
    """One kind of request: its path and JSON body (None: a GET)."""

    name: str
    path: str
    body: dict[str, Any] | None

    def script(self, workdir: Path) -> Path:
        """The wrk script sending this request (its body from a file) and printing the summary line."""
        path = workdir / f"{self.name}.lua"
        if self.body is None:
            path.write_text(WRK_REPORT)
            return path
        body = workdir / f"{self.name}.json"
        body.write_text(json.dumps(self.body))
        path.write_text(WRK_POST.replace("BODY_FILE", json.dumps(str(body))) + WRK_REPORT)
        return path


def run_wrk(
    wrk: str, script: Path, url: str, token: str, duration: float, args: argparse.Namespace
) -> dict[str, int]:
    """One wrk run; the summary line our `done` hook prints, parsed."""
    cmd = [
        wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-H",
        f"authorization: Bearer {token}",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    line = next((x for x in out.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    data: dict[str, int] = json.loads(line.removeprefix("WRK_JSON "))
    return data


@contextlib.contextmanager
def edges(workdir: Path, concurrency: int) -> Iterator[dict[str, Any]]:
    """The recording upstream and two edges in front of it: strict check on and off."""
    from tests.edge.recorder import recording_upstream
    from tests.harness.envoy import SERVICE_KEYS, start_edge

    with contextlib.ExitStack() as stack:
        recorder = stack.enter_context(recording_upstream())
        ports = {key: recorder.port for key in SERVICE_KEYS}
        started = {}
        for strict in ("on", "off"):
            started[strict] = stack.enter_context(
                start_edge(
                    ports,
                    workdir / f"edge-{strict}",
                    concurrency=concurrency,
                    extra_env={"EDGE_STRICT_JSON": strict, "EDGE_ACCESS_LOG": "off"},
                )
            )
        yield started


def main(argv: list[str] | None = None) -> int:
    """Start the upstream and both edges, run wrk on each body against each edge, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per edge and body")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: 2 cores shared)")
    parser.add_argument("--rounds", type=int, default=2, help="alternate on/off this many times")
    parser.add_argument("--items", type=int, default=1000, help="recipients in the batch body")
    parser.add_argument("--envoy-concurrency", type=int, default=1, help="Envoy worker threads")
    parser.add_argument("--report", type=Path, help="also write the key figures as JSON to this file")
    args = parser.parse_args(argv)

    from tests.edge.http import call
    from tests.harness.envoy import mint

    wrk = ensure_wrk()
    token = mint("admin", subject="bench-edge-strict", ttl_seconds=3600)
    cases = [
        Case("wallet", "/api/v1/wallets", wallet_body()),
        Case("batch", "/api/v1/payouts/batch", batch_body(args.items)),
        Case("read", "/api/v1/wallets?page_size=10", None),
    ]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-edge-strict-") as tmp_name:
        tmp = Path(tmp_name)
        scripts = {case.name: case.script(tmp) for case in cases}
        print("starting the recording upstream and two Envoy edges (strict JSON on, off) ...", flush=True)
        with edges(tmp, args.envoy_concurrency) as started:
            for case in cases:
                size = len(json.dumps(case.body)) if case.body else 0
                for strict, edge in started.items():
                    verb = "GET" if case.body is None else "POST"
                    headers = {"authorization": f"Bearer {token}"}
                    reply = call(edge.rest_url, verb, case.path, body=case.body, headers=headers)
                    print(
                        f"{case.name:6} strict {strict:3} {verb} {case.path} ({size} bytes) -> {reply.status}"
                    )
                    if reply.status != 200:
                        raise SystemExit(f"{case.path}: HTTP {reply.status} {reply.body[:300]!r}")
                    if args.warmup > 0:
                        run_wrk(wrk, scripts[case.name], edge.rest_url + case.path, token, args.warmup, args)
            for _ in range(args.rounds):
                for case in cases:
                    for strict, edge in started.items():
                        before = cpu_seconds(edge.process.pid)
                        url = edge.rest_url + case.path
                        data = run_wrk(wrk, scripts[case.name], url, token, args.duration, args)
                        used = cpu_seconds(edge.process.pid) - before
                        runs.append(Run(body=case.name, strict=strict, envoy_cpu_s=used, **data))

    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration:g}s x{args.rounds}, "
        f"Envoy concurrency {args.envoy_concurrency}, {os.cpu_count()} CPUs, upstream: the recorder"
    )
    titles = (("req/s", 9), ("p50 ms", 8), ("p99 ms", 8), ("cpu us/req", 11), ("non-2xx", 8), ("errors", 6))
    print(f"{'body':6} {'strict':6}" + "".join(f" {title:>{width}}" for title, width in titles))
    for r in runs:
        print(
            f"{r.body:6} {r.strict:6} {r.rps:9.0f} {r.p50_us / 1000:8.2f} {r.p99_us / 1000:8.2f} "
            f"{r.cpu_us_per_request:11.1f} {r.non2xx:8d} {r.socket_errors:6d}"
        )
    figures: dict[str, float] = {}
    for case in cases:
        mine = [r for r in runs if r.body == case.name]
        rps = {s: max(r.rps for r in mine if r.strict == s) for s in ("on", "off")}
        cpu = {s: min(r.cpu_us_per_request for r in mine if r.strict == s) for s in ("on", "off")}
        print(
            f"{case.name}: strict on/off throughput {rps['on'] / rps['off']:.2f}x "
            f"({rps['on']:.0f} vs {rps['off']:.0f} req/s); Envoy CPU per request "
            f"{cpu['on']:.0f} vs {cpu['off']:.0f} us ({cpu['on'] - cpu['off']:+.0f} us)"
        )
        figures[f"{case.name}_throughput_on_off"] = rps["on"] / rps["off"]
        figures[f"{case.name}_extra_cpu_us"] = cpu["on"] - cpu["off"]
        if case.body is not None:
            figures[f"{case.name}_extra_ns_per_byte"] = (
                (cpu["on"] - cpu["off"]) * 1000 / len(json.dumps(case.body))
            )
    if args.report:
        args.report.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
