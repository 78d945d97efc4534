"""Benchmark USDT transfers end to end: REST through Envoy -> usdt-manager (pre-checks, hold, build, sign,
broadcast, inclusion, finality) -> CONFIRMED, against a devnet with 1 s blocks.

Starts FerretDB, a devnet (--block-time 1, --solidity-lag 18 as mainnet), tron-client, wallet-manager and
usdt-manager (`python -m services.<name>`, mutual TLS as in tests) and the Envoy edge, all on loopback temp
dirs. Creates --wallets HD wallets funded by the faucet, then --clients concurrent HTTP clients POST
--transfers transfers (round-robin over the wallets, fresh recipients) to /api/v1/usdt/transfer with an
operator token, and the run follows them (GetTransfer, as payout-router) until all are final. Prints:
transfers per hour from the first request to the last CONFIRMED; p50/p99 seconds from request to INCLUDED
and to CONFIRMED (the service's include_time/confirm_time); the CPU each process used. Then, on the same
devnet, the same number of pre-signed USDT transfers broadcast directly by as many clients: the devnet's
own inclusion rate, and the service's rate as a ratio of it. One run; figures vary with the machine's load.

    make bench-usdt          # BENCH_USDT_ARGS="--transfers 1000 --clients 32 --wallets 8"
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "gen"), str(ROOT / "benchmarks")]

from bench_devnet import head_number, presign, ref_block, send_all, wait_included  # noqa: E402
from tronpay.common.v1 import common_pb2  # noqa: E402
from tronpay.usdt_manager.v1 import usdt_manager_pb2 as pb  # noqa: E402
from tronpay.usdt_manager.v1 import usdt_manager_pb2_grpc as pb_grpc  # noqa: E402
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm  # noqa: E402
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as wm_grpc  # noqa: E402

from devnet import crypto  # noqa: E402
from services.common.tron.address import private_key_to_address  # noqa: E402
from tests.harness.devnet import Devnet  # noqa: E402
from tests.harness.envoy import mint, start_edge  # noqa: E402
from tests.harness.ferretdb import start_ferretdb, stop_ferretdb  # noqa: E402
from tests.harness.pki import aio_channel  # noqa: E402
from tests.harness.services import ServiceFactory  # noqa: E402

TRX = 1_000_000
USDT = 1_000_000
TERMINAL = (pb.OPERATION_STATE_CONFIRMED, pb.OPERATION_STATE_FAILED, pb.OPERATION_STATE_EXPIRED)
SERVICES = ("tron_client", "wallet_manager", "usdt_manager")
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def recipients(n: int) -> list[str]:
    return [private_key_to_address(os.urandom(32)) for _ in range(n)]


async def wallets(devnet: Devnet, target: str, count: int) -> list[str]:
    """HD wallets whose policy lets usdt-manager send tokens, funded and solidified."""
    policy = wm.SigningPolicy(
        allowed_contract_types=[common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT],
        allow_unlisted_assets=True,
        allowed_callers=["usdt-manager"],
    )
    ids, txids = [], []
    async with aio_channel(target, "wallet-manager") as ch:
        stub = wm_grpc.WalletManagerServiceStub(ch)
        for i in range(count):
            req = wm.CreateWalletRequest(
                request_id=uuid.uuid4().hex,
                wallet=wm.Wallet(owner_id=f"bench-{i}", kind=wm.Wallet.KIND_HD, policy=policy),
            )
            w = (await stub.CreateWallet(req, timeout=30)).wallet
            ids.append(w.wallet_id)
            txids += devnet.faucet(w.address, trx=100_000 * TRX, usdt=1_000_000 * USDT)
    for txid in txids:
        devnet.wait_for_tx(txid, solid=True, timeout=120)
    return ids


async def send(rest: str, token: str, wallet_ids: list[str], n: int, clients: int) -> dict[str, float]:
    """POST n transfers from `clients` concurrent clients; transfer id -> wall time the request was sent."""
    to = recipients(n)
    sent: dict[str, float] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    headers = {"authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=clients), headers=headers
    ) as session:

        async def client() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                body = {"requestId": uuid.uuid4().hex, "walletId": wallet_ids[i % len(wallet_ids)],
                        "toAddress": to[i], "amount": str(USDT + i)}  # fmt: skip
                for _ in range(20):  # SENDER_BUSY / REQUEST_IN_PROGRESS are retried with the same request
                    t = time.time()
                    async with session.post(f"{rest}/api/v1/usdt/transfer", json=body) as r:
                        reply = await r.json(content_type=None)
                    if r.status == 200:
                        sent[reply["transfer"]["transferId"]] = t
                        break
                    if r.status not in (409, 503):
                        raise RuntimeError(f"transfer refused: {r.status} {reply}")
                    await asyncio.sleep(0.2)

        await asyncio.gather(*(client() for _ in range(clients)))
    return sent


async def follow(target: str, ids: list[str], limit_s: float) -> dict[str, pb.Transfer]:
    """GetTransfer (as payout-router) until every transfer is final."""
    done: dict[str, pb.Transfer] = {}
    deadline = time.monotonic() + limit_s
    async with aio_channel(target, "usdt-manager", identity="payout-router", roles=()) as ch:
        stub = pb_grpc.UsdtManagerServiceStub(ch)
        pending = list(ids)
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} transfers not final after {limit_s}s")
            got = await asyncio.gather(
                *(stub.GetTransfer(pb.GetTransferRequest(transfer_id=i), timeout=30) for i in pending[:200])
            )
            for r in got:
                if r.transfer.state in TERMINAL:
                    done[r.transfer.transfer_id] = r.transfer
            pending = [i for i in pending if i not in done]
            await asyncio.sleep(2.0)  # the figures come from the records' own times, not from this loop
    return done


async def devnet_rate(devnet: Devnet, n: int, clients: int, limit_s: float) -> float:
    """The devnet's own inclusion rate for n pre-signed USDT transfers (transfers per second)."""
    accounts = devnet.accounts["accounts"]
    txs = presign(accounts, crypto.from_base58(devnet.usdt).hex(), await ref_block(devnet.url), n)["TRC20"]
    start = await head_number(devnet.url)
    t0 = time.perf_counter()
    _, results = await send_all(devnet.url, txs, clients)
    txids = {r["txid"] for r in results if r.get("result") is True}
    t_end, _, receipts = await wait_included(devnet.url, txids, start, time.monotonic() + limit_s)
    return receipts.get("SUCCESS", 0) / (t_end - t0)


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-usdt-"))
    db = start_ferretdb(tmp / "ferretdb")
    devnet = Devnet(tmp / "devnet", block_time=1.0, solidity_lag=args.solidity_lag).start()
    (tmp / "services").mkdir()
    factory = ServiceFactory(db, tmp / "services")
    try:
        key = base64.b64encode(os.urandom(32)).decode()
        env = {"USDT_CONTRACT_ADDRESS": devnet.usdt, "WALLET_ENCRYPTION_KEY": key, "LOG_LEVEL": "WARNING",
               "USDT_POLL_SECONDS": "0.5"}  # fmt: skip
        cluster = factory.start(*SERVICES, node_url=devnet.url, env=env)
        ports = {name: cluster[name].port for name in SERVICES}
        with start_edge(ports, tmp / "edge", wait_healthy=SERVICES, concurrency=2) as edge:
            wallet_ids = await wallets(devnet, cluster["wallet_manager"].target, args.wallets)
            token = mint("operator", subject="bench-usdt", ttl_seconds=3600)
            pids = {"ferretdb": db.process.pid, "envoy": edge.process.pid,
                    "devnet": devnet.proc.pid if devnet.proc else 0,
                    **{n: p.process.pid for n, p in cluster.processes.items() if p.process}}  # fmt: skip
            cpu0 = {k: cpu_seconds(v) for k, v in pids.items()}
            t0 = time.time()
            sent = await send(edge.rest_url, token, wallet_ids, args.transfers, args.clients)
            created_s = time.time() - t0
            done = await follow(cluster["usdt_manager"].target, list(sent), args.timeout)
            cpu = {k: cpu_seconds(v) - cpu0[k] for k, v in pids.items()}
        confirmed = [t for t in done.values() if t.state == pb.OPERATION_STATE_CONFIRMED]
        states = {pb.OperationState.Name(s): sum(1 for t in done.values() if t.state == s) for s in TERMINAL}
        last = max(t.confirm_time.ToMilliseconds() / 1000 for t in confirmed)
        wall = last - t0
        rate = len(confirmed) / wall
        to_included = [t.include_time.ToMilliseconds() / 1000 - sent[t.transfer_id] for t in confirmed]
        to_confirmed = [t.confirm_time.ToMilliseconds() / 1000 - sent[t.transfer_id] for t in confirmed]
        print(f"usdt-manager: {args.transfers} transfers from {args.wallets} HD wallets, {args.clients} REST "
              f"clients through Envoy, devnet 1 s blocks, solid = head - {args.solidity_lag}")  # fmt: skip
        print(f"  accepted (SIGNED) in {created_s:.1f}s; all final after {wall:.1f}s: {states}")
        print(f"  throughput request -> CONFIRMED: {rate * 3600:,.0f} transfers/h ({rate:.1f}/s)")
        for label, values in (("INCLUDED ", to_included), ("CONFIRMED", to_confirmed)):
            p50, p99 = statistics.median(values), percentile(values, 0.99)
            print(f"  request -> {label} p50 {p50:5.2f}s  p99 {p99:5.2f}s")
        print(
            "  CPU seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
        )
        own = await devnet_rate(devnet, args.transfers, args.clients, args.timeout)
        print(f"devnet alone: {args.transfers} pre-signed USDT transfers, {args.clients} clients: "
              f"{own * 3600:,.0f} included/h ({own:.1f}/s)")  # fmt: skip
        print(f"ratio usdt-manager CONFIRMED / devnet included: {rate / own:.3f}")
        if args.report:
            figures = {"transfers_per_hour": rate * 3600, "devnet_included_per_hour": own * 3600,
                       "confirmed_to_devnet": rate / own}  # fmt: skip
            for key, values in (("included", to_included), ("confirmed", to_confirmed)):
                figures |= {
                    f"{key}_p50_s": statistics.median(values),
                    f"{key}_p99_s": percentile(values, 0.99),
                }
            args.report.write_text(json.dumps(figures, indent=2) + "\n")
        return 0 if len(confirmed) == args.transfers else 1
    finally:
        factory.close()
        devnet.close()
        stop_ferretdb(db)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transfers", type=int, default=600, help="transfers to send (default 600)")
    p.add_argument("--clients", type=int, default=32, help="concurrent REST clients (default 32)")
    p.add_argument("--wallets", type=int, default=8, help="funded HD wallets sending (default 8)")
    p.add_argument("--solidity-lag", type=int, default=18, help="devnet solid = head - lag (default 18)")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    p.add_argument("--report", type=Path, help="also write the key figures as JSON to this file")
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
