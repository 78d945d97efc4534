"""Benchmark the devnet over HTTP: TRX and TRC20 (USDT) transfers per second, accepted + executed + included.

Starts `python -m devnet` on a free loopback port (or uses --url), pre-signs N transfers of each kind from
several funded accounts, sends them with C concurrent aiohttp clients to /wallet/broadcasttransaction, then
waits until every one is in a block with a SUCCESS receipt. Prints, per kind: accept rate (broadcast phase)
and end-to-end rate (first send -> last inclusion). Bounded: fails after --timeout seconds.

    make bench-devnet            # or: .venv/bin/python benchmarks/bench_devnet.py -n 3000 -c 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devnet import codec, crypto  # noqa: E402
from tests.harness.devnet import Devnet  # noqa: E402
from tests.harness.net import free_port, wait_for_port  # noqa: E402


def sign(tx: dict[str, Any], priv: bytes) -> dict[str, Any]:
    txid = codec.tx_id(codec.transaction_from_json(tx, False))
    tx["txID"] = txid.hex()
    tx["signature"] = [crypto.sign(txid, priv).hex()]
    return tx


def presign(accounts: list[dict[str, str]], usdt_hex: str, ref: dict[str, Any], n: int) -> dict[str, list]:
    """n TRX + n TRC20 transfers, round-robin over the senders, each unique by amount."""
    k = len(accounts)
    trx, trc20 = [], []
    for i in range(n):
        src, dst = accounts[i % k], accounts[(i + 1) % k]
        priv = bytes.fromhex(src["private_key"])
        value = {"owner_address": src["hex"], "to_address": dst["hex"], "amount": 1 + i}
        trx.append(sign(Devnet.make_tx("TransferContract", value, ref), priv))
        data = "a9059cbb" + dst["hex"][2:].rjust(64, "0") + format(1 + i, "064x")
        value = {"owner_address": src["hex"], "contract_address": usdt_hex, "data": data}
        trc20.append(sign(Devnet.make_tx("TriggerSmartContract", value, ref, fee_limit=100_000_000), priv))
    return {"TRX": trx, "TRC20": trc20}


async def send_all(url: str, txs: list[dict[str, Any]], concurrency: int) -> tuple[float, list[dict]]:
    bodies = [json.dumps(tx).encode() for tx in txs]
    results: list[dict] = [{}] * len(bodies)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(bodies)):
        queue.put_nowait(i)
    conn = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=conn) as session:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                async with session.post(
                    f"{url}/wallet/broadcasttransaction", data=bodies[i], headers=headers
                ) as r:
                    results[i] = await r.json(content_type=None)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0, results


async def wait_included(
    url: str, txids: set[str], start_block: int, deadline: float
) -> tuple[float, int, dict]:
    """Scan blocks after start_block until every txid is in one; return (time, blocks, receipt results)."""
    seen: dict[str, str] = {}
    nxt = start_block + 1
    async with aiohttp.ClientSession() as session:
        while len(seen) < len(txids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(seen)}/{len(txids)} transactions included")
            async with session.post(f"{url}/wallet/getnowblock") as r:
                head = (await r.json(content_type=None))["block_header"]["raw_data"].get("number", 0)
            while nxt <= head:
                async with session.post(f"{url}/wallet/gettransactioninfobyblocknum", json={"num": nxt}) as r:
                    for info in await r.json(content_type=None):
                        if info["id"] in txids:
                            seen[info["id"]] = info.get("receipt", {}).get("result", "SUCCESS")
                nxt += 1
            if len(seen) < len(txids):
                await asyncio.sleep(0.05)
        t = time.perf_counter()
    results: dict[str, int] = {}
    for outcome in seen.values():
        results[outcome] = results.get(outcome, 0) + 1
    return t, nxt - start_block - 1, results


async def head_number(url: str) -> int:
    async with aiohttp.ClientSession() as s, s.post(f"{url}/wallet/getnowblock") as r:
        return (await r.json(content_type=None))["block_header"]["raw_data"].get("number", 0)


async def ref_block(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.post(f"{url}/wallet/getblock", json={"detail": False}) as r:
        head = await r.json(content_type=None)
    now = int(time.time() * 1000)
    return {
        "ref_block_bytes": head["blockID"][12:16],
        "ref_block_hash": head["blockID"][16:32],
        "timestamp": now,
        "expiration": max(now, head["block_header"]["raw_data"]["timestamp"]) + 600_000,
    }


async def bench(
    url: str,
    accounts_doc: dict[str, Any],
    n: int,
    concurrency: int,
    limit_s: float,
    figures: dict[str, float],
) -> int:
    accounts = accounts_doc["accounts"]
    usdt_hex = crypto.from_base58(accounts_doc["tokens"]["USDT"]).hex()
    t = time.perf_counter()
    batches = presign(accounts, usdt_hex, await ref_block(url), n)
    took = time.perf_counter() - t
    print(f"pre-signed {n} TRX + {n} TRC20 transfers from {len(accounts)} accounts in {took:.1f}s")
    failed = 0
    for kind in ("TRX", "TRC20"):
        txs = batches[kind]
        start = await head_number(url)
        t0 = time.perf_counter()
        send_s, results = await send_all(url, txs, concurrency)
        rejected = [r for r in results if r.get("result") is not True]
        if rejected:
            print(f"{kind}: {len(rejected)} rejected, first: {rejected[0]}")
            failed += 1
        txids = {r["txid"] for r in results if r.get("result") is True}
        t_end, blocks, receipts = await wait_included(url, txids, start, time.monotonic() + limit_s)
        total = t_end - t0
        ok = receipts.get("SUCCESS", 0)
        print(
            f"{kind:5s}: {n} sent by {concurrency} clients | accepted {len(txids) / send_s:7.1f}/s "
            f"({send_s:.2f}s) | accepted+executed+included {ok / total:7.1f}/s "
            f"({total:.2f}s, {blocks} blocks) | receipts {receipts}"
        )
        figures[f"{kind.lower()}_accepted_per_second"] = len(txids) / send_s
        figures[f"{kind.lower()}_included_per_second"] = ok / total
        if ok != n:
            failed += 1
    return failed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=3000, help="transfers of each kind (default 3000)")
    p.add_argument("-c", "--concurrency", type=int, default=32, help="concurrent HTTP clients (default 32)")
    p.add_argument("--block-time", type=float, default=1.0, help="devnet block time in seconds (default 1)")
    p.add_argument("--timeout", type=float, default=180.0, help="give up after this many seconds per kind")
    p.add_argument("--url", help="use a running devnet (needs --accounts-file) instead of starting one")
    p.add_argument("--accounts-file", type=Path)
    p.add_argument("--report", type=Path, help="also write the key figures as JSON to this file")
    args = p.parse_args()

    proc = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-devnet-"))
    try:
        if args.url:
            url, acc_file = args.url.rstrip("/"), args.accounts_file
            if acc_file is None:
                p.error("--url needs --accounts-file")
        else:
            port = free_port()
            url, acc_file = f"http://127.0.0.1:{port}", tmp / "accounts.json"
            cmd = [sys.executable, "-m", "devnet", "--port", str(port), "--accounts-file", str(acc_file),
                   "--block-time", str(args.block_time), "--solidity-lag", "2"]  # fmt: skip
            log = open(tmp / "devnet.log", "w")  # noqa: SIM115 - the child's stderr for the whole run
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
            wait_for_port(port, timeout=120)
            for _ in range(100):
                if acc_file.exists():
                    break
                time.sleep(0.1)
        doc = json.loads(acc_file.read_text())
        figures: dict[str, float] = {}
        failed = asyncio.run(bench(url, doc, args.n, args.concurrency, args.timeout, figures))
        if args.report:
            args.report.write_text(json.dumps(figures, indent=2) + "\n")
        return 1 if failed else 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
