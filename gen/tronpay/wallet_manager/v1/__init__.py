"""Generated from proto/tronpay/wallet_manager/v1 by `make gen`; do not edit."""
