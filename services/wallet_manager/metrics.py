"""wallet-manager's Prometheus metrics (names documented in docs/metrics.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

OPERATIONS = Counter(
    "tronpay_wallet_operations_total",
    "Wallet operations done, by operation (create, update, delete, derive_address, sign_transaction, "
    "sign_message; an answered retry of a signing request counts again).",
    ["operation"],
)
SIGNING_REFUSALS = Counter(
    "tronpay_wallet_signing_refusals_total",
    "Signing requests the wallet's policy or state refused, by reason (the ErrorInfo reason).",
    ["reason"],
)
BALANCE_QUERY_SECONDS = Histogram(
    "tronpay_wallet_balance_query_seconds",
    "Time to answer a wallet balance query (reads through tron-client), by outcome (ok, error).",
    ["outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@contextmanager
def balance_query() -> Iterator[None]:
    """Time one balance query and count it under its outcome."""
    start = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        BALANCE_QUERY_SECONDS.labels(outcome).observe(time.perf_counter() - start)
