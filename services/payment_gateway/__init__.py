"""payment-gateway: payment requests, detection, refunds, reconciliation, reports, webhooks."""
