"""Benchmark tron-client's block sync: blocks per second ingested from a cold cursor, mainnet-sized blocks.

1. Builds a devnet chain in-process (devnet.node, the same engine `python -m devnet` runs) with --blocks
   blocks of --trx TRX transfers and --usdt USDT transfers each (default 200 + 100, about mainnet's ~300
   transactions per block), to a pool of recipients of which --watched receive from time to time.
2. Serves that chain with `python -m devnet --manual` (nothing new is produced while measuring).
3. Starts FerretDB and tron-client (sync off), watches the chosen addresses through WatchAddresses.
4. Restarts tron-client with sync on from block 1 and measures, from its metrics, the time between the
   first and the last ingested block. Then checks every transfer to a watched address is recorded (FINAL up
   to the solidified block, which stays SOLIDITY_LAG blocks behind the head).
Also prints the devnet's own serving rate for the same calls (the ceiling a single devnet process sets).
Target: >= 100 blocks/s (one day of mainnet, 28,800 blocks, in under 5 minutes).

    make bench-sync            # or: .venv/bin/python benchmarks/bench_sync.py --blocks 600
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "gen"), str(ROOT)]

from tronpay.common.v1 import common_pb2  # noqa: E402
from tronpay.tron_client.v1 import tron_client_pb2 as pb  # noqa: E402
from tronpay.tron_client.v1 import tron_client_pb2_grpc as pb_grpc  # noqa: E402

from devnet import crypto  # noqa: E402
from devnet.node import Node, NodeConfig  # noqa: E402
from tests.harness.ferretdb import start_ferretdb, stop_ferretdb  # noqa: E402
from tests.harness.net import free_port, wait_for_port  # noqa: E402
from tests.harness.pki import channel, pki_dir  # noqa: E402

SOLIDITY_LAG = 18


def build_chain(
    data_dir: Path, blocks: int, trx: int, usdt: int, recipients: int, watched: int
) -> dict[str, Any]:
    """Mine the chain; returns the watched addresses and how many transfers each kind sent to them."""
    node = Node.open(NodeConfig(data_dir=data_dir, solidity_lag=SOLIDITY_LAG))
    rng = random.Random(7)
    pool = [b"\x41" + rng.randbytes(20) for _ in range(recipients)]
    watch = pool[:watched]
    expected = 0
    start = time.perf_counter()
    for n in range(blocks):
        for i in range(trx):
            to = pool[rng.randrange(recipients)]
            expected += to in watch
            node.faucet(to, trx=1_000_000 + i)
        for i in range(usdt):
            to = pool[rng.randrange(recipients)]
            expected += to in watch
            node.faucet(to, usdt=1 + i)
        node.mine(1, spacing_ms=3000)
        if (n + 1) % 100 == 0:
            print(f"  built {n + 1}/{blocks} blocks ({(n + 1) / (time.perf_counter() - start):.1f} blocks/s)")
    head = node.head_number()
    node.close()
    return {"watched": [crypto.to_base58(a) for a in watch], "expected": expected, "head": head}


def start_devnet(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "devnet", "--port", str(port), "--data-dir", str(data_dir), "--manual",
           "--solidity-lag", str(SOLIDITY_LAG), "--log-level", "WARNING"]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(port, timeout=300)
    return proc


async def devnet_rate(url: str, first: int, last: int, chunk: int, concurrency: int) -> float:
    """Blocks/s the devnet serves the calls sync makes (ranges + receipts), nothing else done."""
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as http:

        async def post(path: str, body: dict[str, Any]) -> bytes:
            async with sem, http.post(f"{url}/{path}", json=body) as resp:
                return await resp.read()

        start = time.perf_counter()
        calls = []
        for a in range(first, last + 1, chunk):
            calls.append(
                post("wallet/getblockbylimitnext", {"startNum": a, "endNum": min(last + 1, a + chunk)})
            )
        calls += [post("wallet/gettransactioninfobyblocknum", {"num": n}) for n in range(first, last + 1)]
        await asyncio.gather(*calls)
        return (last - first + 1) / (time.perf_counter() - start)


def metric(port: int, name: str) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return -1.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1.0


def tron_client(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "services.tron_client"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--blocks", type=int, default=600)
    p.add_argument("--trx", type=int, default=200, help="TRX transfers per block")
    p.add_argument("--usdt", type=int, default=100, help="USDT transfers per block")
    p.add_argument("--recipients", type=int, default=500)
    p.add_argument("--watched", type=int, default=10, help="recipients that are watched")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    p.add_argument("--report", type=Path, help="also write the key figures as JSON to this file")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    procs: list[subprocess.Popen[bytes]] = []
    db = None
    try:
        print(f"building {args.blocks} blocks of {args.trx} TRX + {args.usdt} USDT transfers ...")
        chain = build_chain(tmp / "chain", args.blocks, args.trx, args.usdt, args.recipients, args.watched)
        head = chain["head"]
        port = free_port()
        t0 = time.perf_counter()
        procs.append(start_devnet(tmp / "chain", port, tmp / "devnet.log"))
        url = f"http://127.0.0.1:{port}"
        print(f"devnet serving {head} blocks (loaded in {time.perf_counter() - t0:.1f} s)")
        usdt = httpx.get(f"{url}/devnet/accounts").json()["tokens"]["USDT"]
        # The devnet renders each block's JSON once and caches it (java-tron serves from its DB); this first
        # pass renders everything, so the measurement below is of sync, not of the devnet's renderer.
        cold = asyncio.run(devnet_rate(url, 1, head, 50, 8))
        warm = asyncio.run(devnet_rate(url, 1, head, 50, 8))
        print(
            f"devnet serving the same calls alone: {cold:.1f} blocks/s rendering, {warm:.1f} blocks/s cached"
        )

        db = start_ferretdb(tmp / "ferretdb")
        grpc_port, metrics_port = free_port(), free_port()
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'gen'}{os.pathsep}{ROOT}", "TRON_NETWORK": "devnet",
               "TRON_NODE_URL": url, "MONGODB_URI": db.uri, "PAYMENT_DB_NAME": "bench_sync",
               "TRON_CLIENT_PORT": str(grpc_port), "METRICS_PORT": str(metrics_port),
               "USDT_CONTRACT_ADDRESS": usdt, "TRON_SYNC_START_BLOCK": "1", "TRON_SYNC_ENABLED": "false",
               "SHUTDOWN_DRAIN_SECONDS": "0.1", "TLS_DIR": str(pki_dir()), "HEALTH_PORT": "0"}  # fmt: skip
        tc = tron_client(env, tmp / "tron-client.log")
        procs.append(tc)  # stopped in `finally` should the watch fail
        wait_for_port(grpc_port, timeout=60)
        with channel(f"127.0.0.1:{grpc_port}", "tron-client", identity="payment-gateway", roles=()) as ch:
            stub = pb_grpc.TronClientServiceStub(ch)
            req = pb.WatchAddressesRequest(
                request_id="bench-sync-watch", addresses=chain["watched"], watcher="payment-gateway"
            )
            stub.WatchAddresses(req, timeout=30, wait_for_ready=True)
        stop(procs.pop())

        tc = tron_client({**env, "TRON_SYNC_ENABLED": "true"}, tmp / "tron-client.log")
        procs.append(tc)
        deadline = time.monotonic() + args.timeout
        first_at = first_block = None
        while True:
            now, block = time.perf_counter(), metric(metrics_port, "tron_sync_block_number")
            if first_at is None and block > 0:
                first_at, first_block = now, block
            if block >= head:
                break
            if time.monotonic() > deadline or tc.poll() is not None:
                raise SystemExit(f"sync did not reach block {head} (at {block}); see {tmp}/tron-client.log")
            time.sleep(0.05)
        assert first_at is not None and first_block is not None
        rate = (head - first_block) / max(now - first_at, 1e-9)

        with channel(f"127.0.0.1:{grpc_port}", "tron-client", identity="payment-gateway", roles=()) as ch:
            stub = pb_grpc.TronClientServiceStub(ch)
            recorded = final = 0
            for addr in chain["watched"]:
                token = ""
                while True:
                    resp = stub.ListTransfers(
                        pb.ListTransfersRequest(address=addr, page_size=1000, page_token=token)
                    )
                    recorded += len(resp.transfers)
                    final += sum(t.state == common_pb2.TRANSFER_STATE_FINAL for t in resp.transfers)
                    token = resp.next_page_token
                    if not token:
                        break
        events = metric(metrics_port, "tron_sync_events_emitted_total")

        print()
        print(f"blocks: {head} x ~{args.trx + args.usdt} txs ({args.usdt} USDT), watched: {args.watched}")
        print(
            f"transfers to watched addresses: sent {chain['expected']}, recorded {recorded} ({final} FINAL)"
        )
        print(f"events emitted: {events:.0f}")
        # A chain short enough to be ingested in one commit shows no first-to-last interval to time.
        day = f"{28_800 / rate / 60:.1f} min" if rate else "n/a: ingested in one step, use more --blocks"
        print(f"sync ingest rate (cold cursor): {rate:.1f} blocks/s  (one mainnet day, 28,800 blocks: {day})")
        ok = recorded == chain["expected"]
        print(
            "target >= 100 blocks/s:",
            "met" if rate >= 100 else "NOT met",
            "| correctness:",
            "ok" if ok else "MISMATCH",
        )
        if args.report:
            figures = {"blocks_per_second": rate, "devnet_cached_blocks_per_second": warm, "blocks": head}
            args.report.write_text(json.dumps(figures, indent=2) + "\n")
        return 0 if ok else 1
    finally:
        for proc in reversed(procs):
            stop(proc)
        if db is not None:
            stop_ferretdb(db)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
