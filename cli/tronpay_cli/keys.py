"""`tronpay keys`: wallet-manager's key-encryption-key rotation and status.

There is no RPC for these: rotation re-wraps every sealed key in wallet-manager's database with the key in
WALLET_ENCRYPTION_KEY, and only an operator holding that key (and the previous one) may do it. So these
commands run wallet-manager's own operator command (`python -m services.wallet_manager rotate-key|status`,
the same as `make wallet-rotate-key`) from this checkout, with this environment: MONGODB_URI,
PAYMENT_DB_NAME, WALLET_ENCRYPTION_KEY and, while rotating, WALLET_ENCRYPTION_KEY_PREVIOUS. They need a
checkout of the cluster (an installed `tronpay` without one refuses) and access to its database, not the
edge. Their output names counts and key ids only, never key material.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from tronpay_cli import output
from tronpay_cli.base import command
from tronpay_cli.connection import App
from tronpay_cli.errors import ExitCode

#: The checkout this package lives in (cli/tronpay_cli/keys.py -> the repository root).
CHECKOUT = Path(__file__).resolve().parents[2]
ADMIN = CHECKOUT / "services" / "wallet_manager" / "admin.py"
#: wallet-manager's admin exit codes: 1 = some records were not re-wrapped, 2 = a bad setting (one line).
EXIT_CODES = {0: ExitCode.OK, 1: ExitCode.OUTCOME_FAILED, 2: ExitCode.FAILED_PRECONDITION}


@click.group("keys")
def keys() -> None:
    """wallet-manager's key encryption key: rotate, status (runs its operator command; no RPC)."""


def _run(app: App, admin_command: str) -> None:
    if not ADMIN.is_file():
        raise app.error(
            ExitCode.ERROR,
            f"`keys {admin_command}` runs wallet-manager's operator command from a checkout of the cluster; "
            f"none at {CHECKOUT}",
        )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(CHECKOUT / p) for p in ("gen", "."))}
    argv = [sys.executable, "-m", "services.wallet_manager", admin_command]
    captured = app.as_json
    done = subprocess.run(  # noqa: S603  # our own interpreter and module, fixed arguments
        argv, cwd=CHECKOUT, env=env, capture_output=captured, text=True, check=False
    )
    code = EXIT_CODES.get(done.returncode, ExitCode.ERROR)
    if captured:
        output.print_json(
            {
                "command": admin_command,
                "adminExitCode": done.returncode,
                "output": done.stdout.splitlines(),
                "errors": done.stderr.splitlines(),
            }
        )
    if code != ExitCode.OK:
        raise app.error(
            code, f"wallet-manager {admin_command} exited with {done.returncode} (see its output)"
        )


@command(keys, "rotate")
def rotate(app: App) -> None:
    """Re-wrap every wallet data key under WALLET_ENCRYPTION_KEY (old key in WALLET_ENCRYPTION_KEY_PREVIOUS).

    \b
    No downtime: first run the services with both variables set, then this, then drop the previous key.
    Running it again is a no-op. Exit 9 when records are left under another key."""
    _run(app, "rotate-key")


@command(keys, "status")
def status(app: App) -> None:
    """Count sealed records per key id (which encryption keys are still needed)."""
    _run(app, "status")
