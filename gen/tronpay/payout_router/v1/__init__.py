"""Generated from proto/tronpay/payout_router/v1 by `make gen`; do not edit."""
