"""Generated from proto/tronpay/trx_staking by `make gen`; do not edit."""
