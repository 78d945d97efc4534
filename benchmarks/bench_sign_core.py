"""Benchmark the service's software signing path in-process (no gRPC): what one signature costs in CPU.

Per request, the steps signing.py runs for a sealed key, through the same modules: parse raw_data and
recompute the txID (vault.tron_tx), the wallet's policy (convert.vault_policy + vault.policy.check), then
keys.KeyVault.sign_digest: open the wallet's sealed key (unwrap the DEK under the KEK, AES-GCM decrypt),
sign, and check that the signature recovers to the wallet address. Also times each step alone.

The KeyVault runs as in the service, over its Store on a FerretDB started here; sealed records stay cached
in memory after their first use, so the measured path does no database I/O (the signing log, the daily
spend and gRPC are what `make bench-sign` adds). One event loop, like one service process.

usage: python benchmarks/bench_sign_core.py [--seconds S] [--wallets N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from pydantic import SecretStr  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402
from tronpay.common.v1 import common_pb2  # noqa: E402
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb  # noqa: E402

from services.common.mongo import ServiceDatabase  # noqa: E402
from services.common.settings import ServiceName, TronNetwork  # noqa: E402
from services.common.tron.abi import encode_call  # noqa: E402
from services.common.tron.address import from_base58  # noqa: E402
from services.common.tron.tx import RefBlock, build_raw  # noqa: E402
from services.wallet_manager.convert import vault_policy  # noqa: E402
from services.wallet_manager.keys import KeyVault, secret_id  # noqa: E402
from services.wallet_manager.settings import WalletManagerSettings  # noqa: E402
from services.wallet_manager.store import Store  # noqa: E402
from services.wallet_manager.vault import hd  # noqa: E402
from services.wallet_manager.vault.ecdsa import require_signer, sign_digest  # noqa: E402
from services.wallet_manager.vault.keystore import SealedSecret  # noqa: E402
from services.wallet_manager.vault.policy import check  # noqa: E402
from services.wallet_manager.vault.tron_tx import parse_transaction  # noqa: E402
from tests.harness.ferretdb import start_ferretdb, stop_ferretdb  # noqa: E402

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


async def async_rate(fn: Callable[[int], Awaitable[object]], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            await fn(n)
            n += 1
    return n / (time.perf_counter() - start)


def usdt_policy() -> bytes:
    p = pb.SigningPolicy(allowed_contract_types=[common_pb2.CONTRACT_TYPE_TRIGGER_SMART_CONTRACT])
    p.limits.add(asset=common_pb2.ASSET_USDT, per_transaction_limit=10**12, daily_limit=10**15)
    p.limits.add(asset=common_pb2.ASSET_TRX)  # listed (fees burn TRX), no limit
    return p.SerializeToString(deterministic=True)


async def measure(store: Store, wallets: int, seconds: float) -> dict[str, Any]:
    settings = WalletManagerSettings(
        SERVICE_NAME=ServiceName.WALLET_MANAGER,
        TRON_NETWORK=TronNetwork.MAINNET,
        WALLET_ENCRYPTION_KEY=SecretStr(os.urandom(24).hex()),
        USDT_CONTRACT_ADDRESS=USDT,
    )
    vault = KeyVault(settings, store, None)
    t0 = time.perf_counter()
    ring = await vault.keyring()  # production scrypt cost, then the master seed is made and checked
    keyring_ms = (time.perf_counter() - t0) * 1000
    # HD wallet keys as wallets.py makes them: derived from the sealed seed, sealed under "<wallet>/0".
    keys = await vault.with_seed(lambda seed: [hd.derive_key(seed, i, 0) for i in range(wallets)])
    accounts = []
    for i, key in enumerate(keys):
        await vault.seal_key(secret_id(f"w-{i}", 0), f"w-{i}", key.private_key)
        accounts.append((secret_id(f"w-{i}", 0), key.address))
    raws = [trc20_raw(addr, 1_000_000 + i) for i, (_, addr) in enumerate(accounts)]
    policy_bytes = usdt_policy()

    async def full(i: int) -> bytes:
        sid, addr = accounts[i % len(accounts)]
        tx = parse_transaction(raws[i % len(raws)])
        decision = check(tx, policy=vault_policy(policy_bytes, USDT), wallet_address=addr)
        if not decision:
            raise SystemExit(f"policy refused: {decision.reason}")
        return await vault.sign_digest(sid, tx.txid, addr)

    sid0, addr0 = accounts[0]
    doc0 = await store.get_secret(sid0)
    assert doc0 is not None
    rec0 = SealedSecret.from_doc(doc0["sealed"])
    tx0 = parse_transaction(raws[0])
    key0 = bytes(ring.open(sid0, rec0, purpose="private_key"))
    sig0 = sign_digest(key0, tx0.txid)
    steps: dict[str, Callable[[int], object]] = {
        "parse_tx": lambda i: parse_transaction(raws[i % len(raws)]),
        "policy_check": lambda i: check(tx0, policy=vault_policy(policy_bytes, USDT), wallet_address=addr0),
        "decrypt_key": lambda i: ring.open(sid0, rec0, purpose="private_key"),
        "sign": lambda i: sign_digest(key0, tx0.txid),
        "verify_recover": lambda i: require_signer(tx0.txid, sig0, addr0),
    }
    per_second = {name: round(rate(fn, seconds / 2)) for name, fn in steps.items()}
    for i in range(len(accounts)):  # every sealed record read once (the cache), as in a warm service
        await full(i)
    per_second["full_sign_path"] = round(await async_rate(full, seconds))
    return {"keyring_load_ms": round(keyring_ms, 1), "per_second": per_second}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--wallets", type=int, default=64)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--report", type=Path, help="also write the key figures as JSON to this file")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-sign-core-"))
    fdb = start_ferretdb(work / "ferretdb")

    async def run() -> dict[str, Any]:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(fdb.uri, tz_aware=True)
        db = ServiceDatabase(client, "bench_sign_core", "wallet_manager")
        try:
            return await measure(Store(db), args.wallets, args.seconds)
        finally:
            await db.close()

    try:
        result = asyncio.run(run())
    finally:
        stop_ferretdb(fdb)
    if args.report:
        figures = {f"{step}_per_second": v for step, v in result["per_second"].items()}
        args.report.write_text(json.dumps({**figures, "keyring_load_ms": result["keyring_load_ms"]}) + "\n")
    if args.json:
        print(json.dumps(result))
        return
    print(f"keyring load (scrypt n=2^15 + master seed, once per process): {result['keyring_load_ms']} ms")
    per_second: dict[str, int] = result["per_second"]
    for name, v in per_second.items():
        print(f"{name:>16}: {v:>8,}/s  ({1e6 / v:7.1f} µs)")
    full_rate = per_second["full_sign_path"]
    print(f"headroom vs the 1,000 signatures/s service target (one core): {full_rate / 1000:.1f}x")


if __name__ == "__main__":
    main()
