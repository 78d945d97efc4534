"""Benchmark the cost of FerretDB's write serialiser (scripts/ferretdb/serialize.go).

Starts two FerretDB servers on loopback temp dirs, one serialising write commands per database (as tests and
`make up` run it) and one without (`-serialize-writes=false`), and prints writes/reads per second on each:
sequential and 20-way concurrent inserts and updates, and concurrent finds. One run, 100 operations per row.

    make bench-ferretdb
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.ferretdb import start_ferretdb, stop_ferretdb  # noqa: E402

Doc = dict[str, Any]
OPS = 100


async def throughput(uri: str) -> dict[str, float]:
    """Operations per second on one server."""
    client: AsyncMongoClient[Doc] = AsyncMongoClient(uri, maxPoolSize=50)
    col = client["bench"]["bench"]
    figures: dict[str, float] = {}

    async def timed(label: str, call: Callable[[int], Awaitable[Any]], width: int) -> None:
        t0 = time.perf_counter()
        for k in range(0, OPS, width):
            await asyncio.gather(*(call(i) for i in range(k, min(k + width, OPS))))
        figures[label] = OPS / (time.perf_counter() - t0)

    await timed("insert seq", lambda i: col.insert_one({"_id": i, "n": 0}), 1)
    await timed("insert x20", lambda i: col.insert_one({"_id": OPS + i, "n": 0}), 20)
    await timed("update seq", lambda i: col.update_one({"_id": i}, {"$inc": {"n": 1}}), 1)
    await timed("update x20 (20 docs)", lambda i: col.update_one({"_id": i % 20}, {"$inc": {"n": 1}}), 20)
    await timed("find x20", lambda i: col.find_one({"_id": i}), 20)
    await client.close()
    return figures


def measure(data_dir: Path, args: list[str]) -> dict[str, float]:
    server = start_ferretdb(data_dir, args=args)
    try:
        return asyncio.run(throughput(server.uri))
    finally:
        stop_ferretdb(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--report", type=Path, help="also write the key figures as JSON to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ferretdb-") as tmp:
        serialised = measure(Path(tmp) / "serialised", [])
        plain = measure(Path(tmp) / "plain", ["-serialize-writes=false"])
    print(f"{'FerretDB ops/s':<24}{'serialised':>10}{'plain':>8}{'ratio':>8}")
    for label, value in serialised.items():
        print(f"  {label:<22}{value:10.0f}{plain[label]:8.0f}{value / plain[label]:8.2f}")
    if args.report:
        # "update x20 (20 docs)" -> "update_x20"
        keys = {label: label.split(" (")[0].replace(" ", "_") for label in serialised}
        figures = {f"{keys[label]}_serialised": value for label, value in serialised.items()}
        figures |= {f"{keys[label]}_plain": value for label, value in plain.items()}
        args.report.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
