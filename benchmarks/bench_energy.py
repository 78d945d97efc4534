"""Benchmark the energy broker: TRX burned and energy delegated per USDT transfer, with and without it.

Starts FerretDB, a devnet with its --mainnet profile (the rest of the network's stake, so about 9.5 energy per
staked TRX, and USDT's dynamic energy factor: about 124,000 energy for a transfer to a new holder), and
tron-client, wallet-manager and trx-staking. The staking wallet stakes --stake TRX for energy. Then the same
transfers run twice, each run from its own --senders hot addresses (USDT from the faucet, TRX for bandwidth
and, without the broker, for the energy it burns) to fresh recipients, every sender sending its share one
after the other:

  estimate (tron-client EstimateEnergy) -> [with the broker: RequestEnergy(sender, estimate)] -> build
  (tron-client) -> sign (wallet-manager, the hot wallet's policy) -> broadcast (tron-client) -> wait for the
  receipt (the devnet)

and prints, per run, the TRX burned for energy and for bandwidth per transfer (the receipts' energy_fee and
net_fee), the energy used per transfer, and the energy the broker delegated per transfer (the staked TRX it
delegated, at the network's energy per TRX). Target: 0 TRX burned for energy with the broker when the stake
covers the need.

usage: python benchmarks/bench_energy.py [--transfers 200] [--senders 20] [--stake 5000000] [--block-time 1]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "gen")]

from tronpay.common.v1 import common_pb2  # noqa: E402
from tronpay.tron_client.v1 import tron_client_pb2 as tc  # noqa: E402
from tronpay.tron_client.v1 import tron_client_pb2_grpc as tc_grpc  # noqa: E402
from tronpay.trx_staking.v1 import trx_staking_pb2 as ts  # noqa: E402
from tronpay.trx_staking.v1 import trx_staking_pb2_grpc as ts_grpc  # noqa: E402
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm  # noqa: E402
from tronpay.wallet_manager.v1 import wallet_manager_pb2_grpc as wm_grpc  # noqa: E402

from services.common.tron.abi import encode_args  # noqa: E402
from services.common.tron.address import private_key_to_address  # noqa: E402
from tests.harness.devnet import Devnet  # noqa: E402
from tests.harness.ferretdb import start_ferretdb, stop_ferretdb  # noqa: E402
from tests.harness.services import Cluster, ServiceFactory  # noqa: E402

TRX = 1_000_000
USDT = 1_000_000
AMOUNT = 3 * USDT
STAKING_TYPES = [
    common_pb2.CONTRACT_TYPE_FREEZE_BALANCE_V2, common_pb2.CONTRACT_TYPE_DELEGATE_RESOURCE,
    common_pb2.CONTRACT_TYPE_UNDELEGATE_RESOURCE,
]  # fmt: skip
ENCRYPTION_KEY = "bench-energy " + secrets.token_urlsafe(24)


def rid() -> str:
    return "b-" + uuid.uuid4().hex


def new_key() -> tuple[str, str]:
    key = secrets.token_hex(32)
    return key, private_key_to_address(bytes.fromhex(key))


@dataclass
class Run:
    """What one run measured."""

    transfers: int = 0
    failed: int = 0
    energy_fee_sun: int = 0
    net_fee_sun: int = 0
    energy_used: int = 0
    delegated_sun: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class Bench:
    def __init__(self, devnet: Devnet, cluster: Cluster) -> None:
        self.devnet = devnet
        self.tron = tc_grpc.TronClientServiceStub(
            cluster["tron_client"].channel(identity="usdt-manager", roles=())
        )
        self.signer = wm_grpc.WalletManagerServiceStub(
            cluster["wallet_manager"].channel(identity="usdt-manager", roles=())
        )
        self.wallets = wm_grpc.WalletManagerServiceStub(cluster["wallet_manager"].channel())
        self.cluster = cluster

    def wallet(self, key: str, policy: wm.SigningPolicy) -> str:
        req = wm.CreateWalletRequest(
            request_id=rid(),
            wallet=wm.Wallet(owner_id="bench-energy", kind=wm.Wallet.KIND_IMPORTED, policy=policy),
            private_key=key,
        )
        return str(self.wallets.CreateWallet(req, timeout=30).wallet.wallet_id)

    def fund(self, address: str, trx: int, usdt: int = 0) -> None:
        for txid in self.devnet.faucet(address, trx=trx, usdt=usdt):
            self.devnet.wait_for_tx(txid, solid=True, timeout=120)

    def transfer(
        self, broker: ts_grpc.TrxStakingServiceStub | None, wallet_id: str, sender: str, run: Run
    ) -> None:
        to = new_key()[1]
        parameter = encode_args(["address", "uint256"], [to, AMOUNT])
        estimate = self.tron.EstimateEnergy(
            tc.EstimateEnergyRequest(owner_address=sender, contract_address=self.devnet.usdt,
                                     function_selector="transfer(address,uint256)", parameter=parameter),
            timeout=30,
        )  # fmt: skip
        if broker is not None:
            got = broker.RequestEnergy(
                ts.RequestEnergyRequest(request_id=rid(), address=sender, energy=estimate.energy_required),
                timeout=90,
            )
            run.delegated_sun += got.delegated_sun
            if got.outcome == ts.RequestEnergyResponse.OUTCOME_REFUSED:
                run.refusals[got.refusal_reason] = run.refusals.get(got.refusal_reason, 0) + 1
        build = tc.BuildTransactionRequest(
            owner_address=sender,
            trigger_smart_contract=tc.TriggerSmartContractParams(
                contract_address=self.devnet.usdt, function_selector="transfer(address,uint256)",
                parameter=parameter, fee_limit_sun=max(estimate.suggested_fee_limit_sun, TRX),
            ),
        )  # fmt: skip
        tx = self.tron.BuildTransaction(build, timeout=30).transaction
        signed = self.signer.SignTransaction(
            wm.SignTransactionRequest(request_id=rid(), wallet_id=wallet_id, transaction=tx, purpose="bench"),
            timeout=30,
        )
        sent = common_pb2.Transaction(raw_data=tx.raw_data, signatures=[signed.signature])
        self.tron.BroadcastTransaction(
            tc.BroadcastTransactionRequest(request_id=rid(), transaction=sent), timeout=30
        )
        info = self.devnet.wait_for_tx(tx.txid, timeout=120)
        receipt = info.get("receipt", {})
        run.transfers += 1
        run.failed += receipt.get("result") != "SUCCESS"
        run.energy_fee_sun += int(receipt.get("energy_fee", 0))
        run.net_fee_sun += int(receipt.get("net_fee", 0))
        run.energy_used += int(receipt.get("energy_usage_total", 0))

    def run(self, senders: list[tuple[str, str, str]], per_sender: list[int], broker: bool) -> Run:
        stub = ts_grpc.TrxStakingServiceStub(
            self.cluster["trx_staking"].channel(identity="usdt-manager", roles=())
        ) if broker else None  # fmt: skip
        out = Run()
        started = time.perf_counter()

        def send(i: int) -> None:
            wallet_id, address, _ = senders[i]
            for _ in range(per_sender[i]):
                self.transfer(stub, wallet_id, address, out)

        with ThreadPoolExecutor(len(senders)) as pool:
            list(pool.map(send, range(len(senders))))
        out.seconds = time.perf_counter() - started
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transfers", type=int, default=200)
    ap.add_argument("--senders", type=int, default=20)
    ap.add_argument("--stake", type=int, default=5_000_000, help="TRX the staking wallet stakes for energy")
    ap.add_argument("--block-time", type=float, default=1.0)
    ap.add_argument("--report", type=Path, help="also write the key figures as JSON to this file")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-energy-"))
    fdb = start_ferretdb(work / "ferretdb")
    devnet = Devnet(
        work / "devnet", block_time=args.block_time, solidity_lag=2, extra_args=["--mainnet"]
    ).start()
    factory = ServiceFactory(fdb, work)
    try:
        env = {
            "USDT_CONTRACT_ADDRESS": devnet.usdt, "WALLET_ENCRYPTION_KEY": ENCRYPTION_KEY,
            "TRON_SYNC_ENABLED": "false", "LOG_LEVEL": "WARNING", "STAKING_POLL_SECONDS": "0.25",
        }  # fmt: skip
        cluster = factory.start("tron_client", "wallet_manager", node_url=devnet.url, env=env)
        bench = Bench(devnet, cluster)
        keys = {name: [new_key() for _ in range(args.senders)] for name in ("broker", "burn")}
        staking_key, staking = new_key()
        policy = wm.SigningPolicy(
            allowed_contract_types=STAKING_TYPES, allow_unlisted_assets=True, allowed_callers=["trx-staking"],
            allowed_resource_receivers=[a for _, a in keys["broker"]],
        )  # fmt: skip
        staking_id = bench.wallet(staking_key, policy)
        bench.fund(staking, (args.stake + 1_000) * TRX)
        proc = factory.start(
            "trx_staking", node_url=devnet.url, db_name=cluster.env["PAYMENT_DB_NAME"],
            env={**env, **{k: cluster.env[k] for k in ("TRON_CLIENT_PORT", "WALLET_MANAGER_PORT")},
                 "STAKING_WALLET_ID": staking_id, "STAKING_BROKER_BUDGET_SUN": str(args.stake * TRX),
                 "STAKING_BROKER_MAX_PER_ADDRESS_SUN": str(args.stake * TRX),
                 "STAKING_BROKER_IDLE_SECONDS": "3600"},
        )["trx_staking"]  # fmt: skip
        bench.cluster.processes["trx_staking"] = proc
        admin = ts_grpc.TrxStakingServiceStub(proc.channel())
        stake = admin.Stake(
            ts.StakeRequest(request_id=rid(), wallet_id=staking_id, amount_sun=args.stake * TRX,
                            resource=common_pb2.RESOURCE_TYPE_ENERGY), timeout=60,
        ).operation  # fmt: skip
        devnet.wait_for_tx(stake.txid, solid=True, timeout=120)

        hot_policy = wm.SigningPolicy(
            allowed_contract_types=[common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT],
            allow_unlisted_assets=True, allowed_callers=["usdt-manager"],
        )  # fmt: skip
        per_sender = [
            args.transfers // args.senders + (i < args.transfers % args.senders) for i in range(args.senders)
        ]
        senders: dict[str, list[tuple[str, str, str]]] = {}
        for name, pairs in keys.items():
            senders[name] = [(bench.wallet(k, hot_policy), a, k) for k, a in pairs]
            # TRX for the bandwidth (about 0.35 TRX a transfer past the free 600 bytes a day) and, without the
            # broker, for the energy too (about 13 TRX a transfer to a new holder).
            trx = (TRX if name == "broker" else 20 * TRX) * (max(per_sender) + 1)
            usdt = AMOUNT * (max(per_sender) + 1)
            with ThreadPoolExecutor(8) as pool:
                list(
                    pool.map(
                        bench.fund, [s[1] for s in senders[name]], [trx] * args.senders, [usdt] * args.senders
                    )
                )
        runs = {
            "without the broker": bench.run(senders["burn"], per_sender, broker=False),
            "with the broker": bench.run(senders["broker"], per_sender, broker=True),
        }
        res = devnet.post("wallet/getaccountresource", {"address": staking, "visible": True})
        energy_per_trx = res["TotalEnergyLimit"] / res["TotalEnergyWeight"]
    finally:
        factory.close()
        devnet.close()
        stop_ferretdb(fdb)

    print(
        f"{args.transfers} USDT transfers to new holders from {args.senders} hot addresses per run, devnet "
        f"--mainnet ({energy_per_trx:.2f} energy per staked TRX, {args.block_time:g} s blocks), the staking "
        f"wallet staking {args.stake:,} TRX"
    )
    for name, r in runs.items():
        n = max(r.transfers, 1)
        delegated_energy = r.delegated_sun / TRX * energy_per_trx
        print(
            f"  {name:>18}: TRX burned per transfer {r.energy_fee_sun / n / TRX:.3f} for energy + "
            f"{r.net_fee_sun / n / TRX:.3f} for bandwidth; energy used {r.energy_used / n:,.0f}, delegated "
            f"{delegated_energy / n:,.0f} ({r.delegated_sun / n / TRX:,.0f} staked TRX) per transfer; "
            f"{r.transfers} sent, {r.failed} failed, refusals {r.refusals or 'none'}, {r.seconds:.0f} s"
        )
    with_broker = runs["with the broker"]
    verdict = "met" if with_broker.transfers and with_broker.energy_fee_sun == 0 else "NOT met"
    print(f"target 0 TRX burned for energy with the broker: {verdict}")
    if args.report:
        figures: dict[str, float] = {"energy_per_staked_trx": energy_per_trx}
        for key, r in (("without_broker", runs["without the broker"]), ("with_broker", with_broker)):
            n = max(r.transfers, 1)
            figures |= {
                # sun stays an integer: the total decides "0 burned", the rounded mean is for reading
                f"energy_burned_sun_{key}": r.energy_fee_sun,
                f"energy_burned_sun_per_transfer_{key}": (r.energy_fee_sun + n // 2) // n,
                f"bandwidth_burned_sun_per_transfer_{key}": (r.net_fee_sun + n // 2) // n,
                f"energy_used_per_transfer_{key}": r.energy_used / n,
                f"energy_delegated_per_transfer_{key}": r.delegated_sun / TRX * energy_per_trx / n,
                f"transfers_{key}": r.transfers,
                f"failed_{key}": r.failed,
            }
        args.report.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
