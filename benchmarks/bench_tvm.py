"""Benchmark the devnet TVM alone: TetherToken transfers per second in one process.

Deploys contracts/artifacts/TetherToken.json into a DictWorldState and runs `transfer` calls from one holder
to a rotating set of recipients (the first round writes new balance slots, later rounds existing ones).
Also prints the energy of one transfer to a new and to an existing holder, without a dynamic-energy factor
(the default devnet) and with mainnet USDT's factor (the `--mainnet` devnet).

usage: python benchmarks/bench_tvm.py [--transfers N] [--recipients K] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devnet.genesis import PROFILES  # noqa: E402
from devnet.tvm import TVM, BlockContext, DictWorldState  # noqa: E402
from devnet.tvm.computation import FACTOR_DECIMAL  # noqa: E402

TRANSFER = bytes.fromhex("a9059cbb")


def setup(recipients: int) -> tuple[TVM, DictWorldState, BlockContext, bytes, bytes, list[bytes]]:
    art = json.loads((ROOT / "contracts/artifacts/TetherToken.json").read_text())
    world = DictWorldState()
    holder = bytes.fromhex("7e5f4552091a69125d5dfcb7b8c2659029395bdf")
    token = bytes.fromhex("a614f803b6fd780986a42c78ec9c7f77e6ded13c")
    world.set_balance(holder, 10**15)
    block = BlockContext(number=1, timestamp=1_700_000_000_000, coinbase=b"\x22" * 20, chain_id=0x2B6653DC)
    tvm = TVM()
    init = bytes.fromhex(art["bytecode"]) + holder.rjust(32, b"\0") + (10**18).to_bytes(32, "big")
    res = tvm.create(
        world,
        block,
        origin=holder,
        address=token,
        init_code=init,
        value=0,
        energy_limit=10**9,
        tx_id=b"\1" * 32,
    )
    assert res.success, res
    calls = [
        TRANSFER + i.to_bytes(20, "big").rjust(32, b"\0") + (1).to_bytes(32, "big")
        for i in range(1, recipients + 1)
    ]
    return tvm, world, block, holder, token, calls


def run(n: int, recipients: int, factor: int = 0) -> tuple[float, int, int]:
    """(transfers/s, energy of the first transfer to a new holder, of the first to an existing one), the
    token charged `factor` (dynamic energy, as the `--mainnet` devnet charges USDT)."""
    tvm, world, block, holder, token, calls = setup(recipients)
    energy_new = energy_existing = 0
    start = time.perf_counter()
    for i in range(n):
        res = tvm.call(
            world,
            block,
            origin=holder,
            caller=holder,
            contract=token,
            value=0,
            data=calls[i % recipients],
            energy_limit=1_000_000,
            tx_id=i.to_bytes(32, "big"),
            energy_factor=(lambda _address: factor) if factor else None,
        )
        if not res.success:
            raise SystemExit(f"transfer {i} failed: {res.result} {res.message}")
        if i == 0:
            energy_new = res.energy_used
        elif i == recipients:
            energy_existing = res.energy_used
    elapsed = time.perf_counter() - start
    return n / elapsed, energy_new, energy_existing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=5000)
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="print the top cProfile entries")
    parser.add_argument("--report", type=Path, help="also write the key figures as JSON to this file")
    args = parser.parse_args()
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        rate, _, _ = run(args.transfers, args.recipients)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    else:
        run(min(500, args.transfers), args.recipients)  # warm-up
        rate, energy_new, energy_existing = run(args.transfers, args.recipients)
        print(f"energy: transfer to a new holder {energy_new}, to an existing holder {energy_existing}")
        factor = PROFILES["mainnet"]["usdt_energy_factor"]
        _, new, existing = run(args.recipients + 1, args.recipients, factor)
        print(
            f"energy with mainnet USDT's factor {factor} (x{(FACTOR_DECIMAL + factor) / FACTOR_DECIMAL:g}): "
            f"new holder {new}, existing holder {existing}"
        )
        if args.report:
            figures = {"transfers_per_second": rate, "energy_new_holder": energy_new,
                       "energy_existing_holder": energy_existing, "energy_new_holder_mainnet": new,
                       "energy_existing_holder_mainnet": existing}  # fmt: skip
            args.report.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"TVM TRC20 transfers/s: {rate:.0f} ({args.transfers} transfers, {args.recipients} recipients)")


if __name__ == "__main__":
    main()
