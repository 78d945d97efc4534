"""Benchmark payments end to end: payments created through Envoy (REST), paid by concurrent payers on a devnet
with 1 s blocks, detected by payment-gateway from tron-client's transfer stream, PAID once solidified, and
the PAID webhook delivered to a local receiver that verifies its signature.

Starts FerretDB, a devnet (--block-time 1, solid = head - --solidity-lag), tron-client, wallet-manager and
payment-gateway (mutual TLS as in tests) and the Envoy edge, all on loopback temp dirs. --clients concurrent
HTTP clients POST --payments payments (USDT, each with its own amount) to /api/v1/payments/process with an
operator token and a webhook URL of the receiver; then the devnet's funded accounts pay every deposit address
with pre-signed TRC20 transfers from --clients concurrent payers. Prints: payments per hour from the first
payment to the last PAID webhook; p50/p99 seconds from the paying transaction's block to the PAID webhook's
arrival, and from the block's solidification (the timestamp of the block --solidity-lag later) to it; the
webhook backlog (deliveries still pending) at the end; the CPU each process used. One run; figures vary with
the machine's load.

    make bench-payments       # BENCH_PAYMENTS_ARGS="--payments 1000 --clients 32"
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
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "gen"), str(ROOT / "benchmarks")]

from bench_devnet import ref_block, send_all, sign  # noqa: E402
from bench_usdt import cpu_seconds, percentile  # noqa: E402
from tronpay.payment_gateway.v1 import payment_gateway_pb2 as pb  # noqa: E402
from tronpay.payment_gateway.v1 import payment_gateway_pb2_grpc as pb_grpc  # noqa: E402

from devnet import crypto  # noqa: E402
from services.payment_gateway.signing import merchant_secret  # noqa: E402
from tests.harness.devnet import Devnet  # noqa: E402
from tests.harness.envoy import mint, start_edge  # noqa: E402
from tests.harness.ferretdb import start_ferretdb, stop_ferretdb  # noqa: E402
from tests.harness.pki import aio_channel  # noqa: E402
from tests.harness.services import ServiceFactory  # noqa: E402
from tests.payment_gateway.webhook_receiver import WebhookReceiver  # noqa: E402

USDT = 1_000_000
SERVICES = ("tron_client", "wallet_manager", "payment_gateway")
MERCHANT = "bench-shop"
MASTER = "bench-master-secret-" + uuid.uuid4().hex


async def create(rest: str, token: str, url: str, n: int, clients: int) -> dict[str, dict[str, Any]]:
    """POST n payments from `clients` concurrent clients; payment id -> the created payment (JSON)."""
    made: dict[str, dict[str, Any]] = {}
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
                body = {
                    "requestId": uuid.uuid4().hex,
                    "merchantId": MERCHANT,
                    "orderId": f"order-{i}",
                    "asset": "ASSET_USDT",
                    "amount": str(USDT + i),
                    "webhookUrl": url,
                    "ttl": "3600s",
                }
                async with session.post(f"{rest}/api/v1/payments/process", json=body) as r:
                    reply = await r.json(content_type=None)
                if r.status != 200:
                    raise RuntimeError(f"payment refused: {r.status} {reply}")
                made[reply["payment"]["paymentId"]] = reply["payment"]

        await asyncio.gather(*(client() for _ in range(clients)))
    return made


def payer_txs(devnet: Devnet, ref: dict[str, Any], payments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One pre-signed USDT transfer per payment of its exact amount, round-robin over the funded accounts."""
    accounts = devnet.accounts["accounts"]
    usdt_hex = crypto.from_base58(devnet.usdt).hex()
    txs = []
    for i, p in enumerate(payments):
        src = accounts[i % len(accounts)]
        to_hex = crypto.from_base58(p["depositAddress"]).hex()
        data = "a9059cbb" + to_hex[2:].rjust(64, "0") + format(int(p["amount"]), "064x")
        value = {"owner_address": src["hex"], "contract_address": usdt_hex, "data": data}
        tx = Devnet.make_tx("TriggerSmartContract", value, ref, fee_limit=100_000_000)
        txs.append(sign(tx, bytes.fromhex(src["private_key"])))
    return txs


async def wait_paid(receiver: WebhookReceiver, ids: set[str], limit_s: float) -> dict[str, float]:
    """Payment id -> arrival time of its payment.paid webhook, once every payment has one (bounded)."""
    deadline = time.monotonic() + limit_s
    while True:
        arrived = {
            str(r.payload["payment_id"]): r.arrived
            for r in list(receiver.received)
            if r.payload.get("type") == "payment.paid"
        }
        if ids <= set(arrived):
            return {k: v for k, v in arrived.items() if k in ids}
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(ids - set(arrived))} payments without a PAID webhook after {limit_s}s")
        await asyncio.sleep(0.5)


