"""`tronpay sync status`: the TRON node and block sync as tron-client reports them, and how far behind.

GetNetworkStatus (public, any role) gives the head, solidified and sync blocks and the lag; `--watch`
polls it with a live progress bar of the sync cursor catching up with the head and an ETA from the observed
catch-up rate. History rescans (WatchAddresses with a start block) report their progress only in
tron-client's Prometheus metrics (tron_rescan_pending_blocks, tron_rescan_jobs_open,
tron_rescan_blocks_total), not in any RPC: `--metrics-url` reads them from tron-client's metrics port
(its gRPC port + 1000, 9085 by default) and adds a rescan bar with its own ETA.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import click
from prometheus_client.parser import text_string_to_metric_families
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn
from tronpay.tron_client.v1 import tron_client_pb2 as pb
from tronpay.tron_client.v1 import tron_client_pb2_grpc as pb_grpc

from tronpay_cli import output
from tronpay_cli.base import command
from tronpay_cli.connection import App
from tronpay_cli.errors import ExitCode

RESCAN_METRICS = {
    "tron_rescan_pending_blocks": "pendingBlocks",
    "tron_rescan_jobs_open": "openJobs",
    "tron_rescan_blocks_total": "blocksRead",
}
RATE_WINDOW_SECONDS = 60.0


@click.group("sync")
def sync() -> None:
    """TRON node and block sync: status, backfill progress and ETA."""


@dataclass
class Rate:
    """How fast a value changes, over the samples of the last `window` seconds."""

    window: float = RATE_WINDOW_SECONDS
    samples: deque[tuple[float, float]] = field(default_factory=deque)

    def add(self, at: float, value: float) -> None:
        self.samples.append((at, value))
        while len(self.samples) > 2 and at - self.samples[0][0] > self.window:
            self.samples.popleft()

    def per_second(self) -> float | None:
        """Change per second between the oldest and newest sample, or None before two samples."""
        if len(self.samples) < 2:
            return None
        (t0, v0), (t1, v1) = self.samples[0], self.samples[-1]
        return (v1 - v0) / (t1 - t0) if t1 > t0 else None


def eta_seconds(remaining: float, shrink_per_second: float | None) -> float | None:
    """Seconds until `remaining` reaches 0 at the observed rate; None while it does not shrink."""
    if remaining <= 0:
        return 0.0
    if not shrink_per_second or shrink_per_second <= 0:
        return None
    return remaining / shrink_per_second


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "ETA unknown (not catching up yet)"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return "ETA " + (
        f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    )


def read_rescans(app: App, url: str) -> dict[str, int]:
    """The tron_rescan_* figures from tron-client's Prometheus endpoint."""
    if not url.startswith(("http://", "https://")):
        raise app.error(ExitCode.INVALID_ARGUMENT, f"--metrics-url {url!r}: an http(s) URL")
    try:
        with urllib.request.urlopen(url, timeout=app.deadline) as response:  # noqa: S310  # http(s) only
            text = response.read().decode()
    except (urllib.error.URLError, OSError, UnicodeDecodeError) as exc:
        raise app.error(ExitCode.UNAVAILABLE, f"cannot read tron-client's metrics at {url}: {exc}") from None
    figures = dict.fromkeys(RESCAN_METRICS.values(), 0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in RESCAN_METRICS:
                figures[RESCAN_METRICS[sample.name]] += int(sample.value)
    return figures


def _status(app: App) -> pb.GetNetworkStatusResponse:
    stub = pb_grpc.TronClientServiceStub(app.edge())
    response: pb.GetNetworkStatusResponse = app.call(stub.GetNetworkStatus, pb.GetNetworkStatusRequest())
    return response


def _show(status: pb.GetNetworkStatusResponse, rescans: dict[str, int] | None) -> None:
    s = status
    output.stdout.print(
        output.fields(
            "TRON network and block sync",
            [
                ("reachable", "yes" if s.reachable else "NO"),
                ("synced", "yes" if s.synced else "no"),
                ("head block", f"{s.head_block.number} ({output.when(s.head_block.block_time)})"),
                ("solidified block", s.solidified_block.number),
                ("sync block", s.sync_block.number if s.HasField("sync_block") else "block sync off"),
                ("sync lag (blocks)", s.sync_lag_blocks),
                ("checked at", output.when(s.check_time)),
            ],
        )
    )
    nodes = [
        (n.url, output.enum_name(pb.NodeStatus.State, n.state, "STATE_"), n.head_block_number,
         n.head_lag_blocks,
         f"{n.latency.ToMilliseconds()} ms", n.error_count)
        for n in s.nodes
    ]  # fmt: skip
    output.stdout.print(output.table("nodes", ("url", "state", "head", "lag", "latency", "errors"), nodes))
    if rescans is not None:
        output.line(
            f"history rescans: {rescans['openJobs']} open, {rescans['pendingBlocks']} blocks to read, "
            f"{rescans['blocksRead']} read so far"
        )


@command(sync, "status")
@click.option("--watch", is_flag=True, help="Follow sync (and rescans) with progress bars until caught up.")
@click.option(
    "--metrics-url",
    default=None,
    help="tron-client's Prometheus endpoint (http://127.0.0.1:9085/metrics) for history-rescan progress.",
)
@click.option(
    "--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True, help="Poll seconds."
)
@click.option(
    "--wait-timeout", type=click.FloatRange(min=1), default=3600, show_default=True, help="Watch seconds."
)
def status(app: App, watch: bool, metrics_url: str | None, interval: float, wait_timeout: float) -> None:
    """Node health, head/solidified/sync blocks and lag; with --watch, progress and ETA (exit 10 if not
    caught up within --wait-timeout). With --json --watch, one JSON object per poll."""
    if not watch:
        response = _status(app)
        rescans = read_rescans(app, metrics_url) if metrics_url else None
        if app.as_json:
            output.print_json({**output.message_dict(response), **({"rescans": rescans} if rescans else {})})
        else:
            _show(response, rescans)
        return
    _watch(app, metrics_url, interval, wait_timeout)


@dataclass
class _Watch:
    """What --watch tracks between polls."""

    start_sync: int | None = None
    most_pending: int = 0
    lag: Rate = field(default_factory=Rate)
    rescanned: Rate = field(default_factory=Rate)

    def sample(self, status: pb.GetNetworkStatusResponse, rescans: dict[str, int] | None) -> dict[str, Any]:
        now = time.monotonic()
        lag = status.sync_lag_blocks
        self.lag.add(now, lag)
        if self.start_sync is None and status.HasField("sync_block"):
            self.start_sync = status.sync_block.number
        shrink = self.lag.per_second()
        point: dict[str, Any] = {
            "checkTime": output.when(status.check_time),
            "headBlock": status.head_block.number,
            "syncBlock": status.sync_block.number,
            "lagBlocks": lag,
            "synced": status.synced,
            "catchUpBlocksPerSecond": None if shrink is None else round(-shrink, 3),
            "etaSeconds": _rounded(eta_seconds(lag, None if shrink is None else -shrink)),
        }
        if rescans is not None:
            self.most_pending = max(self.most_pending, rescans["pendingBlocks"])
            self.rescanned.add(now, rescans["blocksRead"])
            speed = self.rescanned.per_second()
            point["rescans"] = {
                **rescans,
                "blocksPerSecond": None if speed is None else round(speed, 3),
                "etaSeconds": _rounded(eta_seconds(rescans["pendingBlocks"], speed)),
            }
        return point

    @staticmethod
    def done(point: dict[str, Any]) -> bool:
        rescans = point.get("rescans")
        return bool(point["synced"]) and (
            rescans is None or rescans["pendingBlocks"] == rescans["openJobs"] == 0
        )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _watch(app: App, metrics_url: str | None, interval: float, wait_timeout: float) -> None:
    watch = _Watch()
    deadline = time.monotonic() + wait_timeout
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    with Progress(*columns, console=output.stderr, disable=app.as_json) as progress:
        sync_task = progress.add_task("block sync", total=1, detail="")
        rescan_task: TaskID | None = (
            progress.add_task("history rescans", total=1, detail="") if metrics_url else None
        )
        while True:
            status = _status(app)
            point = watch.sample(status, read_rescans(app, metrics_url) if metrics_url else None)
            if app.as_json:
                output.print_json_line(point)
            synced_to = status.sync_block.number
            # The head comes from the node pool's last probe and may trail a cursor read just now.
            head = max(status.head_block.number, synced_to)
            start = watch.start_sync if watch.start_sync is not None else synced_to
            progress.update(
                sync_task,
                total=max(1, head - start),
                completed=synced_to - start,
                detail=f"block {synced_to}/{head}, "
                f"lag {point['lagBlocks']}, " + _duration(point["etaSeconds"]),
            )
            if rescan_task is not None:
                r = point["rescans"]
                progress.update(
                    rescan_task,
                    total=max(1, watch.most_pending),
                    completed=watch.most_pending - r["pendingBlocks"],
                    detail=f"{r['openJobs']} open, {r['pendingBlocks']} blocks to read, "
                    + _duration(r["etaSeconds"]),
                )
            if _Watch.done(point):
                break
            if time.monotonic() >= deadline:
                raise app.error(
                    ExitCode.WAIT_TIMEOUT, f"not caught up after {wait_timeout:g}s (lag {point['lagBlocks']})"
                )
            time.sleep(interval)
    if not app.as_json:
        output.line(f"caught up: sync at block {synced_to}, head {head}")
