"""payment-gateway's Prometheus metrics (names documented in docs/metrics.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PAYMENTS_CREATED = Counter("tronpay_payments_created_total", "Payments created.", ["asset"])
PAYMENT_TRANSITIONS = Counter(
    "tronpay_payment_transitions_total",
    "Payments entering a state (PAID, PAID_LATE and OVERPAID count as successes).",
    ["asset", "state"],
)
PAYMENTS_BY_STATE = Gauge("tronpay_payments", "Payments per state, as of the last count.", ["state"])
SECONDS_TO_PAID = Histogram(
    "tronpay_payment_seconds_to_paid",
    "Seconds from a payment's creation to PAID (or PAID_LATE / OVERPAID).",
    buckets=(5, 10, 20, 30, 45, 60, 90, 120, 300, 600, 1800, 3600, 4 * 3600, 86_400),
)
DETECTED = Counter(
    "tronpay_payment_transfers_applied_total",
    "Transfer events applied to payments (or the unmatched inbox), by the state they entered.",
    ["state"],
)
UNMATCHED = Gauge("tronpay_payment_unmatched_deposits", "Deposits in the unmatched inbox not yet assigned.")
REFUNDS = Counter("tronpay_payment_refunds_total", "Refunds entering a state.", ["asset", "state"])
SWEEP_QUEUE = Gauge(
    "tronpay_payment_sweep_queue",
    "Deposit addresses holding funds waiting to be swept, per asset.",
    ["asset"],
)
SWEEPS = Counter("tronpay_payment_sweeps_total", "Sweeps entering a state.", ["asset", "state"])
DISCREPANCIES = Gauge(
    "tronpay_payment_reconciliation_discrepancies",
    "Discrepancies the last reconciliation run found, by kind.",
    ["kind"],
)
RECONCILED_BLOCK = Gauge(
    "tronpay_payment_reconciliation_block", "Solidified block of the last reconciliation."
)
WEBHOOK_BACKLOG = Gauge("tronpay_payment_webhook_backlog", "Outgoing webhook deliveries waiting (PENDING).")
WEBHOOK_OLDEST = Gauge(
    "tronpay_payment_webhook_oldest_pending_seconds", "Age of the oldest outgoing webhook delivery waiting."
)
WEBHOOK_DELIVERIES = Counter(
    "tronpay_payment_webhook_attempts_total", "Outgoing webhook delivery attempts, by outcome.", ["outcome"]
)
WEBHOOK_DEAD_LETTERS = Counter(
    "tronpay_payment_webhook_dead_letters_total",
    "Outgoing webhook deliveries given up after the retry window.",
)
INBOUND_WEBHOOKS = Counter(
    "tronpay_payment_inbound_webhooks_total", "Incoming webhook notifications, by outcome.", ["outcome"]
)