async def block_times(url: str, numbers: set[int]) -> dict[int, float]:
    """Block number -> its timestamp (seconds)."""
    out: dict[int, float] = {}
    async with aiohttp.ClientSession() as s:
        for n in sorted(numbers):
            async with s.post(f"{url}/wallet/getblockbynum", json={"num": n}) as r:
                out[n] = (await r.json(content_type=None))["block_header"]["raw_data"]["timestamp"] / 1000
    return out


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-payments-"))
    db = start_ferretdb(tmp / "ferretdb")
    devnet = Devnet(tmp / "devnet", block_time=1.0, solidity_lag=args.solidity_lag).start()
    (tmp / "services").mkdir()
    factory = ServiceFactory(db, tmp / "services")
    receiver = WebhookReceiver([merchant_secret(MASTER, MERCHANT)])
    await receiver.start()
    try:
        key = base64.b64encode(os.urandom(32)).decode()
        env = {
            "USDT_CONTRACT_ADDRESS": devnet.usdt,
            "WALLET_ENCRYPTION_KEY": key,
            "LOG_LEVEL": "WARNING",
            "PAYMENT_WEBHOOK_MASTER_SECRETS": MASTER,
            "PAYMENT_WEBHOOK_ALLOW_PRIVATE": "true",
            "PAYMENT_SWEEP_ENABLED": "false",
        }
        cluster = factory.start(*SERVICES, node_url=devnet.url, env=env)
        ports = {name: cluster[name].port for name in SERVICES}
        with start_edge(ports, tmp / "edge", wait_healthy=SERVICES, concurrency=2) as edge:
            token = mint("operator", subject="bench-payments", ttl_seconds=3600)
            pids = {
                "ferretdb": db.process.pid,
                "envoy": edge.process.pid,
                "devnet": devnet.proc.pid if devnet.proc else 0,
                **{n: p.process.pid for n, p in cluster.processes.items() if p.process},
            }
            cpu0 = {k: cpu_seconds(v) for k, v in pids.items()}
            t0 = time.time()
            made = await create(edge.rest_url, token, receiver.url, args.payments, args.clients)
            created_s = time.time() - t0
            txs = payer_txs(devnet, await ref_block(devnet.url), list(made.values()))
            _, results = await send_all(devnet.url, txs, args.clients)
            refused = [r for r in results if r.get("result") is not True]
            if refused:
                raise RuntimeError(f"{len(refused)} payments not accepted by the devnet: {refused[:3]}")
            paid_at = await wait_paid(receiver, set(made), args.timeout)
            last = max(paid_at.values())
            cpu = {k: cpu_seconds(v) - cpu0[k] for k, v in pids.items()}
            target = cluster["payment_gateway"].target
            async with aio_channel(target, "payment-gateway") as ch:  # as the edge
                stub = pb_grpc.PaymentGatewayServiceStub(ch)
                got = await asyncio.gather(
                    *(stub.GetPayment(pb.GetPaymentRequest(payment_id=p), timeout=30) for p in made)
                )
            async with aio_channel(target, "payment-gateway", identity="operator") as ch:
                pending = await pb_grpc.PaymentGatewayServiceStub(ch).ListWebhookDeliveries(
                    pb.ListWebhookDeliveriesRequest(state=pb.WebhookDelivery.STATE_PENDING, page_size=1000),
                    timeout=30,
                )
        blocks = {p.payment.payment_id: p.payment.transfers[0].block_number for p in got}
        times = await block_times(
            devnet.url, set(blocks.values()) | {b + args.solidity_lag for b in blocks.values()}
        )
        to_paid = [paid_at[p] - times[b] for p, b in blocks.items()]
        beyond_solid = [paid_at[p] - times[b + args.solidity_lag] for p, b in blocks.items()]
        paid_time = {p.payment.payment_id: p.payment.paid_time.ToMilliseconds() / 1000 for p in got}
        state_after_solid = [paid_time[p] - times[b + args.solidity_lag] for p, b in blocks.items()]
        states = {
            pb.Payment.State.Name(s): sum(1 for p in got if p.payment.state == s)
            for s in {p.payment.state for p in got}
        }
        rate = len(paid_at) / (last - t0)
        print(
            f"payment-gateway: {args.payments} USDT payments through Envoy, {args.clients} REST clients and "
            f"{args.clients} payers, devnet 1 s blocks, solid = head - {args.solidity_lag}"
        )
        print(f"  created in {created_s:.1f}s; all PAID webhooks after {last - t0:.1f}s: {states}")
        print(f"  throughput creation -> PAID webhook: {rate * 3600:,.0f} payments/h ({rate:.1f}/s)")
        for label, values in (
            ("paying block -> PAID webhook", to_paid),
            ("solidified   -> PAID webhook", beyond_solid),
            ("solidified   -> PAID state  ", state_after_solid),
        ):
            print(f"  {label}: p50 {statistics.median(values):5.2f}s  p99 {percentile(values, 0.99):5.2f}s")
        print(
            f"  webhook backlog at the end: {len(pending.deliveries)} pending; "
            f"receiver: {len(receiver.received)} accepted, {receiver.rejected} rejected"
        )
        print(
            "  CPU seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
        )
        if args.report:
            figures = {"payments_per_hour": rate * 3600, "webhook_backlog": len(pending.deliveries)}
            for key, values in (("block_to_paid", to_paid), ("solidified_to_paid", beyond_solid)):
                figures |= {
                    f"{key}_p50_s": statistics.median(values),
                    f"{key}_p99_s": percentile(values, 0.99),
                }
            args.report.write_text(json.dumps(figures, indent=2) + "\n")
        return 0 if len(paid_at) == args.payments else 1
    finally:
        await receiver.stop()
        factory.close()
        devnet.close()
        stop_ferretdb(db)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--payments", type=int, default=1000, help="payments to create and pay (default 1000)")
    p.add_argument("--clients", type=int, default=32, help="concurrent REST clients and payers (default 32)")
    p.add_argument("--solidity-lag", type=int, default=18, help="devnet solid = head - lag (default 18)")
    p.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    p.add_argument("--report", type=Path, help="also write the key figures as JSON to this file")
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
