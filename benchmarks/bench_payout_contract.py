"""Energy and bandwidth per recipient of the payout routers on the devnet: single payouts vs batches.

Starts a devnet (`--mainnet` with --mainnet), then pays through the genesis PayoutRouterV0 with the genesis
disburser, signing and sending with tronpy: single `disburse` calls and `disburseBatch` calls of 10, 50 and
100 payouts, first to recipients that hold no USDT yet (new balance slots) and then to the same recipients
again (existing holders). Also PayoutRouterKYC (single and 100) to the same existing holders, and a plain USDT
transfer for reference. Per recipient: energy = energy_usage_total / n, bandwidth = bytes / n where bytes =
net_usage (free or staked bandwidth) + net_fee / 1000 (burned at 1 000 sun per byte).

    make bench-payout-contract        # or: .venv/bin/python benchmarks/bench_payout_contract.py
    .venv/bin/python benchmarks/bench_payout_contract.py --mainnet --singles 5

On --mainnet the devnet charges USDT's dynamic-energy factor (x4.4) per opcode inside USDT, also inside the
router's internal USDT calls, as mainnet does; the router's own opcodes carry no factor.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_abi import encode
from tronpy import Tron
from tronpy.contract import Contract
from tronpy.keys import PrivateKey, keccak256, to_hex_address
from tronpy.providers import HTTPProvider

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.devnet import Devnet  # noqa: E402

TRX = 1_000_000
WAIT = {"timeout": 60, "interval": 0.2}
FEE_LIMIT = 5_000 * TRX
BATCHES = (10, 50, 100)
AMOUNT = 1_000  # 0.001 USDT per payout
PAID_TOPIC = keccak256(b"Paid(bytes32,address,uint256)").hex()
KYC_TYPEHASH = keccak256(
    b"PayoutRouterKYC.Attestation(uint256 chainId,address router,address recipient,bytes32 kycHash,"
    b"uint256 expiry)"
)


def recipient_word(address: str) -> int:
    return int(to_hex_address(address)[2:], 16)


def cost(info: dict[str, Any], n: int) -> tuple[float, float]:
    """(energy, bandwidth bytes) per recipient of one transaction paying n recipients."""
    receipt = info["receipt"]
    assert receipt.get("result") == "SUCCESS", info
    paid = sum(1 for log in info.get("log", []) if log["topics"][0] == PAID_TOPIC)
    assert paid == n, f"{paid} of {n} paid: {info}"
    energy = receipt.get("energy_usage_total", 0)
    net = receipt.get("net_usage", 0) + receipt.get("net_fee", 0) // 1000
    return energy / n, net / n


class Bench:
    def __init__(self, devnet: Devnet, client: Tron) -> None:
        self.client = client
        roles = devnet.accounts["role_accounts"]
        self.disburser = PrivateKey(bytes.fromhex(roles["payout_disburser"]["private_key"]))
        self.compliance = PrivateKey(bytes.fromhex(roles["payout_compliance_signer"]["private_key"]))
        self.sender = self.disburser.public_key.to_base58check_address()
        self.v0 = client.get_contract(devnet.accounts["contracts"]["PayoutRouterV0"])
        self.kyc = client.get_contract(devnet.accounts["contracts"]["PayoutRouterKYC"])
        self.chain_id = int(devnet.accounts["chain_id"])
        self.usdt = client.get_contract(devnet.usdt)
        self.holder = PrivateKey(bytes.fromhex(devnet.funded[1]["private_key"]))

    def call(self, contract: Contract, method: str, *args: Any) -> dict[str, Any]:
        fn = contract.functions[method].with_owner(self.sender)
        tx = fn(*args).fee_limit(FEE_LIMIT).build().sign(self.disburser)
        return dict(tx.broadcast().wait(**WAIT))

    def singles(self, recipients: list[str]) -> tuple[float, float]:
        """Mean per-recipient cost of one `disburse` per recipient (sent together, one block or two)."""
        rets = []
        for to in recipients:
            fn = self.v0.functions.disburse.with_owner(self.sender)
            tx = fn(secrets.token_bytes(32), to, AMOUNT).fee_limit(FEE_LIMIT).build().sign(self.disburser)
            rets.append(tx.broadcast())
        costs = [cost(r.wait(**WAIT), 1) for r in rets]
        return sum(c[0] for c in costs) / len(costs), sum(c[1] for c in costs) / len(costs)

    def batch(self, recipients: list[str]) -> tuple[float, float]:
        ids = [secrets.token_bytes(32) for _ in recipients]
        payouts = [AMOUNT << 160 | recipient_word(to) for to in recipients]
        return cost(
            self.call(self.v0, "disburseBatch", secrets.token_bytes(32), ids, payouts), len(recipients)
        )

    def attestation(self, to: str) -> list[bytes]:
        """[kycHash, expiry, r, vs] signed by the genesis compliance signer (TIP-191, EIP-2098 compact)."""
        kyc_hash, expiry = secrets.token_bytes(32), int(time.time()) + 3600
        evm = [f"0x{to_hex_address(a)[2:]}" for a in (self.kyc.contract_address, to)]
        types = ["bytes32", "uint256", "address", "address", "bytes32", "uint256"]
        message = keccak256(encode(types, [KYC_TYPEHASH, self.chain_id & 0xFFFFFFFF, *evm, kyc_hash, expiry]))
        sig = self.compliance.sign_msg(message).to_bytes()
        vs = int.from_bytes(sig[32:64], "big") | (sig[64] % 27) << 255
        return [kyc_hash, expiry.to_bytes(32, "big"), sig[:32], vs.to_bytes(32, "big")]

    def kyc_single(self, to: str) -> tuple[float, float]:
        kyc_hash, expiry, r, vs = self.attestation(to)
        args = (secrets.token_bytes(32), to, AMOUNT, kyc_hash, int.from_bytes(expiry, "big"), r, vs)
        return cost(self.call(self.kyc, "disburseKYC", *args), 1)

    def kyc_batch(self, recipients: list[str]) -> tuple[float, float]:
        ids = [secrets.token_bytes(32) for _ in recipients]
        payouts = [AMOUNT << 160 | recipient_word(to) for to in recipients]
        words = [w for to in recipients for w in self.attestation(to)]
        info = self.call(self.kyc, "disburseBatchKYC", secrets.token_bytes(32), ids, payouts, words)
        return cost(info, len(recipients))

    def plain_transfer(self, to: str) -> tuple[float, float]:
        owner = self.holder.public_key.to_base58check_address()
        fn = self.usdt.functions.transfer.with_owner(owner)
        info = fn(to, AMOUNT).fee_limit(FEE_LIMIT).build().sign(self.holder).broadcast().wait(**WAIT)
        receipt = info["receipt"]
        return receipt["energy_usage_total"], receipt.get("net_usage", 0) + receipt.get("net_fee", 0) // 1000


def new_addresses(n: int) -> list[str]:
    return [PrivateKey.random().public_key.to_base58check_address() for _ in range(n)]


def run(devnet: Devnet, singles: int) -> list[tuple[str, float, float]]:
    client = Tron(HTTPProvider(devnet.url, timeout=60))
    bench = Bench(devnet, client)
    # A router's first payout of the day also creates dailyDisbursed[today] (20 000 energy): not measured.
    bench.singles(new_addresses(1))
    bench.kyc_single(new_addresses(1)[0])
    rows: list[tuple[str, float, float]] = []
    groups = {1: new_addresses(singles), **{k: new_addresses(k) for k in BATCHES}}
    for holders in ("new holders", "existing holders"):  # the same recipients, twice
        energy, net = bench.singles(groups[1])
        rows.append((f"V0 single disburse, {holders} (mean of {singles})", energy, net))
        for k in BATCHES:
            energy, net = bench.batch(groups[k])
            rows.append((f"V0 disburseBatch of {k}, {holders}", energy, net))
    rows.append(("KYC single disburseKYC, existing holder", *bench.kyc_single(groups[1][0])))
    rows.append(("KYC disburseBatchKYC of 100, existing holders", *bench.kyc_batch(groups[100])))
    rows.append(("plain USDT transfer, new holder", *bench.plain_transfer(new_addresses(1)[0])))
    rows.append(("plain USDT transfer, existing holder", *bench.plain_transfer(groups[1][0])))
    client.provider.sess.close()
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mainnet", action="store_true", help="devnet --mainnet profile (network stake, fees)")
    p.add_argument("--singles", type=int, default=10, help="single payouts to average (default 10)")
    p.add_argument("--report", type=Path, help="also write the key figures as JSON to this file")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-payout-contract-"))
    devnet = Devnet(tmp, block_time=0.5, extra_args=["--mainnet"] if args.mainnet else [])
    try:
        devnet.start()
        rows = run(devnet, args.singles)
    finally:
        devnet.close()
        shutil.rmtree(tmp, ignore_errors=True)
    profile = "--mainnet" if args.mainnet else "default devnet"
    print(f"payout router, {profile} profile: per recipient")
    print(f"{'':52} {'energy':>9} {'bandwidth B':>12}")
    for name, energy, net in rows:
        print(f"{name:52} {energy:>9.0f} {net:>12.1f}")
    by_name = {name: (energy, net) for name, energy, net in rows}
    single = by_name[f"V0 single disburse, existing holders (mean of {args.singles})"]
    hundred = by_name["V0 disburseBatch of 100, existing holders"]
    print(
        f"batch of 100 vs single (existing holders): energy {hundred[0] / single[0]:.1%}, "
        f"bandwidth {hundred[1] / single[1]:.1%} per recipient"
    )
    if args.report:
        figures = {  # existing holders
            "energy_per_recipient_single": single[0],
            "energy_per_recipient_batch100": hundred[0],
            "energy_batch100_vs_single": hundred[0] / single[0],
            "bandwidth_per_recipient_single": single[1],
            "bandwidth_per_recipient_batch100": hundred[1],
            "bandwidth_batch100_vs_single": hundred[1] / single[1],
            "energy_plain_transfer": by_name["plain USDT transfer, existing holder"][0],
        }
        args.report.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
