"""`python -m devnet`: a local TRON full node speaking java-tron's HTTP API.

Prints (and with --accounts-file writes) the funded genesis accounts with their private keys and the
token addresses, then serves /wallet/*, /walletsolidity/* and /devnet/* until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from devnet import api, control
from devnet.node import Node, NodeConfig

log = logging.getLogger("devnet")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devnet", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8091, help="HTTP port (default 8091)")
    p.add_argument(
        "--block-time", type=float, default=3.0, help="seconds per block slot, wall-clock aligned (default 3)"
    )
    p.add_argument("--manual", action="store_true", help="produce blocks only via POST /devnet/mine")
    p.add_argument("--solidity-lag", type=int, default=18, help="solid = head - lag (default 18, as mainnet)")
    p.add_argument("--data-dir", type=Path, help="persist the chain here (survives restarts)")
    p.add_argument("--genesis", type=Path, help="genesis JSON overriding accounts, balances, parameters")
    p.add_argument("--accounts-file", type=Path, help="write the funded accounts + token addresses here")
    p.add_argument(
        "--mainnet",
        action="store_true",
        help="genesis with mainnet values where the devnet shortens them: 14-day unfreeze, 6 h maintenance, "
        "network-wide stake (realistic energy/bandwidth per staked TRX), USDT's energy factor (x4.4)",
    )
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    if not 0.05 <= args.block_time <= 3600:
        p.error("--block-time must be within [0.05, 3600] seconds")
    if args.solidity_lag < 0:
        p.error("--solidity-lag must be >= 0")
    return args


def build_app(node: Node, producer: control.Producer, accounts_doc: dict) -> web.Application:
    # the body cap is enforced by api.read_body; aiohttp's own cap must not answer first with a 413
    app = web.Application(middlewares=[control.fault_middleware], client_max_size=api.MAX_BODY * 2)
    api.add_routes(app, node)
    control.add_routes(app, producer, accounts_doc)
    return app


def write_accounts_file(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds private keys
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)
    os.replace(tmp, path)


async def serve(args: argparse.Namespace) -> None:
    block_time_ms = round(args.block_time * 1000)
    config = NodeConfig(
        data_dir=args.data_dir,
        genesis_file=args.genesis,
        solidity_lag=args.solidity_lag,
        block_time_ms=block_time_ms,
        profile="mainnet" if args.mainnet else None,
    )
    node = Node.open(config)
    url = f"http://{args.host}:{args.port}"
    doc = control.accounts_document(node, url)
    producer = control.Producer(node, block_time_ms, paused=args.manual)
    app = build_app(node, producer, doc)
    # in-flight requests get 1 s to finish on shutdown (a held "hang" fault must not delay it)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=1024)
    try:
        await site.start()
        if args.accounts_file:
            write_accounts_file(args.accounts_file, doc)
        print(json.dumps(doc, indent=2), flush=True)
        mode = "manual" if args.manual else f"{args.block_time:g}s blocks"
        print(f"devnet listening on {url} ({mode}, solidity lag {args.solidity_lag})", flush=True)
        producer.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down")
    finally:
        await producer.stop()
        await runner.cleanup()
        node.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        print(f"devnet: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
