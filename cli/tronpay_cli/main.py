"""The `tronpay` command: global connection options, the command groups, and errors without tracebacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tronpay_cli.audit import audit
from tronpay_cli.connection import DEFAULT_DEADLINE, DEFAULT_SERVER, App
from tronpay_cli.errors import EXIT_CODE_HELP, CliError, ExitCode
from tronpay_cli.keys import keys
from tronpay_cli.payments import payments
from tronpay_cli.payouts import payouts
from tronpay_cli.staking import staking
from tronpay_cli.sync import sync
from tronpay_cli.usdt import usdt
from tronpay_cli.wallets import wallets

EPILOG = (
    "\b\nThe token: export TRONPAY_TOKEN=$(make -s token ROLE=operator SUBJECT=alice TENANT=m1)\n"
    "Amounts are base units (1 USDT = 1000000, 1 TRX = 1000000 sun) unless --decimal is given.\n"
    "--json prints the result as JSON on stdout; progress and notes go to stderr.\n\n"
    "\b\nExit codes:\n" + "\n".join(f"  {int(code):>2}  {text}" for code, text in EXIT_CODE_HELP.items())
)


class Tronpay(click.Group):
    """The root group: an unexpected exception is one error line (exit 1), never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            error = CliError(ExitCode.ERROR, f"unexpected error: {type(exc).__name__}: {exc}")
            error.as_json = isinstance(ctx.obj, App) and ctx.obj.as_json
            raise error from None
        finally:
            if isinstance(ctx.obj, App):
                ctx.obj.close()


def _token(token: str | None, token_file: Path | None) -> str:
    if token_file is not None:
        try:
            return token_file.read_text().strip()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {token_file}: {exc.strerror}", param_hint="--token-file"
            ) from None
    return (token or "").strip()


@click.group(
    cls=Tronpay,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.version_option(package_name="tronpay", prog_name="tronpay")
@click.option(
    "--server",
    envvar="TRONPAY_SERVER",
    default=DEFAULT_SERVER,
    show_default=True,
    show_envvar=True,
    help="The edge's address (REST and gRPC share it).",
)
@click.option(
    "--token",
    envvar="TRONPAY_TOKEN",
    default=None,
    show_envvar=True,
    help="Bearer token. Prefer the environment variable: a command line is visible to other users.",
)
@click.option(
    "--token-file",
    envvar="TRONPAY_TOKEN_FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    show_envvar=True,
    help="Read the bearer token from this file.",
)
@click.option(
    "--tls/--plaintext",
    default=None,
    help="TLS to the edge (default: TLS unless the server is on this machine; `make up` serves plaintext).",
)
@click.option(
    "--ca-file",
    envvar="TRONPAY_CA_FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    show_envvar=True,
    help="CA certificate(s) to verify the edge with (default: the system's).",
)
@click.option(
    "--deadline",
    envvar="TRONPAY_DEADLINE",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_DEADLINE,
    show_default=True,
    help="Seconds each call may take.",
)
@click.option(
    "--tls-dir",
    envvar="TLS_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    show_envvar=True,
    help="Operator commands (audit verify, payouts approve, payments list): the cluster's certificate "
    "directory holding operator/{tls.crt,tls.key,ca.crt} (default .data/pki).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    server: str,
    token: str | None,
    token_file: Path | None,
    tls: bool | None,
    ca_file: Path | None,
    deadline: float,
    tls_dir: Path | None,
) -> None:
    """Operate a TRON payment cluster from the command line over its gRPC API.

    Public commands go through the edge (Envoy) with a bearer token; the operator commands go to a
    service's own port with the operator certificate. docs/cli.md describes every command."""
    ctx.obj = App(
        server=server,
        token=_token(token, token_file),
        tls=tls,
        ca_file=ca_file,
        deadline=deadline,
        tls_dir=tls_dir,
    )


for group in (wallets, usdt, staking, payouts, payments, audit, keys, sync):
    cli.add_command(group)


def main() -> None:
    """The console script (`tronpay`, [project.scripts] in pyproject.toml)."""
    cli(prog_name="tronpay")
