"""`make bench`: every benchmark once with short settings, then one table of their key figures.

    python -m tools.bench_report                       # all of them, in the order below
    python -m tools.bench_report --only usdt,payments  # `make bench BENCH_ONLY=usdt,payments`
    python -m tools.bench_report --list                # names and the commands they run

Each benchmark runs as ``benchmarks/<script> <short args> --report FILE`` (the script writes its key figures
as JSON there) in its own process group, one after the other, bounded by its timeout. The table has a row
per figure: the benchmark, the figure, its value, the target an issue set for it, whether this run met it,
and the command that reproduces it (the benchmark's make target with the same arguments). A benchmark that
fails or runs out of time gets one row with its exit code and the run goes on with the next; the exit status
is 1 when any failed. Logs, the figures (report.json) and the table (report.md) stay in .data/bench/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / ".data" / "bench"
STOP_GRACE_SECONDS = 30.0  # a timed-out benchmark's time to stop what it started after SIGINT
SUN_PER_TRX = 1_000_000


@dataclass(frozen=True)
class Unit:
    """How a figure reads: value x scale, `decimals` places, then the suffix ('%', 'x', '/..' attached)."""

    suffix: str = ""
    decimals: int = 0
    scale: float = 1.0

    def show(self, value: float) -> str:
        text = f"{value * self.scale:,.{self.decimals}f}"
        if not self.suffix:
            return text
        return text + self.suffix if self.suffix[0] in "%x/" else f"{text} {self.suffix}"


@dataclass(frozen=True)
class Trx(Unit):
    """An amount reported in sun (an integer), shown in TRX: three decimals, six when they are needed."""

    def show(self, value: float) -> str:
        sun = int(value)
        whole, rest = divmod(abs(sun), SUN_PER_TRX)
        decimals = f"{rest:06d}" if rest % 1000 else f"{rest // 1000:03d}"
        return f"{'-' if sun < 0 else ''}{whole:,}.{decimals} TRX"


PER_SECOND = Unit("/s")
REQ_PER_SECOND = Unit("req/s")
PERCENT = Unit("%", scale=100)
RATIO = Unit("x", decimals=2)
SECONDS = Unit("s", decimals=2)
MS = Unit("ms", decimals=1)
US = Unit("µs")
NS = Unit("ns", decimals=1)
ENERGY = Unit("energy")
COUNT = Unit()
TRX = Trx()


@dataclass(frozen=True)
class Target:
    """A bound on a figure: at least `low`, at most `high` (strictly below it when `below`)."""

    low: float | None = None
    high: float | None = None
    below: bool = False

    def met(self, value: float) -> bool:
        if self.low is not None and value < self.low:
            return False
        if self.high is None:
            return True
        return value < self.high if self.below else value <= self.high

    def describe(self, unit: Unit) -> str:
        if self.low is not None and self.high is not None:
            if self.low == self.high:
                return unit.show(self.low)
            return f"{unit.show(self.low)} to {unit.show(self.high)}"
        if self.low is not None:
            return f"≥ {unit.show(self.low)}"
        if self.high is not None:
            return f"{'<' if self.below else '≤'} {unit.show(self.high)}"
        raise ValueError("a target needs a bound")


@dataclass(frozen=True)
class Figure:
    """One key of a benchmark's report, as a row of the table."""

    key: str
    label: str
    unit: Unit
    target: Target | None = None


def at_least(low: float) -> Target:
    return Target(low=low)


def at_most(high: float) -> Target:
    return Target(high=high)


def under(high: float) -> Target:
    return Target(high=high, below=True)


NONE_BURNED = Target(low=0, high=0)


@dataclass(frozen=True)
class Benchmark:
    """`make bench-<name>` (benchmarks/bench_<name>.py), the short arguments `make bench` gives it and the
    figures it reports."""

    name: str  # what BENCH_ONLY selects
    figures: tuple[Figure, ...]
    args: tuple[str, ...] = ()
    args_var: str | None = None  # the make variable that passes arguments to the target's recipe
    timeout_s: float = 300.0

    @property
    def make_target(self) -> str:
        return f"bench-{self.name}"

    @property
    def script(self) -> Path:
        return REPO / "benchmarks" / f"bench_{self.name.replace('-', '_')}.py"

    @property
    def command(self) -> str:
        """The command that reproduces this run's figures."""
        if not self.args:
            return f"make {self.make_target}"
        joined = " ".join(self.args)
        value = f'"{joined}"' if " " in joined else joined
        return f"make {self.make_target} {self.args_var}={value}"

    def argv(self, report: Path) -> list[str]:
        return [sys.executable, str(self.script), *self.args, "--report", str(report)]


