"""`make up`'s supervisor under a real honcho: a crashing process restarts with back-off while the others keep
running, a configuration error (exit 2) still stops everything, SIGTERM stops all with nothing left behind,
and `make down` stops only the cluster of its own checkout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tools import supervise

REPO = Path(__file__).resolve().parents[2]
HONCHO = Path(sys.executable).with_name("honcho")

# Writes its pid to <dir>/<name>.pids on every start; exits with the code given for the first starts, then
# sleeps (a healthy service).
CHILD = """
import os, sys, time
name, codes = sys.argv[1], [int(c) for c in sys.argv[2:]]
log = os.path.join(os.environ["WORK"], name + ".pids")
with open(log, "a") as f:
    f.write(f"{os.getpid()}\\n")
starts = len(open(log).read().split())
if starts <= len(codes):
    sys.exit(codes[starts - 1])
time.sleep(120)
"""


def starts(work: Path, name: str) -> list[int]:
    path = work / f"{name}.pids"
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Path, list[subprocess.Popen[bytes]]]]:
    (tmp_path / "child.py").write_text(CHILD)
    started: list[subprocess.Popen[bytes]] = []
    yield tmp_path, started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def honcho(work: Path, started: list[subprocess.Popen[bytes]], **lines: str) -> subprocess.Popen[bytes]:
    procfile = work / "Procfile"
    run = f"{sys.executable} -m tools.supervise run"
    procfile.write_text("".join(f"{n}: exec {run} {n} -- {sys.executable} {work}/child.py {n} {codes}\n"
                                for n, codes in lines.items()))  # fmt: skip
    with open(work / "honcho.log", "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [str(HONCHO), "-f", str(procfile), "-d", str(REPO), "start"],
            cwd=REPO,
            env={**os.environ, "WORK": str(work), "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    started.append(proc)
    return proc


def test_a_crash_restarts_with_backoff_and_the_rest_keeps_running(
    cluster: tuple[Path, list[subprocess.Popen[bytes]]],
) -> None:
    work, started = cluster
    proc = honcho(work, started, steady="", crashy="1 3")
    wait_for(lambda: len(starts(work, "crashy")) == 3)
    (steady,) = starts(work, "steady")
    assert proc.poll() is None and alive(steady)
    log = (work / "honcho.log").read_text()
    assert "supervise: crashy exited with code 1; restarting in 1 s" in log
    assert "supervise: crashy exited with code 3; restarting in 2 s" in log
    crashy = starts(work, "crashy")[-1]
    assert alive(crashy)

    proc.send_signal(signal.SIGTERM)  # what Ctrl-C and `make down` do
    assert proc.wait(timeout=20) is not None
    wait_for(lambda: not alive(steady) and not alive(crashy))


def test_a_configuration_error_stops_everything(cluster: tuple[Path, list[subprocess.Popen[bytes]]]) -> None:
    work, started = cluster
    proc = honcho(work, started, steady="", broken="2")
    proc.wait(timeout=30)
    assert len(starts(work, "broken")) == 1  # never restarted
    assert (
        "broken stopped with a configuration error (exit 2): not restarting it"
        in (work / "honcho.log").read_text()
    )
    (steady,) = starts(work, "steady")
    wait_for(lambda: not alive(steady))


def test_backoff_doubles_up_to_its_cap_and_resets_after_a_stable_run() -> None:
    waits = [supervise.backoff(0, 0)]
    for _ in range(7):
        waits.append(supervise.backoff(waits[-1], 0.5))
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]
    assert supervise.backoff(30, supervise.STABLE_SECONDS) == 1


def test_down_stops_only_this_checkouts_cluster(tmp_path: Path) -> None:
    pid_file = tmp_path / "up.pid"
    assert "no cluster" in supervise.down(pid_file, REPO)
    elsewhere = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path)
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=REPO)
    try:
        pid_file.write_text(f"{elsewhere.pid}\n")  # a stale file whose pid now belongs to another directory
        assert "not running" in supervise.down(pid_file, REPO)
        assert elsewhere.poll() is None and not pid_file.exists()
        pid_file.write_text(f"{ours.pid}\n")
        assert "stopped" in supervise.down(pid_file, REPO)
        assert ours.wait(timeout=10) == -signal.SIGTERM and not pid_file.exists()
    finally:
        for proc in (elsewhere, ours):
            proc.kill()
            proc.wait()
