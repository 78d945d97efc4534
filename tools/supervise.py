"""`make up` / `make down` helpers: keep one process of the Procfile running, and stop exactly this checkout's
cluster.

    python -m tools.supervise run NAME -- COMMAND...   # honcho runs every Procfile line through this
    python -m tools.supervise down                     # `make down`

`run` starts COMMAND in its own process group and restarts it when it exits, waiting 1, 2, 4 ... up to 30 s
between starts (the wait starts again at 1 s after a run of a minute or more), with one log line per restart.
honcho stops the whole cluster as soon as any of its processes exits, so without this one crashing service
would take down the rest. Two exits are not restarted, and end `run` with the same code so honcho stops all:
exit 2 (the services' one-line configuration error: starting again cannot fix it) and a stop asked for by a
signal (Ctrl-C, `make down`: honcho sends SIGTERM, which `run` passes to the whole group of the command).

`make up` records honcho's pid in .data/up.pid; `down` stops that process only, and only if it is still a
process of this checkout (its working directory), never every honcho on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PID_FILE = REPO / ".data" / "up.pid"
CONFIG_ERROR = 2  # services.common.settings exits 2 with one line naming the bad variable
FIRST_WAIT, MAX_WAIT = 1.0, 30.0
STABLE_SECONDS = 60.0  # a run this long resets the back-off
KILL_AFTER = 10.0  # seconds a stopping child gets before SIGKILL


def backoff(previous: float, ran_for: float) -> float:
    """The wait before the next start: doubled after a short run, back to the first after a stable one."""
    if ran_for >= STABLE_SECONDS or previous <= 0:
        return FIRST_WAIT
    return min(previous * 2, MAX_WAIT)


class Supervisor:
    """Runs one command until it is told to stop, restarting it after crashes."""

    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        self.command = command
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = 0  # the signal that asked us to stop, or 0

    def stop(self, signum: int, _frame: object = None) -> None:
        self.stopping = signum
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(
                ProcessLookupError
            ):  # the whole group: `make ferretdb-run` and its child
                os.killpg(self.child.pid, signal.SIGTERM)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self.stop)
        wait = 0.0
        while True:
            started = time.monotonic()
            self.child = subprocess.Popen(self.command, start_new_session=True)
            if self.stopping:  # the signal came while it was starting
                self.stop(self.stopping)
            code = self.wait_child(self.child)
            if self.stopping:
                return 0
            if code == CONFIG_ERROR:
                log(f"{self.name} stopped with a configuration error (exit 2): not restarting it")
                return code
            wait = backoff(wait, time.monotonic() - started)
            log(f"{self.name} exited with {describe(code)}; restarting in {wait:.0f} s")
            deadline = time.monotonic() + wait
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.stopping:
                return 0

    def wait_child(self, child: subprocess.Popen[bytes]) -> int:
        """The child's exit code; a child that ignores SIGTERM for KILL_AFTER seconds is killed."""
        asked = 0.0
        while (code := child.poll()) is None:
            if self.stopping and not asked:
                asked = time.monotonic()
            elif asked and time.monotonic() - asked > KILL_AFTER:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
            time.sleep(0.05)
        return code


def describe(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"


def log(message: str) -> None:
    print(f"supervise: {message}", file=sys.stderr, flush=True)


def down(pid_file: Path = PID_FILE, checkout: Path = REPO) -> str:
    """Stop the cluster `make up` started from `checkout`; say what was done."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return "no cluster started by `make up` in this checkout"
    try:
        same_checkout = Path(f"/proc/{pid}/cwd").resolve() == checkout.resolve()
    except OSError:  # gone, or not ours to read
        same_checkout = False
    if not same_checkout:
        pid_file.unlink(missing_ok=True)
        return f"the cluster of this checkout is not running (pid {pid} is gone or not ours)"
    os.kill(pid, signal.SIGTERM)  # honcho stops every process it started, each supervisor its own group
    pid_file.unlink(missing_ok=True)
    return f"stopped the cluster (honcho pid {pid})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.supervise", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run a command, restarting it when it crashes")
    run.add_argument("name")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    sub.add_parser("down", help="stop the cluster `make up` started from this checkout")
    args = parser.parse_args(argv)
    if args.action == "down":
        print(down())
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("run needs a command after --")
    return Supervisor(args.name, command).run()


if __name__ == "__main__":
    sys.exit(main())
