"""Generated from proto/tronpay/payout_router by `make gen`; do not edit."""
