"""Generated from proto/tronpay/wallet_manager by `make gen`; do not edit."""