# Targets as the issues set them: devnet #2, sync #4, signing #5, USDT #11, energy broker #12, payouts #13,
# payments #14, the edge's read path #15 (at bench-edge's default 32 connections).
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "devnet",
        (
            Figure("trx_included_per_second", "TRX transfers included (1 s blocks)", PER_SECOND),
            Figure("trc20_included_per_second", "USDT transfers included", PER_SECOND, at_least(300)),
        ),
    ),
    Benchmark(
        "tvm",
        (
            Figure("transfers_per_second", "USDT transfers in the TVM alone", PER_SECOND),
            Figure("energy_new_holder_mainnet", "USDT transfer to a new holder, mainnet", ENERGY),
            Figure("energy_existing_holder_mainnet", "USDT transfer to a holder, mainnet", ENERGY),
        ),
    ),
    Benchmark(
        "payout-contract",
        (
            Figure("energy_batch100_vs_single", "energy/recipient, batch of 100 / single", PERCENT),
            Figure("bandwidth_batch100_vs_single", "bandwidth/recipient, batch of 100 / single", PERCENT),
        ),
        args=("--mainnet",),
        args_var="BENCH_PAYOUT_CONTRACT_ARGS",
    ),
    Benchmark(
        "ferretdb",
        (
            Figure("insert_x20_serialised", "20 concurrent inserts, serialised", PER_SECOND),
            Figure("insert_x20_plain", "20 concurrent inserts, not serialised", PER_SECOND),
            Figure("update_x20_serialised", "20 concurrent updates, serialised", PER_SECOND),
            Figure("update_x20_plain", "20 concurrent updates, not serialised", PER_SECOND),
            Figure("find_x20_serialised", "20 concurrent finds by _id", PER_SECOND),
        ),
    ),
    Benchmark(
        "sync",
        (
            Figure("blocks_per_second", "mainnet-sized blocks ingested", PER_SECOND, at_least(100)),
            Figure("devnet_cached_blocks_per_second", "devnet serving them alone", PER_SECOND),
        ),
        args=("--blocks", "300"),
        args_var="BENCH_SYNC_ARGS",
        timeout_s=600.0,
    ),
    Benchmark(
        "sign-core",
        (Figure("full_sign_path_per_second", "signing path in-process, one loop", PER_SECOND),),
    ),
    Benchmark(
        "sign",
        (
            Figure("per_tx_signatures_per_second", "signatures, per-tx limit", PER_SECOND, at_least(1000)),
            Figure("daily_signatures_per_second", "signatures, daily limit", PER_SECOND, at_least(1000)),
            Figure("per_tx_p99_ms", "SignTransaction p99, per-tx limit", MS),
        ),
        args=("--seconds", "3"),
        args_var="BENCH_SIGN_ARGS",
    ),
    Benchmark(
        "edge",
        (
            Figure("trivial_rps", "trivial RPC, 32 connections", REQ_PER_SECOND),
            Figure("height_rps", "GET /api/v1/tron/network/height", REQ_PER_SECOND),
            Figure("wallet_rps", "GET /api/v1/wallets/{id} (MongoDB)", REQ_PER_SECOND),
            Figure("wallet_to_trivial", "wallet read / trivial RPC", RATIO, at_least(0.5)),
            Figure("wallet_p99_ms", "wallet read p99", MS, at_most(50)),
            Figure("envoy_rps", "Envoy alone (its own 400)", REQ_PER_SECOND),
        ),
    ),
    Benchmark(
        "edge-strict",
        (
            Figure("wallet_extra_cpu_us", "strict JSON: Envoy CPU per CreateWallet", US),
            Figure("batch_extra_ns_per_byte", "strict JSON: Envoy CPU per batch byte", NS),
            Figure("read_extra_cpu_us", "strict JSON: Envoy CPU per GET", US),
        ),
        args=("--rounds", "1", "--duration", "3"),
        args_var="BENCH_EDGE_STRICT_ARGS",
    ),
    Benchmark(
        "energy",
        (
            Figure("energy_burned_sun_with_broker", "TRX burned with the broker, in all", TRX, NONE_BURNED),
            Figure(
                "energy_burned_sun_per_transfer_without_broker", "TRX burned per transfer, no broker", TRX
            ),
            Figure("energy_delegated_per_transfer_with_broker", "energy delegated per transfer", ENERGY),
        ),
        args=("--transfers", "40", "--senders", "10"),
        args_var="BENCH_ENERGY_ARGS",
        timeout_s=600.0,
    ),
    Benchmark(
        "usdt",
        (
            Figure("transfers_per_hour", "transfers/h, request -> CONFIRMED", COUNT, at_least(100_000)),
            Figure("included_p99_s", "request -> INCLUDED p99", SECONDS),
            Figure("confirmed_p99_s", "request -> CONFIRMED p99", SECONDS),
            Figure("devnet_included_per_hour", "devnet alone: included/h", COUNT),
        ),
        timeout_s=600.0,
    ),
    Benchmark(
        "payouts",
        (
            Figure(
                "bandwidth_batch100_vs_single", "bandwidth/recipient, 100 / single", PERCENT, at_most(0.25)
            ),
            Figure("energy_batch100_vs_single", "energy/recipient, 100 / single", PERCENT, Target(0.9, 1.1)),
            Figure(
                "energy_fee_sun_per_payout_with_broker",
                "TRX burned for energy per payout, broker",
                TRX,
                NONE_BURNED,
            ),
            Figure("burned_sun_per_payout_with_broker", "TRX burned per payout (bandwidth too), broker", TRX),
            Figure("burned_sun_per_payout_batch100_no_broker", "TRX burned per payout, no broker", TRX),
            Figure("payouts_per_hour", "payouts/h, request -> CONFIRMED", COUNT, at_least(10_000)),
            Figure("confirmed_p99_s", "request -> CONFIRMED p99", SECONDS),
        ),
        args=("--mainnet", "--payouts", "500"),
        args_var="BENCH_PAYOUTS_ARGS",
        timeout_s=900.0,
    ),
    Benchmark(
        "payments",
        (
            Figure("payments_per_hour", "payments/h, created -> PAID webhook", COUNT, at_least(10_000)),
            Figure("solidified_to_paid_p99_s", "solidified -> PAID webhook p99", SECONDS, under(10)),
            Figure("block_to_paid_p99_s", "paying block -> PAID webhook p99", SECONDS),
            Figure("webhook_backlog", "webhooks pending at the end", COUNT),
        ),
        args=(),  # the 1,000 payments (about 1.5 minutes)
        args_var="BENCH_PAYMENTS_ARGS",
        timeout_s=600.0,
    ),
)

