"""Benchmark the wallet vault's signing core (no gRPC, no MongoDB): what one signing RPC costs in CPU.

Per request, the steps the servicer runs (signing.py, keys.py), here through the vault facade
Vault.sign_transaction: parse raw_data and recompute the txID, check the policy, open the wallet's sealed
key (unwrap the DEK under the KEK, AES-GCM decrypt the key), sign, and check that the signature recovers
to the wallet address. Also times each step alone,
and the full path from several threads.

usage: python benchmarks/bench_sign_core.py [--seconds S] [--wallets N] [--threads T ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.common.tron.abi import encode_call  # noqa: E402
from services.common.tron.address import from_base58  # noqa: E402
from services.common.tron.tx import RefBlock, build_raw  # noqa: E402
from services.wallet_manager.vault.core import Vault  # noqa: E402
from services.wallet_manager.vault.ecdsa import require_signer, sign_digest  # noqa: E402
from services.wallet_manager.vault.policy import AssetLimit, WalletPolicy, check  # noqa: E402
from services.wallet_manager.vault.tron_tx import parse_transaction  # noqa: E402

USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
DEST = "THChUb7p2bwY6ReAiJXao6qc2ZGn88T46v"


# TAPOS fields of a fixed block: the vault never checks them, the benchmark needs only well-formed bytes.
REF = RefBlock(0x7D52, bytes(8) + bytes.fromhex("89fd90c45b71f247") + bytes(16), 0)


def trc20_raw(owner: str, amount: int) -> bytes:
    """A USDT transfer raw_data (the shared encoder; the benchmark does not import devnet)."""
    value = {
        "owner_address": from_base58(owner),
        "contract_address": from_base58(USDT),
        "data": encode_call("transfer(address,uint256)", DEST, amount),
    }
    now = int(time.time() * 1000)
    return build_raw(
        "TriggerSmartContract",
        value,
        REF,
        expiration_ms=now + 3_600_000,
        timestamp_ms=now,
        fee_limit=30_000_000,
    )


def rate(fn: Callable[[int], object], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            fn(n)
            n += 1
    return n / (time.perf_counter() - start)


def threaded_rate(fn: Callable[[int], object], threads: int, seconds: float) -> float:
    counts = [0] * threads
    stop = threading.Event()

    def worker(t: int) -> None:
        i = t
        while not stop.is_set():
            fn(i)
            i += threads
            counts[t] += 1

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for t in ts:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in ts:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--wallets", type=int, default=64)
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 4, 8])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    vault, _ = Vault.from_secrets(os.urandom(24).hex())  # production scrypt cost (n=2**15)
    kdf_ms = (time.perf_counter() - t0) * 1000
    ring = vault.keyring
    sealed_seed = vault.new_master_seed()
    wallets = []
    for i in range(args.wallets):
        w = vault.derive_hd_wallet(sealed_seed, f"w-{i}", account=i, index=0)
        wallets.append((f"w-{i}", w.address, w.sealed))
    raws = [trc20_raw(addr, 1_000_000 + i) for i, (_, addr, _) in enumerate(wallets)]
    pol = WalletPolicy(limits={USDT: AssetLimit(per_tx=10**12, daily=10**15)})
    spent = {USDT: 0}

    def full(i: int) -> bytes:
        wid, addr, doc = wallets[i % len(wallets)]
        res = vault.sign_transaction(
            wallet_id=wid,
            address=addr,
            raw=raws[i % len(raws)],
            policy=pol,
            sealed_key=doc,
            spent_today=spent,
        )
        if res.signature is None:
            raise SystemExit(f"policy refused: {res.decision.reason}")
        return res.signature

    w0 = wallets[0]
    tx0 = parse_transaction(raws[0])
    key0 = bytes(ring.open(w0[0], w0[2]))
    sig0 = sign_digest(key0, tx0.txid)
    steps = {
        "parse_tx": lambda i: parse_transaction(raws[i % len(raws)]),
        "policy_check": lambda i: check(tx0, policy=pol, wallet_address=w0[1], spent_today=spent),
        "decrypt_key": lambda i: ring.open(w0[0], w0[2]),
        "sign": lambda i: sign_digest(key0, tx0.txid),
        "verify_recover": lambda i: require_signer(tx0.txid, sig0, w0[1]),
        "full_sign_path": full,
    }
    per_second = {
        name: round(rate(fn, args.seconds / 2 if name != "full_sign_path" else args.seconds))
        for name, fn in steps.items()
    }
    threads = {str(t): round(threaded_rate(full, t, args.seconds)) for t in args.threads}
    result = {"kek_derive_ms": round(kdf_ms, 1), "per_second": per_second, "threads": threads}
    if args.json:
        print(json.dumps(result))
        return
    print(f"KEK derivation (scrypt n=2^15, once per process): {result['kek_derive_ms']} ms")
    for name, v in per_second.items():
        print(f"{name:>16}: {v:>8,}/s  ({1e6 / v:7.1f} µs)")
    for t, v in threads.items():
        print(f"full path, {t:>2} threads: {v:>8,}/s")
    full_rate = per_second["full_sign_path"]
    print(f"headroom vs the 1,000 signatures/s service target (one core): {full_rate / 1000:.1f}x")


if __name__ == "__main__":
    main()
