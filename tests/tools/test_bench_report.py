"""`make bench`'s report (tools/bench_report.py): targets judged, values formatted, the table laid out, failed
and timed-out benchmarks reported as such, on canned figures; the registry agrees with the make targets."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools import bench_report as br
from tools.bench_report import Outcome, Row, Target

REPO = Path(__file__).resolve().parents[2]


def bench(name: str) -> br.Benchmark:
    return next(b for b in br.BENCHMARKS if b.name == name)


@pytest.mark.parametrize(
    ("unit", "value", "shown"),
    [
        (br.COUNT, 60_155.4, "60,155"),
        (br.PER_SECOND, 453.2, "453/s"),
        (br.PERCENT, 0.1367, "14%"),
        (br.RATIO, 0.456, "0.46x"),
        (br.SECONDS, 21.554, "21.55 s"),
        (br.MS, 85.25, "85.2 ms"),
        (br.TRX, 0, "0.000 TRX"),
        (br.TRX, 12_386_000, "12.386 TRX"),
        (br.TRX, 1, "0.000001 TRX"),
        (br.TRX, 5_440_123_000, "5,440.123 TRX"),
    ],
)
def test_units_format_values(unit: br.Unit, value: float, shown: str) -> None:
    assert unit.show(value) == shown


def test_targets_judge_their_bounds() -> None:
    assert br.at_least(100_000).met(100_000) and not br.at_least(100_000).met(99_999.9)
    assert br.at_most(50).met(50) and not br.at_most(50).met(50.1)
    assert br.under(10).met(9.99) and not br.under(10).met(10)
    within = Target(0.9, 1.1)
    assert within.met(1.0) and not within.met(0.84) and not within.met(1.11)
    assert br.NONE_BURNED.met(0) and not br.NONE_BURNED.met(1)


def test_targets_read_in_the_figures_unit() -> None:
    assert br.at_least(100_000).describe(br.COUNT) == "≥ 100,000"
    assert br.at_most(0.25).describe(br.PERCENT) == "≤ 25%"
    assert br.under(10).describe(br.SECONDS) == "< 10.00 s"
    assert Target(0.9, 1.1).describe(br.PERCENT) == "90% to 110%"
    assert br.NONE_BURNED.describe(br.TRX) == "0.000 TRX"
    with pytest.raises(ValueError, match="bound"):
        Target().describe(br.COUNT)


def test_rows_say_met_not_met_no_target_and_not_measured() -> None:
    figures = {"payments_per_hour": 12_345.6, "solidified_to_paid_p99_s": 10.0, "block_to_paid_p99_s": 28.1}
    got = br.rows(Outcome(bench("payments"), 0, 60.0, figures))
    command = "make bench-payments"
    assert got == [
        Row("bench-payments", "payments/h, created -> PAID webhook", "12,346", "≥ 10,000", "met", command),
        Row("bench-payments", "solidified -> PAID webhook p99", "10.00 s", "< 10.00 s", "NOT met", command),
        Row("bench-payments", "paying block -> PAID webhook p99", "28.10 s", "—", "—", command),
        Row("bench-payments", "webhooks pending at the end", "—", "—", "not measured", command),
    ]


def test_a_failed_or_timed_out_benchmark_is_one_row_with_its_exit_code() -> None:
    usdt = bench("usdt")
    (failed,) = br.rows(Outcome(usdt, 1, 5.0, {"transfers_per_hour": 1.0}))
    assert (failed.benchmark, failed.status, failed.command) == (
        "bench-usdt",
        "failed: exit 1",
        "make bench-usdt",
    )
    (timed_out,) = br.rows(Outcome(usdt, None, 600.0))
    assert timed_out.status == "failed: timed out after 600 s"
    (silent,) = br.rows(Outcome(usdt, 0, 5.0))
    assert silent.status == "failed: reported no figures"


def test_table_is_markdown_with_aligned_columns() -> None:
    outcomes = [
        Outcome(
            bench("sync"), 0, 90.0, {"blocks_per_second": 142.26, "devnet_cached_blocks_per_second": 610.0}
        ),
        Outcome(bench("energy"), 2, 30.0),
    ]
    lines = br.table([r for o in outcomes for r in br.rows(o)]).splitlines()
    assert len(lines) == 2 + 3
    assert len({len(line) for line in lines}) == 1  # padded: reads as plain text too
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["benchmark", "figure", "value", "target", "met", "command"]
    assert cells[1][2].endswith(":") and cells[1][3].endswith(":")  # numbers right-aligned
    assert cells[2] == [
        "bench-sync",
        "mainnet-sized blocks ingested",
        "142/s",
        "≥ 100/s",
        "met",
        '`make bench-sync BENCH_SYNC_ARGS="--blocks 300"`',
    ]
    assert cells[4][0] == "bench-energy" and cells[4][4] == "failed: exit 2"


def test_summary_counts_targets_and_names_failures() -> None:
    outcomes = [
        Outcome(
            bench("payouts"), 0, 1.0, {"bandwidth_batch100_vs_single": 0.14, "payouts_per_hour": 9_000.0}
        ),
        Outcome(bench("tvm"), None, 300.0),
    ]
    # payouts: bandwidth met, payouts/h not met; energy ratio and the broker's burn not measured
    assert br.summary(outcomes) == "targets met: 1 of 2 measured, 2 not measured; failed: bench-tvm"


def test_commands_reproduce_with_the_same_arguments() -> None:
    assert bench("usdt").command == "make bench-usdt"
    assert (
        bench("payout-contract").command == "make bench-payout-contract BENCH_PAYOUT_CONTRACT_ARGS=--mainnet"
    )
    assert bench("payouts").command == 'make bench-payouts BENCH_PAYOUTS_ARGS="--mainnet --payouts 500"'
    argv = bench("payouts").argv(Path("out/r.json"))
    assert argv[1:] == [
        str(REPO / "benchmarks/bench_payouts.py"),
        "--mainnet",
        "--payouts",
        "500",
        "--report",
        "out/r.json",
    ]


def test_select_keeps_the_table_order_and_refuses_unknown_names() -> None:
    assert [b.name for b in br.select("payments, usdt")] == ["usdt", "payments"]
    assert len(br.select(None)) == len(br.BENCHMARKS)
    with pytest.raises(SystemExit, match="unknown benchmark"):
        br.select("usdt,nope")


def make_recipes() -> dict[str, str]:
    """bench-* target -> its recipe, from mk/*.mk."""
    found = {}
    for mk in (REPO / "mk").glob("*.mk"):
        for target, recipe in re.findall(r"^(bench-[\w-]+):[^\n]*\n((?:\t[^\n]*\n?)*)", mk.read_text(), re.M):
            found[target] = recipe
    return found


def test_every_make_benchmark_is_in_the_report_and_runs_the_same_script() -> None:
    recipes = make_recipes()
    assert sorted(recipes) == sorted(b.make_target for b in br.BENCHMARKS)
    for b in br.BENCHMARKS:
        relative = b.script.relative_to(REPO)
        assert f"benchmarks/{relative.name}" in recipes[b.make_target], b.name
        if b.args:
            assert b.args_var and f"$({b.args_var})" in recipes[b.make_target], b.name
        assert '"--report"' in b.script.read_text(), f"{relative} has no --report"
        assert {f.key for f in b.figures} and len({f.key for f in b.figures}) == len(b.figures)


@dataclass(frozen=True)
class Scripted(br.Benchmark):
    """A benchmark whose script is a file of the test's."""

    path: Path = Path()

    @property
    def script(self) -> Path:
        return self.path


def scripted(tmp_path: Path, body: str, timeout_s: float = 60.0) -> Scripted:
    path = tmp_path / "bench_fake.py"
    path.write_text(body)
    figures = (br.Figure("rate", "rate", br.PER_SECOND, br.at_least(10)),)
    return Scripted("fake", figures, timeout_s=timeout_s, path=path)


def test_run_reads_the_figures_the_script_reports(tmp_path: Path) -> None:
    script = scripted(
        tmp_path,
        "import json, sys\nprint('measuring')\n"
        "open(sys.argv[-1], 'w').write(json.dumps({'rate': 12.5, 'p99': None, 'note': 'not a figure'}))\n",
    )
    outcome = br.run(script, tmp_path)
    assert (outcome.exit_code, outcome.figures, outcome.failure) == (0, {"rate": 12.5}, None)
    assert outcome.log is not None and outcome.log.read_text() == "measuring\n"


def test_run_reports_a_failing_script_by_its_exit_code(tmp_path: Path) -> None:
    script = scripted(
        tmp_path, "import json, sys\nopen(sys.argv[-1], 'w').write(json.dumps({'rate': 1}))\nsys.exit(3)\n"
    )
    outcome = br.run(script, tmp_path)
    assert (outcome.exit_code, outcome.figures, outcome.failure) == (3, {}, "failed: exit 3")


def test_a_timed_out_benchmark_is_stopped_with_what_it_started(tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    script = scripted(
        tmp_path,
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(child_pid)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(120)\n",
        timeout_s=3.0,
    )
    outcome = br.run(script, tmp_path)
    assert outcome.exit_code is None and outcome.failure == "failed: timed out after 3 s"
    pid = int(child_pid.read_text())
    for _ in range(100):  # the orphan is reaped by init shortly after it dies
        if not alive(pid):
            break
        time.sleep(0.05)
    assert not alive(pid)


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_list_prints_each_benchmark_and_its_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert br.main(["--list", "--only", "sign,edge"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["sign", "edge"]
    assert lines[0].endswith('make bench-sign BENCH_SIGN_ARGS="--seconds 3"')
