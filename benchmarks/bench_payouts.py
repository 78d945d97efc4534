"""Benchmark payouts end to end: REST through Envoy -> payout-router (rule checks, on-chain batches through
the genesis PayoutRouterV0, signing by wallet-manager, broadcast, the router's events on solidified blocks)
-> CONFIRMED, on a devnet with 1 s blocks (optionally its --mainnet profile).

Starts FerretDB, a devnet, tron-client, wallet-manager and payout-router (mutual TLS as in tests) and the
Envoy edge on loopback temp dirs, and imports the devnet's genesis `payout_disburser` key into wallet-manager
(the router's DISBURSER_ROLE holder). Then:
  1. per-recipient costs: after one warm-up payout (the day's first creates the router's day total), one
     request each of 1, 10, 50 and 100 fresh recipients, each sent alone (one on-chain batch each); energy and
     bandwidth per recipient and TRX burned per payout, read from the receipts with tronpy (an independent
     client; bandwidth is the signed transaction's size when free bandwidth paid it);
  2. throughput: --clients concurrent clients POST --payouts payouts in requests of --per-request items to
     /api/v1/payouts/batch; payouts per hour from the first request to the last CONFIRMED (the records' own
     confirm times), p50/p99 request -> CONFIRMED.
  3. the energy broker: trx-staking with a wallet staking --stake TRX for energy, payout-router restarted
     with PAYOUT_ENERGY_BROKER, one batch of 100: TRX burned per payout (all of it, and for energy).
Runs 1 and 2 burn TRX for the energy (no broker). One run; figures vary with the machine's load.

    make bench-payouts       # BENCH_PAYOUTS_ARGS="--payouts 2000 --clients 8 --per-request 50 --mainnet"
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
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from tronpay.common.v1 import common_pb2  # noqa: E402
from tronpay.payout_router.v1 import payout_router_pb2 as pb  # noqa: E402
from tronpay.payout_router.v1 import payout_router_pb2_grpc as pb_grpc  # noqa: E402
from tronpay.trx_staking.v1 import trx_staking_pb2 as ts  # noqa: E402
from tronpay.trx_staking.v1 import trx_staking_pb2_grpc as ts_grpc  # noqa: E402
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm  # noqa: E402
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as wm_grpc  # noqa: E402
from tronpy import Tron  # noqa: E402
from tronpy.providers import HTTPProvider  # noqa: E402

from services.common.tron.address import private_key_to_address  # noqa: E402
from tests.harness.devnet import Devnet  # noqa: E402
from tests.harness.envoy import mint, start_edge  # noqa: E402
from tests.harness.ferretdb import start_ferretdb, stop_ferretdb  # noqa: E402
from tests.harness.pki import aio_channel  # noqa: E402
from tests.harness.services import Cluster, ServiceFactory  # noqa: E402

TRX = 1_000_000
USDT = 1_000_000
SERVICES = ("tron_client", "wallet_manager", "payout_router")
FINAL = (pb.Payout.STATE_CONFIRMED, pb.Payout.STATE_FAILED, pb.Payout.STATE_CANCELLED)
STAKING_TYPES = [
    common_pb2.CONTRACT_TYPE_FREEZE_BALANCE_V2,
    common_pb2.CONTRACT_TYPE_DELEGATE_RESOURCE,
    common_pb2.CONTRACT_TYPE_UNDELEGATE_RESOURCE,
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def recipients(n: int) -> list[str]:
    return [private_key_to_address(os.urandom(32)) for _ in range(n)]


async def disburser(devnet: Devnet, target: str) -> str:
    """The genesis disburser key as an IMPORTED wallet only payout-router may sign with, for the router."""
    router = devnet.accounts["contracts"]["PayoutRouterV0"]
    key = devnet.accounts["role_accounts"]["payout_disburser"]["private_key"]
    policy = wm.SigningPolicy(
        allowed_contract_types=[common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT],
        allow_unlisted_assets=True,
        allowed_callers=["payout-router"],
        allowed_call_contracts=[router],
    )
    async with aio_channel(target, "wallet-manager") as ch:
        req = wm.CreateWalletRequest(
            request_id=uuid.uuid4().hex,
            wallet=wm.Wallet(owner_id="bench-payouts", kind=wm.Wallet.KIND_IMPORTED, policy=policy),
            private_key=key,
        )
        return str(
            (await wm_grpc.WalletManagerServiceStub(ch).CreateWallet(req, timeout=30)).wallet.wallet_id
        )


async def post_batches(
    rest: str, token: str, wallet_id: str, sizes: list[int], clients: int
) -> dict[str, tuple[float, list[str]]]:
    """POST one batch request per size from `clients` concurrent clients; request id -> (time, payout ids)."""
    out: dict[str, tuple[float, list[str]]] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for size in sizes:
        queue.put_nowait(size)
    headers = {"authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=clients), headers=headers
    ) as session:

        async def client() -> None:
            while not queue.empty():
                size = queue.get_nowait()
                request_id = uuid.uuid4().hex
                body = {
                    "requestId": request_id,
                    "walletId": wallet_id,
                    "asset": "ASSET_USDT",
                    "items": [{"recipientAddress": to, "amount": str(USDT)} for to in recipients(size)],
                }
                t = time.time()
                async with session.post(f"{rest}/api/v1/payouts/batch", json=body) as r:
                    reply = await r.json(content_type=None)
                if r.status != 200:
                    raise RuntimeError(f"batch refused: {r.status} {reply}")
                out[request_id] = (t, [p["payoutId"] for p in reply["payouts"]])

        await asyncio.gather(*(client() for _ in range(clients)))
    return out


async def follow(target: str, ids: list[str], limit_s: float) -> dict[str, pb.Payout]:
    """GetPayout until every payout is final."""
    done: dict[str, pb.Payout] = {}
    deadline = time.monotonic() + limit_s
    async with aio_channel(target, "payout-router", roles=("admin",)) as ch:
        stub = pb_grpc.PayoutRouterServiceStub(ch)
        pending = list(ids)
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} payouts not final after {limit_s}s")
            got = await asyncio.gather(
                *(stub.GetPayout(pb.GetPayoutRequest(payout_id=i), timeout=30) for i in pending[:300])
            )
            for r in got:
                if r.payout.state in FINAL:
                    done[r.payout.payout_id] = r.payout
            pending = [i for i in pending if i not in done]
            await asyncio.sleep(1.0)  # the figures come from the records' own times, not from this loop
    return done


async def broker_run(
    args: argparse.Namespace,
    devnet: Devnet,
    factory: ServiceFactory,
    cluster: Cluster,
    tron: Tron,
    rest: str,
    token: str,
    wallet_id: str,
) -> dict[str, float]:
    """trx-staking with a staking wallet that stakes --stake TRX for energy and may delegate to the
    disburser; payout-router restarted with PAYOUT_ENERGY_BROKER; one batch of 100: per payout, the TRX
    burned (all of it, and for energy) and the energy the transaction used, read with tronpy."""
    disburser_address = devnet.accounts["role_accounts"]["payout_disburser"]["address"]
    key = os.urandom(32)
    staking = private_key_to_address(key)
    for txid in devnet.faucet(staking, trx=(args.stake + 1_000) * TRX):
        devnet.wait_for_tx(txid, solid=True, timeout=120)
    policy = wm.SigningPolicy(
        allowed_contract_types=STAKING_TYPES,
        allow_unlisted_assets=True,
        allowed_callers=["trx-staking"],
        allowed_resource_receivers=[disburser_address],
    )
    async with aio_channel(cluster["wallet_manager"].target, "wallet-manager") as ch:
        req = wm.CreateWalletRequest(
            request_id=uuid.uuid4().hex,
            private_key=key.hex(),
            wallet=wm.Wallet(owner_id="bench-staking", kind=wm.Wallet.KIND_IMPORTED, policy=policy),
        )
        staking_id = (
            await wm_grpc.WalletManagerServiceStub(ch).CreateWallet(req, timeout=30)
        ).wallet.wallet_id
    ports = {k: cluster.env[k] for k in ("TRON_CLIENT_PORT", "WALLET_MANAGER_PORT")}
    proc = factory.start(
        "trx_staking",
        node_url=devnet.url,
        db_name=cluster.env["PAYMENT_DB_NAME"],
        env={
            **{
                k: v
                for k, v in cluster.processes["payout_router"].env.items()
                if k.startswith(("USDT_", "WALLET_", "LOG_"))
            },
            **ports,
            "STAKING_WALLET_ID": staking_id,
            "STAKING_POLL_SECONDS": "0.25",
            "STAKING_BROKER_BUDGET_SUN": str(args.stake * TRX),
            "STAKING_BROKER_MAX_PER_ADDRESS_SUN": str(args.stake * TRX),
            "STAKING_BROKER_IDLE_SECONDS": "3600",
        },
    )["trx_staking"]
    async with aio_channel(proc.target, "trx-staking") as ch:
        stake = await ts_grpc.TrxStakingServiceStub(ch).Stake(
            ts.StakeRequest(
                request_id=uuid.uuid4().hex,
                wallet_id=staking_id,
                amount_sun=args.stake * TRX,
                resource=common_pb2.RESOURCE_TYPE_ENERGY,
            ),
            timeout=60,
        )
    devnet.wait_for_tx(stake.operation.txid, solid=True, timeout=120)
    router = cluster["payout_router"]
    router.env.update(PAYOUT_ENERGY_BROKER="true", TRX_STAKING_PORT=str(proc.port))
    router.restart()
    ((_, ids),) = (await post_batches(rest, token, wallet_id, [100], 1)).values()
    done = await follow(router.target, ids, args.timeout)
    infos = [receipt(tron, t) for t in {p.txid for p in done.values()}]
    return {
        "burned": sum(i.get("fee", 0) for i in infos) / len(ids),
        "energy_fee": sum(i["receipt"].get("energy_fee", 0) for i in infos) / len(ids),
        "energy": sum(i["receipt"].get("energy_usage_total", 0) for i in infos) / len(ids),
    }


def receipt(client: Tron, txid: str) -> dict[str, Any]:
    info: dict[str, Any] = client.get_transaction_info(txid)
    return info


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-payouts-"))
    db = start_ferretdb(tmp / "ferretdb")
    extra = ["--mainnet"] if args.mainnet else []
    devnet = Devnet(tmp / "devnet", block_time=1.0, solidity_lag=args.solidity_lag, extra_args=extra).start()
    (tmp / "services").mkdir()
    factory = ServiceFactory(db, tmp / "services")
    tron = Tron(HTTPProvider(devnet.url, timeout=30))
    try:
        key = base64.b64encode(os.urandom(32)).decode()
        env = {
            "USDT_CONTRACT_ADDRESS": devnet.usdt,
            "WALLET_ENCRYPTION_KEY": key,
            "LOG_LEVEL": "WARNING",
            "PAYOUT_BATCH_SIZE": "100",
            "PAYOUT_MAX_FEE_LIMIT_SUN": str(15_000 * TRX),
            "PAYOUT_POLL_SECONDS": "0.5",
            "PAYOUT_DISPATCH_SECONDS": "0.5",
        }
        cluster = factory.start(*SERVICES, node_url=devnet.url, env=env)
        ports = {name: cluster[name].port for name in SERVICES}
        target = cluster["payout_router"].target
        with start_edge(ports, tmp / "edge", wait_healthy=SERVICES, concurrency=2) as edge:
            wallet_id = await disburser(devnet, cluster["wallet_manager"].target)
            token = mint("operator", subject="bench-payouts", ttl_seconds=3600)
            profile = "--mainnet profile" if args.mainnet else "default profile"
            print(
                f"payout-router: devnet ({profile}) 1 s blocks, solid = head - {args.solidity_lag}, "
                "genesis PayoutRouterV0, TRX burned for energy (no broker) until the last run"
            )
            print("  per recipient (fresh recipients, one on-chain disburseBatch each):")
            single_bw = 0.0
            per_recipient: dict[int, tuple[float, float, float]] = {}  # size -> energy, bandwidth, sun burned
            # A first payout of the day also creates the router's day total (20 000 energy): not measured.
            ((_, warm),) = (await post_batches(edge.rest_url, token, wallet_id, [1], 1)).values()
            await follow(target, warm, args.timeout)
            for size in (1, 10, 50, 100):
                sent = await post_batches(edge.rest_url, token, wallet_id, [size], 1)
                ((_, ids),) = sent.values()
                done = await follow(target, ids, args.timeout)
                txids = {p.txid for p in done.values()}
                states = {pb.Payout.State.Name(p.state) for p in done.values()}
                infos = [receipt(tron, t) for t in txids]
                energy = sum(i["receipt"].get("energy_usage_total", 0) for i in infos) / size
                bandwidth = sum(i["receipt"].get("net_usage", 0) for i in infos) / size
                if not bandwidth:  # paid from free/staked bandwidth: the transaction's own size
                    bandwidth = (
                        sum(len(tron.get_transaction(t)["raw_data_hex"]) / 2 + 65 + 64 for t in txids) / size
                    )
                burned = sum(i.get("fee", 0) for i in infos) / size
                single_bw = single_bw or bandwidth
                print(
                    f"    batch of {size:3d}: {len(txids)} tx, energy {energy:9,.0f}, "
                    f"bandwidth {bandwidth:6.1f} B ({bandwidth / single_bw:4.0%} of a single), "
                    f"TRX burned {burned / TRX:7.2f} {sorted(states)}"
                )
                per_recipient[size] = (energy, bandwidth, burned)
            per_request = args.per_request
            sizes = [per_request] * (args.payouts // per_request)
            t0 = time.time()
            sent = await post_batches(edge.rest_url, token, wallet_id, sizes, args.clients)
            accepted = time.time() - t0
            when = {pid: t for t, ids in sent.values() for pid in ids}
            done = await follow(target, list(when), args.timeout)
            with_broker = await broker_run(
                args, devnet, factory, cluster, tron, edge.rest_url, token, wallet_id
            )
        confirmed = [p for p in done.values() if p.state == pb.Payout.STATE_CONFIRMED]
        last = max(p.confirm_time.ToMilliseconds() / 1000 for p in confirmed)
        rate = len(confirmed) / (last - t0)
        latency = [p.confirm_time.ToMilliseconds() / 1000 - when[p.payout_id] for p in confirmed]
        chunks = {p.onchain_batch_id for p in confirmed}
        print(
            f"  throughput: {len(when)} payouts in {len(sent)} requests of {per_request} by {args.clients} "
            f"clients through Envoy, accepted in {accepted:.1f}s, {len(chunks)} on-chain batches"
        )
        print(
            f"    request -> CONFIRMED: {rate * 3600:,.0f} payouts/h ({rate:.1f}/s); "
            f"p50 {statistics.median(latency):.1f}s p99 {percentile(latency, 0.99):.1f}s; "
            f"{len(confirmed)}/{len(done)} CONFIRMED"
        )
        print(
            f"  with trx-staking's energy broker ({args.stake:,} TRX staked), a batch of 100: TRX burned per "
            f"payout {with_broker['burned'] / TRX:.6f} (for energy {with_broker['energy_fee'] / TRX:.6f}), "
            f"energy used per payout {with_broker['energy']:,.0f}"
        )
        if args.report:
            single_energy, single_bandwidth, _ = per_recipient[1]
            energy, bandwidth, burned = per_recipient[100]
            figures = {
                "payouts_per_hour": rate * 3600,
                "confirmed_p50_s": statistics.median(latency),
                "confirmed_p99_s": percentile(latency, 0.99),
                "energy_per_recipient_single": single_energy,
                "energy_per_recipient_batch100": energy,
                "energy_batch100_vs_single": energy / single_energy,
                "bandwidth_per_recipient_single": single_bandwidth,
                "bandwidth_per_recipient_batch100": bandwidth,
                "bandwidth_batch100_vs_single": bandwidth / single_bandwidth,
                "burned_sun_per_payout_batch100_no_broker": round(burned),
                "burned_sun_per_payout_with_broker": round(with_broker["burned"]),
                "energy_fee_sun_per_payout_with_broker": round(with_broker["energy_fee"]),
            }
            args.report.write_text(json.dumps(figures, indent=2) + "\n")
        return 0 if len(confirmed) == len(when) else 1
    finally:
        tron.provider.sess.close()
        factory.close()
        devnet.close()
        stop_ferretdb(db)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--payouts", type=int, default=1000, help="payouts of the throughput run (default 1000)")
    p.add_argument("--per-request", type=int, default=50, help="payouts per batch request (default 50)")
    p.add_argument("--clients", type=int, default=4, help="concurrent REST clients (default 4)")
    p.add_argument("--mainnet", action="store_true", help="the devnet's --mainnet profile")
    p.add_argument("--stake", type=int, default=5_000_000, help="TRX the broker's wallet stakes (default 5M)")
    p.add_argument("--solidity-lag", type=int, default=18, help="devnet solid = head - lag (default 18)")
    p.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    p.add_argument("--report", type=Path, help="also write the key figures as JSON to this file")
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
