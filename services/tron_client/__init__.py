"""tron-client: the only service that talks to a TRON node (network info, transactions, block sync)."""
