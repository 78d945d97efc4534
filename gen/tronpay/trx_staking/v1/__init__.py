"""Generated from proto/tronpay/trx_staking/v1 by `make gen`; do not edit."""