MET, NOT_MET, NO_TARGET, NOT_MEASURED = "met", "NOT met", "—", "not measured"


@dataclass
class Outcome:
    """One benchmark's run: its exit code (None: stopped at its timeout) and the figures it reported."""

    benchmark: Benchmark
    exit_code: int | None
    seconds: float
    figures: dict[str, float] = field(default_factory=dict)
    log: Path | None = None

    @property
    def failure(self) -> str | None:
        if self.exit_code is None:
            return f"failed: timed out after {self.benchmark.timeout_s:.0f} s"
        if self.exit_code != 0:
            return f"failed: exit {self.exit_code}"
        if not self.figures:
            return "failed: reported no figures"
        return None


@dataclass(frozen=True)
class Row:
    benchmark: str
    figure: str
    value: str
    target: str
    status: str
    command: str


def rows(outcome: Outcome) -> list[Row]:
    """The table rows of one benchmark's run: a row per figure, or one row saying how it failed."""
    bench = outcome.benchmark
    if outcome.failure:
        return [Row(bench.make_target, "—", "—", "—", outcome.failure, bench.command)]
    out = []
    for fig in bench.figures:
        value = outcome.figures.get(fig.key)
        target = fig.target.describe(fig.unit) if fig.target else "—"
        if value is None:
            out.append(Row(bench.make_target, fig.label, "—", target, NOT_MEASURED, bench.command))
            continue
        status = NO_TARGET if fig.target is None else MET if fig.target.met(value) else NOT_MET
        out.append(Row(bench.make_target, fig.label, fig.unit.show(value), target, status, bench.command))
    return out


def table(all_rows: Sequence[Row]) -> str:
    """A Markdown table, its columns padded so it also reads as plain text."""
    header = ("benchmark", "figure", "value", "target", "met", "command")
    cells = [header] + [
        (r.benchmark, r.figure, r.value, r.target, r.status, f"`{r.command}`") for r in all_rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    # Values and targets are numbers: right-aligned.
    right = {2, 3}

    def line(values: Sequence[str]) -> str:
        padded = (
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if i in right else "-" * (w + 2) for i, w in enumerate(widths))
        + "|"
    )
    return "\n".join([line(header), rule, *(line(c) for c in cells[1:])])


def summary(outcomes: Sequence[Outcome]) -> str:
    """One line: targets met out of those measured, targets not measured, and the benchmarks that failed."""
    statuses = [r.status for o in outcomes for r in rows(o) if r.target != NO_TARGET]
    text = f"targets met: {statuses.count(MET)} of {statuses.count(MET) + statuses.count(NOT_MET)} measured"
    if statuses.count(NOT_MEASURED):
        text += f", {statuses.count(NOT_MEASURED)} not measured"
    failed = [o.benchmark.make_target for o in outcomes if o.failure]
    return text + (f"; failed: {', '.join(failed)}" if failed else "; no benchmark failed")


def select(names: str | None) -> list[Benchmark]:
    """The benchmarks named in a comma-separated list (all when empty), in the table's order."""
    if not names:
        return list(BENCHMARKS)
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    unknown = wanted - {b.name for b in BENCHMARKS}
    if unknown:
        known = ", ".join(b.name for b in BENCHMARKS)
        raise SystemExit(f"unknown benchmark(s) {', '.join(sorted(unknown))}; known: {known}")
    return [b for b in BENCHMARKS if b.name in wanted]


def stop_group(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop a benchmark and everything it started (its own process group): SIGINT first, so its `finally`
    blocks stop FerretDB, the devnet and the services, then SIGKILL for whatever is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run(bench: Benchmark, out_dir: Path) -> Outcome:
    """Run one benchmark to its end or its timeout; its output goes to <out_dir>/<name>.log."""
    report, log = out_dir / f"{bench.name}.json", out_dir / f"{bench.name}.log"
    report.unlink(missing_ok=True)
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            bench.argv(report), cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        exit_code: int | None
        try:
            exit_code = proc.wait(bench.timeout_s)
        except subprocess.TimeoutExpired:
            exit_code = None
        except KeyboardInterrupt:  # Ctrl-C reaches only our process group: stop the benchmark's too
            stop_group(proc)
            raise
        stop_group(proc)  # nothing it started outlives it
    figures = json.loads(report.read_text()) if exit_code == 0 and report.exists() else {}
    figures = {k: v for k, v in figures.items() if isinstance(v, int | float)}
    return Outcome(bench, exit_code, time.monotonic() - started, figures, log)


def revision() -> str:
    """The checked-out commit, and whether the tree has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {sha}" + (" with uncommitted changes" if dirty else "")


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join("    " + line for line in path.read_text(errors="replace").splitlines()[-lines:])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", help="comma-separated benchmark names (default: all; see --list)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="logs, figures and table (.data/bench)")
    parser.add_argument("--list", action="store_true", help="print the benchmarks and their commands")
    args = parser.parse_args(argv)
    chosen = select(args.only)
    if args.list:
        for bench in chosen:
            print(f"{bench.name:16} {bench.command}")
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    began, started = datetime.datetime.now(datetime.UTC), time.monotonic()
    outcomes = []
    for i, bench in enumerate(chosen, 1):
        print(f"[{i}/{len(chosen)}] {bench.command}", flush=True)
        outcome = run(bench, args.out)
        outcomes.append(outcome)
        print(f"    {outcome.failure or 'ok'} ({outcome.seconds:.0f} s, log {outcome.log})", flush=True)
        if outcome.failure and outcome.log:
            print(tail(outcome.log), flush=True)

    minutes = (time.monotonic() - started) / 60
    heading = (
        f"make bench, {began:%Y-%m-%d %H:%M} UTC, {revision()}, {os.cpu_count()} CPUs, "
        f"{len(chosen)} benchmarks in {minutes:.0f} min (one run each; figures vary with the machine's load)"
    )
    text = "\n".join([heading, "", table([r for o in outcomes for r in rows(o)]), "", summary(outcomes)])
    print("\n" + text)
    (args.out / "report.md").write_text(text + "\n")
    figures = {
        o.benchmark.name: {"command": o.benchmark.command, "failure": o.failure, **o.figures}
        for o in outcomes
    }
    (args.out / "report.json").write_text(
        json.dumps({"heading": heading, "benchmarks": figures}, indent=2) + "\n"
    )
    return 1 if any(o.failure for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
